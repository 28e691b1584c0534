"""A small model package for serving tests and the benchmark (not the training stage's model).

A sklearn Pipeline (OneHotEncoder for two categoricals + numeric passthrough ->
GradientBoostingClassifier over delivered/returned/cancelled), packaged as SageMaker would:

    model.tar.gz
      model.onnx | model.joblib       the model (ONNX for serving, joblib for the baseline)
      feature_spec.json               feature order and types, classes
      input_example.json              a request body the deploy smoke test sends
      code/inference.py               the SageMaker handler functions
      code/requirements.txt
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Literal

FEATURES: list[dict[str, str]] = [
    {"name": "channel", "type": "categorical"},
    {"name": "region", "type": "categorical"},
    {"name": "basket_value", "type": "numeric"},
    {"name": "items", "type": "numeric"},
    {"name": "days_since_last_order", "type": "numeric"},
]
CLASSES = ["cancelled", "delivered", "returned"]
CHANNELS = ["web", "app", "store"]
REGIONS = ["north", "south", "east", "west"]
EXAMPLE = {"channel": "web", "region": "north", "basket_value": 42.5, "items": 3, "days_since_last_order": 12}
CODE_DIR = Path(__file__).parent / "fixture_code"


def training_frame(rows: int = 2000, seed: int = 7):  # -> pandas.DataFrame
    """Synthetic orders with a learnable delivery outcome."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "channel": rng.choice(CHANNELS, rows),
            "region": rng.choice(REGIONS, rows),
            "basket_value": rng.gamma(2.0, 30.0, rows).round(2),
            "items": rng.integers(1, 10, rows).astype(float),
            "days_since_last_order": rng.integers(0, 120, rows).astype(float),
        }
    )
    score_return = 0.02 * frame["basket_value"] + 0.3 * (frame["channel"] == "web") - 2.5
    score_cancel = 0.015 * frame["days_since_last_order"] + 0.4 * (frame["region"] == "east") - 2.8
    noise = rng.normal(0, 0.6, (rows, 2))
    status = np.where(score_return + noise[:, 0] > 0, "returned", "delivered")
    status = np.where(score_cancel + noise[:, 1] > 0, "cancelled", status)
    frame["status"] = status
    return frame


def train_pipeline(rows: int = 2000, seed: int = 7):  # -> sklearn Pipeline
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = training_frame(rows, seed)
    categorical = [f["name"] for f in FEATURES if f["type"] == "categorical"]
    numeric = [f["name"] for f in FEATURES if f["type"] == "numeric"]
    pre = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), categorical), ("num", "passthrough", numeric)]
    )
    pipeline = Pipeline(
        [("pre", pre), ("clf", GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=seed))]
    )
    pipeline.fit(frame[[f["name"] for f in FEATURES]], frame["status"])
    return pipeline


def to_onnx(pipeline) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    inputs = [
        (f["name"], StringTensorType([None, 1]) if f["type"] == "categorical" else FloatTensorType([None, 1]))
        for f in FEATURES
    ]
    clf = pipeline.named_steps["clf"]
    onx = convert_sklearn(pipeline, initial_types=inputs, options={id(clf): {"zipmap": False}}, target_opset=17)
    return onx.SerializeToString()


def build_package(
    dest: Path, *, kind: Literal["onnx", "sklearn"] = "onnx", pipeline=None, broken: str | None = None
) -> Path:
    """Write ``dest`` (a ``model.tar.gz``) with an ONNX or a joblib model and matching code.

    ``broken``: ``"no_code"`` omits code/inference.py, ``"predict_raises"`` ships a predict_fn that
    raises (model errors), ``"model_fn_raises"`` a model that cannot load (failed health check).
    """
    import joblib

    pipeline = pipeline if pipeline is not None else train_pipeline()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "code").mkdir()
        if kind == "onnx":
            (root / "model.onnx").write_bytes(to_onnx(pipeline))
            shutil.copyfile(CODE_DIR / "onnx_inference.py", root / "code" / "inference.py")
            (root / "code" / "requirements.txt").write_text("onnxruntime\nnumpy\n")
        else:
            joblib.dump(pipeline, root / "model.joblib")
            shutil.copyfile(CODE_DIR / "sklearn_inference.py", root / "code" / "inference.py")
            (root / "code" / "requirements.txt").write_text("scikit-learn\npandas\njoblib\n")
        if broken == "no_code":
            (root / "code" / "inference.py").unlink()
        elif broken == "predict_raises":
            with (root / "code" / "inference.py").open("a") as fh:
                fh.write("\n\ndef predict_fn(input_data, model):\n    raise RuntimeError('model exploded')\n")
        elif broken == "model_fn_raises":
            with (root / "code" / "inference.py").open("a") as fh:
                fh.write("\n\ndef model_fn(model_dir):\n    raise RuntimeError('weights are corrupt')\n")
        spec = {"features": FEATURES, "classes": list(pipeline.classes_), "target": "status"}
        (root / "feature_spec.json").write_text(json.dumps(spec, indent=2))
        (root / "input_example.json").write_text(json.dumps({"instances": [EXAMPLE]}))
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(dest, "w:gz") as tar:
            for path in sorted(root.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return dest
