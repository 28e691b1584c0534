"""SageMaker inference handler for the ONNX model (``code/inference.py`` in model.tar.gz).

Self-contained on purpose (numpy + onnxruntime only, Python >= 3.8): the serving container
installs ``code/requirements.txt`` and imports this file, nothing else from the project.

Contract
--------
``model_fn(model_dir)``
    loads ``model.onnx``, ``feature_spec.json`` and, when the package has one, ``decision.json``
    (per-class decision thresholds chosen on the validation split, :mod:`mlops.training.decision`).
``input_fn(body, content_type)``
    ``application/json``: ``{"instances": [{feature: value, ...}, ...]}``, a bare list of such
    objects, one object, or rows as lists in ``feature_spec.json`` column order. An instance may
    instead be a **raw order** as a checkout knows it (``customer_id``, ``order_ts``, ``channel``,
    ``payment_method``, ``shipping_method``, ``ship_country``, ``promised_days``, ``shipping_fee``,
    ``discount_code``, ``lines: [{product_id, quantity, unit_price, discount_pct}]``): the customer's
    and products' features are looked up in the online store (``MLOPS_ONLINE_STORE``, the local
    SQLite store; else SageMaker Feature Store's BatchGetRecord, groups ``<MLOPS_FEATURE_GROUP_PREFIX>-
    customer-history`` / ``-product-history``) and the row is built as the features jobs build it
    (``mlops.schema.raw_order``, shipped beside this file).
    ``text/csv``: one row per line in column order, no key or label; a header line equal to
    the column names is allowed. Missing values: JSON ``null`` / empty CSV field.
``predict_fn(data, model)``
    ``{"classes": [...], "labels": [...], "probabilities": [[...], ...]}``. A label is the class with
    the largest probability / threshold when the package has thresholds, else the most probable
    class; the probabilities are the model's either way.
``output_fn(prediction, accept)``
    ``application/json``: ``{"predictions": [{"label": "delivered",
    "probabilities": {"cancelled": 0.01, "delivered": 0.95, "returned": 0.04}}, ...]}``.
    ``text/csv``: ``label,p_<class1>,p_<class2>,...`` per row, classes in sorted order, no header.

Values: numeric features take finite numbers within float32 (or their text); ``true``/``false``
only where the feature was boolean in training (``feature_spec.json`` ``boolean``); categorical
features take text (a finite number is taken as its text). Missing: ``null`` / empty CSV field.
Request fields that are not features are ignored (a newer model may read them).

Errors: ``InvalidInput`` (400; the message starts with the field, e.g.
``instances[1].basket_value: must be a number``), ``UnsupportedContentType`` (415),
``UnsupportedAccept`` (406) — the project's server classes when importable, else same-named
``ValueError``s. Every malformed request is one of these, never a 5xx: on the stock SageMaker
container (which turns any exception into a 500) the refusal reaches ``output_fn``, which answers
it with the 4xx (see ``_Refused``). ONNX Runtime threads: ``MLOPS_ORT_THREADS`` (0 = ORT's default).
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
MAX_FLOAT32 = float(np.finfo(np.float32).max)
MAX_INT_DIGITS = 300  # longer JSON integers cannot be a finite double: refused naming their field
BOOLEAN_TEXT = ("true", "false")


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
    return {
        "session": session,
        "spec": spec,
        "columns": [*spec["numeric"], *spec["categorical"]],
        "thresholds": _thresholds(model_dir, list(spec["classes"])),
    }


def _thresholds(model_dir: str, classes: list[str]) -> Any:
    """The package's per-class thresholds in class order (None without ``decision.json``: argmax labels)."""
    path = os.path.join(model_dir, "decision.json")
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        thresholds = json.load(handle).get("thresholds", {})
    missing = [c for c in classes if c not in thresholds]
    if missing or not all(float(thresholds[c]) > 0 for c in classes):
        raise ValueError(f"{path}: need a positive threshold for every class {classes}; missing {missing}")
    return np.array([float(thresholds[c]) for c in classes], dtype=np.float64)


class _NotANumber:
    """JSON's NaN/Infinity and integers too long for a double, held until the field they are in is known."""

    def __init__(self, text: str) -> None:
        self.text = text if len(text) <= 24 else f"{text[:12]}...({len(text)} digits)"

    def __repr__(self) -> str:
        return self.text


def _json_int(text: str) -> Any:
    return int(text) if len(text) <= MAX_INT_DIGITS else _NotANumber(text)


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_NotANumber, parse_int=_json_int)
    except RecursionError:
        raise InvalidInput("body", 'JSON nested too deeply; send {"instances": [{feature: value, ...}]}') from None
    except ValueError as exc:
        raise InvalidInput("body", f"not valid JSON: {exc}") from None


