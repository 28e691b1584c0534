"""SageMaker inference handler for the ONNX model (``code/inference.py`` in model.tar.gz).

Self-contained on purpose (numpy + onnxruntime only, Python >= 3.8): the serving container
installs ``code/requirements.txt`` and imports this file, nothing else from the project.

Contract
--------
``model_fn(model_dir)``
    loads ``model.onnx`` and ``feature_spec.json`` from the unpacked model.tar.gz.
``input_fn(body, content_type)``
    ``application/json``: ``{"instances": [{feature: value, ...}, ...]}``, a bare list of such
    objects, one object, or rows as lists in ``feature_spec.json`` column order.
    ``text/csv``: one row per line in column order, no key or label; a header line equal to
    the column names is allowed. Missing values: JSON ``null`` / empty CSV field.
``predict_fn(data, model)``
    ``{"classes": [...], "labels": [...], "probabilities": [[...], ...]}``.
``output_fn(prediction, accept)``
    ``application/json``: ``{"predictions": [{"label": "delivered",
    "probabilities": {"cancelled": 0.01, "delivered": 0.95, "returned": 0.04}}, ...]}``.
    ``text/csv``: ``label,p_<class1>,p_<class2>,...`` per row, classes in sorted order, no header.

Errors: ``InvalidInput`` (400; the message starts with the field, e.g.
``instances[1].basket_value: must be a number``), ``UnsupportedContentType`` (415),
``UnsupportedAccept`` (406) — the project's server classes when importable, else same-named
``ValueError``s. ONNX Runtime threads: ``MLOPS_ORT_THREADS`` (0 = ORT's default).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from typing import Any

import numpy as np

MISSING_CATEGORY = "__missing__"
JSON = "application/json"
CSV = "text/csv"


try:  # inside the project's model server: its error classes map to 400 / 415 / 406
    from mlops.serving.errors import InvalidInput, UnsupportedAccept, UnsupportedContentType
except ImportError:  # a stock SageMaker container: same names, plain ValueErrors

    class InvalidInput(ValueError):  # type: ignore[no-redef]
        """A request field is malformed; the message starts with the field."""

        def __init__(self, field: str, message: str) -> None:
            super().__init__(f"{field}: {message}")
            self.field, self.message = field, message

    class UnsupportedContentType(ValueError):  # type: ignore[no-redef]
        """The request content type is not JSON or CSV."""

        def __init__(self, content_type: str) -> None:
            super().__init__(f"content type {content_type!r} is not supported; send one of {JSON}, {CSV}")

    class UnsupportedAccept(ValueError):  # type: ignore[no-redef]
        """The accept type is not JSON or CSV."""

        def __init__(self, accept: str) -> None:
            super().__init__(f"accept type {accept!r} is not supported; ask for one of {JSON}, {CSV}")


def model_fn(model_dir: str) -> dict[str, Any]:
    """Load the ONNX session and the feature spec."""
    import onnxruntime as ort

    with open(os.path.join(model_dir, "feature_spec.json")) as handle:
        spec = json.load(handle)
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("MLOPS_ORT_THREADS", "0"))
    session = ort.InferenceSession(
        os.path.join(model_dir, "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return {"session": session, "spec": spec, "columns": [*spec["numeric"], *spec["categorical"]]}


def _rows_from_json(payload: Any) -> list[Any]:
    rows = payload.get("instances", payload.get("inputs", payload)) if isinstance(payload, dict) else payload
    if isinstance(rows, dict):
        rows = [rows]
    if not isinstance(rows, list):
        raise InvalidInput("instances", 'the JSON body must be {"instances": [...]}, a list of records, or one record')
    return rows


def _rows_from_csv(text: str) -> list[list[str | None]]:
    return [[v if v != "" else None for v in row] for row in csv.reader(io.StringIO(text)) if row]


def input_fn(request_body: str | bytes, request_content_type: str = JSON) -> list[Any]:
    """Parse a JSON or CSV body into rows: dicts (feature -> value) or lists in column order."""
    text = request_body.decode("utf-8") if isinstance(request_body, (bytes, bytearray)) else request_body
    kind = (request_content_type or JSON).split(";")[0].strip().lower()
    if kind == JSON:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput("body", f"not valid JSON: {exc}") from None
        return _rows_from_json(payload)
    if kind == CSV:
        return _rows_from_csv(text)
    raise UnsupportedContentType(request_content_type)


def _records(rows: list[Any], columns: list[str]) -> list[dict[str, Any]]:
    if rows and isinstance(rows[0], list) and [str(v).strip() for v in rows[0]] == columns:
        rows = rows[1:]  # a CSV header line
    records = []
    for number, row in enumerate(rows, 1):
        if isinstance(row, dict):
            records.append(row)
            continue
        if len(row) != len(columns):
            raise InvalidInput(f"row {number}", f"has {len(row)} values; expected {len(columns)}: {','.join(columns)}")
        records.append(dict(zip(columns, row)))  # noqa: B905 - lengths checked above; strict= needs Python 3.10
    return records


def _number(value: Any, field: str) -> float:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "nan", "null", "none")):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInput(field, f"must be a number, got {value!r}") from None


def _category(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING_CATEGORY
    return str(value)


def _feed(records: list[dict[str, Any]], spec: dict[str, Any]) -> dict[str, np.ndarray]:
    for i, record in enumerate(records):
        missing = [c for c in (*spec["numeric"], *spec["categorical"]) if c not in record]
        if missing:
            raise InvalidInput(
                f"instances[{i}].{missing[0]}",
                f"missing; every instance needs {len(missing)} more feature(s): {missing}",
            )
    feed = {
        c: np.array([[_number(r[c], f"instances[{i}].{c}")] for i, r in enumerate(records)], dtype=np.float32)
        for c in spec["numeric"]
    }
    feed.update({c: np.array([[_category(r[c])] for r in records], dtype=object) for c in spec["categorical"]})
    return feed


def predict_fn(input_data: list[Any], model: dict[str, Any]) -> dict[str, Any]:
    """Run the ONNX model on the records."""
    records = _records(list(input_data), model["columns"])
    classes = list(model["spec"]["classes"])
    if not records:
        return {"classes": classes, "labels": [], "probabilities": []}
    labels, probabilities = model["session"].run(None, _feed(records, model["spec"]))
    return {
        "classes": classes,
        "labels": [str(v) for v in np.asarray(labels).ravel()],
        "probabilities": np.asarray(probabilities, dtype=np.float64).round(7).tolist(),
    }


def output_fn(prediction: dict[str, Any], accept: str = JSON) -> tuple[str, str]:
    """Serialize predictions as JSON or CSV; returns (body, content type)."""
    kind = (accept or JSON).split(";")[0].strip().lower()
    if kind in (JSON, "*/*"):
        rows = [
            {"label": label, "probabilities": dict(zip(prediction["classes"], probs))}  # noqa: B905 (py3.8 image)
            for label, probs in zip(prediction["labels"], prediction["probabilities"])  # noqa: B905
        ]
        return json.dumps({"predictions": rows}), JSON
    if kind == CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for label, probs in zip(prediction["labels"], prediction["probabilities"]):  # noqa: B905
            writer.writerow([label, *probs])
        return out.getvalue(), CSV
    raise UnsupportedAccept(accept)
