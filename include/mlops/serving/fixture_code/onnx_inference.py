"""SageMaker handler for the serving fixture package: an ONNX sklearn pipeline on onnxruntime.

This file is the reference for the contract ``mlops.serving.handler`` relies on (the training
stage's ``inference.py`` follows the same one):

- JSON: ``{"instances": [{feature: value, ...}, ...]}`` or a single ``{feature: value}`` object;
- CSV: header-less rows, columns in the order of ``feature_spec.json``'s ``features``;
- output: ``{"predictions": [{"label": str, "probabilities": {class: p}}]}`` (JSON) or
  ``label,p_class1,p_class2,...`` rows (CSV);
- bad input raises ``InvalidInput(field, message)`` (-> 400 naming the field), an unknown
  content type ``UnsupportedContentType`` (-> 415).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

try:  # inside the mlops server; on a stock SageMaker container any ValueError maps to a client error
    from mlops.serving.errors import InvalidInput, UnsupportedAccept, UnsupportedContentType
except ImportError:  # pragma: no cover

    class InvalidInput(ValueError):
        def __init__(self, field, message):
            super().__init__(f"{field}: {message}")

    class UnsupportedContentType(ValueError):
        pass

    class UnsupportedAccept(ValueError):
        pass


class _Model:
    def __init__(self, session, spec):
        self.session = session
        self.features = [(f["name"], f["type"]) for f in spec["features"]]
        self.classes = list(spec["classes"])
        self.output_names = ["label", "probabilities"]


def model_fn(model_dir):
    model_dir = Path(model_dir)
    spec = json.loads((model_dir / "feature_spec.json").read_text())
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])
    return _Model(session, spec)


def _rows_from_json(body):
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise InvalidInput("body", f"is not valid JSON ({exc})") from None
    if isinstance(payload, dict) and "instances" in payload:
        rows, where = payload["instances"], "instances"
        if not isinstance(rows, list) or not rows:
            raise InvalidInput("instances", "must be a non-empty list of objects")
    elif isinstance(payload, dict):
        rows, where = [payload], None
    else:
        raise InvalidInput("body", 'must be an object or {"instances": [...]}')
    return rows, where


def input_fn(request_body, content_type):
    ct = (content_type or "").split(";", 1)[0].strip().lower()
    if isinstance(request_body, (bytes, bytearray)):
        try:
            request_body = request_body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("body", "is not UTF-8 text") from None
    if ct == "application/json":
        return ("json", *_rows_from_json(request_body))
    if ct == "text/csv":
        lines = [line for line in request_body.splitlines() if line.strip()]
        if not lines:
            raise InvalidInput("body", "has no CSV rows")
        return ("csv", [line.split(",") for line in lines], None)
    raise UnsupportedContentType(content_type)


def _feeds(data, model):
    kind, rows, where = data
    n = len(rows)
    feeds = {}
    for col, (name, ftype) in enumerate(model.features):
        values = []
        for i, row in enumerate(rows):
            if kind == "json":
                field = f"{where}[{i}].{name}" if where else name
                if not isinstance(row, dict):
                    raise InvalidInput(f"{where}[{i}]" if where else "body", "must be an object of feature values")
                value = row.get(name)
                if value is None:
                    raise InvalidInput(field, "is missing")
            else:
                field = f"row {i + 1} column {col + 1} ({name})"
                if len(row) != len(model.features):
                    raise InvalidInput(
                        f"row {i + 1}",
                        f"has {len(row)} columns, expected {len(model.features)}: "
                        + ",".join(f for f, _ in model.features),
                    )
                value = row[col].strip()
            if ftype == "numeric":
                if isinstance(value, bool):
                    raise InvalidInput(field, f"must be a number, got {value!r}")
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    raise InvalidInput(field, f"must be a number, got {value!r}") from None
                if value != value:
                    raise InvalidInput(field, "must be a number, got NaN")
            elif not isinstance(value, str):
                raise InvalidInput(field, f"must be a string, got {value!r}")
            values.append(value)
        dtype = np.float32 if ftype == "numeric" else object
        feeds[name] = np.array(values, dtype=dtype).reshape(n, 1)
    return feeds


def predict_fn(input_data, model):
    labels, probabilities = model.session.run(model.output_names, _feeds(input_data, model))
    return labels, probabilities, model.classes


def output_fn(prediction, accept):
    labels, probabilities, classes = prediction
    at = (accept or "application/json").split(";", 1)[0].strip().lower()
    if at in ("application/json", "*/*"):
        predictions = [
            {"label": str(label), "probabilities": {c: round(float(p), 6) for c, p in zip(classes, row, strict=True)}}
            for label, row in zip(labels, probabilities.tolist(), strict=True)
        ]
        return json.dumps({"predictions": predictions}), "application/json"
    if at == "text/csv":
        lines = [
            ",".join([str(label)] + [f"{p:.6f}" for p in row])
            for label, row in zip(labels, probabilities.tolist(), strict=True)
        ]
        return "\n".join(lines) + "\n", "text/csv"
    raise UnsupportedAccept(accept)
