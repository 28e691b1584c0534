"""Baseline SageMaker handler: the native pickled sklearn pipeline, served the way the stock
SageMaker scikit-learn container does (joblib model, pandas DataFrame per request,
``predict_proba`` with the framework). Used by ``bench/bench_serving.py`` as the baseline.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import joblib
import pandas as pd


def model_fn(model_dir):
    model_dir = Path(model_dir)
    spec = json.loads((model_dir / "feature_spec.json").read_text())
    return {"pipeline": joblib.load(model_dir / "model.joblib"), "features": [f["name"] for f in spec["features"]]}


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
    pipeline = model["pipeline"]
    if list(input_data.columns) != model["features"]:
        input_data = (
            input_data.set_axis(model["features"], axis=1)
            if input_data.columns.dtype != object
            else input_data[model["features"]]
        )
    return pipeline.predict_proba(input_data), list(pipeline.classes_)


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
