"""The model: one sklearn Pipeline, preprocessing included, so ONNX export covers all of it.

``ColumnTransformer`` (median-imputed float32 numerics passed through; one-hot categoricals
that ignore unseen values) feeding a LightGBM ``LGBMClassifier``. LightGBM is fast at 1M
rows and converts to ONNX through onnxmltools' converter registered into skl2onnx;
sklearn's HistGradientBoosting does not convert (skl2onnx 1.20).
"""

from __future__ import annotations

from typing import Any

from mlops.training.features import FeatureSpec
from mlops.training.hyperparameters import (  # noqa: F401 - re-exported for train.py
    DEFAULT_HYPERPARAMETERS,
    HYPERPARAMETER_TYPES,
    coerce_hyperparameters,
)


def build_pipeline(spec: FeatureSpec, hyperparameters: dict[str, Any]) -> Any:
    """An unfitted Pipeline(ColumnTransformer -> LGBMClassifier) for ``spec``."""
    from lightgbm import LGBMClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    hp = coerce_hyperparameters(hyperparameters)
    transformers: list[tuple[str, Any, list[str]]] = []
    if spec.numeric:
        transformers.append(("num", SimpleImputer(strategy="median"), list(spec.numeric)))
    if spec.categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype="float32")
        transformers.append(("cat", encoder, list(spec.categorical)))
    classifier = LGBMClassifier(
        n_estimators=hp["n_estimators"],
        learning_rate=hp["learning_rate"],
        num_leaves=hp["num_leaves"],
        max_depth=hp["max_depth"],
        min_child_samples=hp["min_child_samples"],
        subsample=hp["subsample"],
        subsample_freq=1 if hp["subsample"] < 1 else 0,
        colsample_bytree=hp["colsample_bytree"],
        reg_lambda=hp["reg_lambda"],
        class_weight=None if hp["class_weight"] in ("", "none", "None") else hp["class_weight"],
        random_state=hp["seed"],
        n_jobs=hp["n_jobs"] or None,
        verbose=-1,
    )
    return Pipeline([("preprocess", ColumnTransformer(transformers, sparse_threshold=0.0)), ("classifier", classifier)])


def fit(
    pipeline: Any,
    x_train: Any,
    y_train: Any,
    x_valid: Any,
    y_valid: Any,
    early_stopping_rounds: int,
    min_delta: float = 0.0,
) -> Any:
    """Fit with early stopping on validation (logloss logged to stdout): it stops after ``early_stopping_rounds``
    rounds without a gain of more than ``min_delta``; then snap thresholds to float32."""
    import warnings

    import lightgbm

    warnings.filterwarnings("ignore", message=".*eval_set.*is deprecated", category=Warning)
    preprocess = pipeline.named_steps["preprocess"].fit(x_train)
    valid_matrix = preprocess.transform(x_valid)
    callbacks = [lightgbm.log_evaluation(period=50)]
    if early_stopping_rounds > 0:
        callbacks.append(lightgbm.early_stopping(early_stopping_rounds, verbose=True, min_delta=min_delta))
    pipeline.named_steps["classifier"].fit(
        preprocess.transform(x_train),
        y_train,
        eval_set=[(valid_matrix, y_valid)],  # eval_X/eval_y (the new spelling) skip label encoding in 4.7
        eval_names=["validation"],
        eval_metric="multi_logloss",
        callbacks=callbacks,
    )
    snapped = snap_thresholds_to_float32(pipeline)
    print(f"snapped {snapped} split thresholds to float32 (exact ONNX parity for float32 inputs)", flush=True)
    return pipeline


def _floor_float32(values: Any) -> Any:
    """The largest float32 <= each double (as float64)."""
    import numpy as np

    doubles = np.asarray(values, dtype=np.float64)
    nearest = doubles.astype(np.float32)
    below = np.where(nearest.astype(np.float64) > doubles, np.nextafter(nearest, np.float32(-np.inf)), nearest)
    return below.astype(np.float64)


def snap_thresholds_to_float32(pipeline: Any) -> int:
    """Round every split threshold of the fitted LightGBM model down to a float32; return how many changed.

    ONNX tree ensembles store thresholds as float32. A double threshold t within half a float32
    step of a data value would round onto it and flip ``x <= t`` for that value. With t replaced
    by floor32(t), ``x <= t`` is unchanged for every float32 x (the model's inputs are float32),
    and the threshold is exact in ONNX: native and ONNX decisions become identical.
    """
    import lightgbm
    import numpy as np

    classifier = pipeline.steps[-1][1]
    lines = classifier.booster_.model_to_string().split("\n")
    changed = 0
    for i, line in enumerate(lines):
        if line.startswith("num_cat=") and line != "num_cat=0":
            raise ValueError("categorical splits cannot be snapped; the model must use one-hot encoded inputs")
        if line.startswith("threshold="):
            original = np.array([float(v) for v in line[len("threshold=") :].split()])
            snapped = _floor_float32(original)
            changed += int(np.sum(snapped != original))
            lines[i] = "threshold=" + " ".join(repr(float(v)) for v in snapped)
    # tree_sizes= gives each tree's byte length, which the edit changed; without it LightGBM parses sequentially
    text = "\n".join(line for line in lines if not line.startswith("tree_sizes="))
    classifier._Booster = lightgbm.Booster(model_str=text)
    return changed