def _rows_from_json(payload: Any) -> list[Any]:
    rows = payload.get("instances", payload.get("inputs", payload)) if isinstance(payload, dict) else payload
    if isinstance(rows, dict):
        rows = [rows]
    if not isinstance(rows, list):
        raise InvalidInput("instances", 'the JSON body must be {"instances": [...]}, a list of records, or one record')
    return rows


def _rows_from_csv(text: str) -> list[list[str | None]]:
    try:
        return [[v if v != "" else None for v in row] for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as exc:
        raise InvalidInput("body", f"not valid CSV: {exc}") from None


def _text(request_body: str | bytes) -> str:
    if not isinstance(request_body, (bytes, bytearray)):
        return request_body
    try:
        return request_body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("body", f"not UTF-8: byte {request_body[exc.start]:#04x} at position {exc.start}") from None


def _parse_input(request_body: str | bytes, request_content_type: str) -> list[Any]:
    kind = (request_content_type or JSON).split(";")[0].strip().lower()
    if kind == JSON:
        return _rows_from_json(_parse_json(_text(request_body)))
    if kind == CSV:
        return _rows_from_csv(_text(request_body))
    raise UnsupportedContentType(request_content_type)


def input_fn(request_body: str | bytes, request_content_type: str = JSON) -> Any:
    """Parse a JSON or CSV body into rows: dicts (feature -> value) or lists in column order."""
    try:
        return _parse_input(request_body, request_content_type)
    except (InvalidInput, UnsupportedContentType) as exc:
        return _refuse(exc)


def _records(rows: list[Any], columns: list[str]) -> list[dict[str, Any]]:
    if rows and isinstance(rows[0], list) and [str(v).strip() for v in rows[0]] == columns:
        rows = rows[1:]  # a CSV header line
    records = []
    for number, row in enumerate(rows, 1):
        if isinstance(row, dict):
            records.append(row)
            continue
        if not isinstance(row, list):
            raise InvalidInput(
                f"instances[{number - 1}]", f"must be an object {{feature: value}} or a list of values, got {row!r:.40}"
            )
        if len(row) != len(columns):
            raise InvalidInput(f"row {number}", f"has {len(row)} values; expected {len(columns)}: {','.join(columns)}")
        records.append(dict(zip(columns, row)))  # noqa: B905 - lengths checked above; strict= needs Python 3.10
    return records


def _number(value: Any, field: str, boolean: bool = False) -> float:
    """A numeric feature's value: a finite number (or numeric text) within float32; None or "" = missing.
    true/false only for a feature that was boolean in the training data (``feature_spec.json`` ``boolean``)."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or (boolean and isinstance(value, str) and value.strip().lower() in BOOLEAN_TEXT):
        if not boolean:
            raise InvalidInput(field, f"must be a number, got {json.dumps(value)}; send 1 or 0")
        return 1.0 if value is True or str(value).strip().lower() == "true" else 0.0
    if isinstance(value, str):
        if not value.strip():
            return math.nan
        try:
            number = float(value)
        except ValueError:
            raise InvalidInput(field, f"must be a number, got {value[:40]!r}") from None
    elif isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
    else:
        raise InvalidInput(field, f"must be a number, got {_describe(value)}")
    if not math.isfinite(number) or abs(number) > MAX_FLOAT32:
        raise InvalidInput(field, f"must be a finite number of magnitude at most {MAX_FLOAT32:.4g}, got {value!r:.40}")
    return number


def _category(value: Any, field: str) -> str:
    """A categorical feature's value: text (a finite number is taken as its text); None = missing."""
    if value is None:
        return MISSING_CATEGORY
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)
    raise InvalidInput(field, f"must be a category (a string), got {_describe(value)}")


def _describe(value: Any) -> str:
    if isinstance(value, (bool, _NotANumber)):
        return json.dumps(value) if isinstance(value, bool) else f"{value!r}, which is not a finite number"
    if isinstance(value, (list, dict)):
        return f"a JSON {'array' if isinstance(value, list) else 'object'}"
    return repr(value)[:40]


