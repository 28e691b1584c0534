"""The serving benchmark's baseline handler: the native sklearn pipeline, served the way the stock
SageMaker scikit-learn container does (joblib model, a pandas DataFrame per request,
``predict_proba`` through the Pipeline). ``bench/bench_serving.py`` ships it as ``code/inference.py``
of a package holding the same fitted pipeline the ONNX package was exported from.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import joblib
import pandas as pd

MISSING_CATEGORY = "__missing__"  # what the training code feeds the pipeline for a missing category


def model_fn(model_dir):
    model_dir = Path(model_dir)
    spec = json.loads((model_dir / "feature_spec.json").read_text())
    return {"pipeline": joblib.load(model_dir / "model.joblib"), "spec": spec}


def input_fn(request_body, content_type):
    ct = (content_type or "").split(";", 1)[0].strip().lower()
    if isinstance(request_body, (bytes, bytearray)):
        request_body = request_body.decode("utf-8")
    if ct == "application/json":
        payload = json.loads(request_body)
        rows = payload["instances"] if isinstance(payload, dict) and "instances" in payload else [payload]
        return pd.DataFrame(rows)
    if ct == "text/csv":
        return pd.read_csv(io.StringIO(request_body), header=None)
    raise ValueError(f"content type {content_type!r} is not supported")


def predict_fn(input_data, model):
    spec = model["spec"]
    columns = [*spec["numeric"], *spec["categorical"]]
    frame = input_data.set_axis(columns, axis=1) if input_data.columns.dtype != object else input_data[columns]
    frame = frame.astype({c: "float32" for c in spec["numeric"]})
    for column in spec["categorical"]:
        frame[column] = frame[column].where(frame[column].notna(), MISSING_CATEGORY).astype(str)
    pipeline = model["pipeline"]
    return pipeline.predict_proba(frame), list(pipeline.classes_)


def output_fn(prediction, accept):
    probabilities, classes = prediction
    predictions = []
    for row in probabilities:
        best = max(range(len(classes)), key=lambda i: row[i])
        predictions.append(
            {
                "label": str(classes[best]),
                "probabilities": {c: round(float(p), 6) for c, p in zip(classes, row, strict=True)},
            }
        )
    return json.dumps({"predictions": predictions}), "application/json"