def _feed(records: list[dict[str, Any]], spec: dict[str, Any]) -> dict[str, np.ndarray]:
    """ONNX inputs from the records; extra fields (not features) are ignored."""
    for i, record in enumerate(records):
        missing = [c for c in (*spec["numeric"], *spec["categorical"]) if c not in record]
        if missing:
            raise InvalidInput(
                f"instances[{i}].{missing[0]}",
                f"missing; every instance needs {len(missing)} more feature(s): {missing}",
            )
    boolean = set(spec.get("boolean", ()))
    feed = {
        c: np.array(
            [[_number(r[c], f"instances[{i}].{c}", c in boolean)] for i, r in enumerate(records)], dtype=np.float32
        )
        for c in spec["numeric"]
    }
    feed.update(
        {
            c: np.array([[_category(r[c], f"instances[{i}].{c}")] for i, r in enumerate(records)], dtype=object)
            for c in spec["categorical"]
        }
    )
    return feed


def _online_lookup(model: dict[str, Any]) -> Any:
    """BatchGetRecord of the online store (created on the first raw order): the local SQLite store named by
    ``MLOPS_ONLINE_STORE``, else SageMaker Feature Store's runtime client in ``SAGEMAKER_REGION``."""
    if model.get("lookup") is None:
        path = os.environ.get("MLOPS_ONLINE_STORE")
        if path:
            from mlops.schema.online_store import OnlineStore

            model["lookup"] = OnlineStore(path).batch_get_record
        else:
            import boto3

            region = os.environ.get("SAGEMAKER_REGION") or None  # CreateModel's Environment (endpoint_requests)
            model["lookup"] = boto3.client("sagemaker-featurestore-runtime", region_name=region).batch_get_record
    return model["lookup"]


def _featurized(records: list[dict[str, Any]], model: dict[str, Any]) -> list[dict[str, Any]]:
    """Records with every raw order (an instance with ``lines``) replaced by its feature row, its customer
    and products looked up in the online store (``mlops.schema.raw_order``); featurized rows unchanged."""
    if not any("lines" in record for record in records):
        return records
    try:
        from mlops.schema import raw_order
    except ImportError:
        raise InvalidInput("instances", "this model package cannot featurize raw orders; send feature rows") from None
    prefix = os.environ.get("MLOPS_FEATURE_GROUP_PREFIX", "mlops-dev")
    out = []
    for i, record in enumerate(records):
        if not raw_order.is_raw_order(record):
            out.append(record)
            continue
        try:
            out.append(raw_order.featurize(record, _online_lookup(model), prefix, f"instances[{i}]"))
        except raw_order.RawOrderError as exc:
            raise InvalidInput(exc.field, exc.message) from None
    return out


def predict_fn(input_data: Any, model: dict[str, Any]) -> Any:
    """Run the ONNX model on the records (raw orders featurized first)."""
    if isinstance(input_data, _Refused):
        return input_data
    try:
        records = _featurized(_records(list(input_data), model["columns"]), model)
        feed = _feed(records, model["spec"]) if records else None
    except InvalidInput as exc:
        return _refuse(exc)
    classes = list(model["spec"]["classes"])
    if feed is None:
        return {"classes": classes, "labels": [], "probabilities": []}
    labels, probabilities = model["session"].run(None, feed)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    thresholds = model.get("thresholds")
    if thresholds is not None:
        labels = np.asarray(classes, dtype=object)[np.argmax(probabilities / thresholds, axis=1)]
    return {
        "classes": classes,
        "labels": [str(v) for v in np.asarray(labels).ravel()],
        "probabilities": probabilities.round(7).tolist(),
    }


def output_fn(prediction: Any, accept: str = JSON) -> Any:
    """Serialize predictions as JSON or CSV; returns (body, content type)."""
    if isinstance(prediction, _Refused):
        return prediction.response()
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
    return _refuse(UnsupportedAccept(accept)).response()


# ---- the stock SageMaker scikit-learn container ----------------------------------------------------------
# Its model server (sagemaker-containers) answers any exception of a handler function with 500, which
# SageMaker counts as Invocation5XXErrors: the blue/green rollback alarm. There, a refused request travels
# from input_fn/predict_fn to output_fn as a _Refused value, and output_fn answers it with a 4xx Response.
# In the project's model server (and wherever the container's worker is absent) the error is raised.


class _Refused:
    """A client error carried to output_fn (stock container only)."""

    STATUS = {"InvalidInput": (400, "ValidationError"), "UnsupportedContentType": (415, "UnsupportedMediaType")}

    def __init__(self, error: ValueError) -> None:
        self.error = error

    def response(self) -> Any:
        status, code = self.STATUS.get(type(self.error).__name__, (406, "NotAcceptable"))
        body = json.dumps({"error": code, "message": str(self.error)})
        return _container_worker.Response(response=body, status=status, mimetype=JSON)


def _refuse(error: ValueError) -> _Refused:
    if _container_worker is None:
        raise error
    return _Refused(error)


try:
    from sagemaker_containers.beta.framework import worker as _container_worker
except ImportError:
    _container_worker = None
