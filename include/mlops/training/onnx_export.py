"""Export the fitted Pipeline (preprocessing included) to ONNX, and check parity.

Inputs are one ``[None, 1]`` tensor per feature column (float for numeric, string for
categorical); outputs are ``label`` (string) and ``probabilities`` (float ``[None, n_classes]``,
columns in ``FeatureSpec.classes`` order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mlops.training.features import FeatureSpec

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
Scorer = Callable[[pd.DataFrame], np.ndarray]  # model inputs -> class probabilities (columns in spec.classes order)


class ParityError(RuntimeError):
    """The ONNX model's probabilities differ from the native model's beyond the tolerance."""


def _register_lightgbm() -> None:
    from lightgbm import LGBMClassifier
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    update_registered_converter(
        LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        convert_lightgbm,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )


def to_onnx(pipeline: Any, spec: FeatureSpec) -> bytes:
    """The serialized ONNX model of a fitted Pipeline for ``spec``."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    _register_lightgbm()
    inputs = [(c, FloatTensorType([None, 1])) for c in spec.numeric]
    inputs += [(c, StringTensorType([None, 1])) for c in spec.categorical]
    classifier = pipeline.steps[-1][1]
    onx = convert_sklearn(
        pipeline,
        initial_types=inputs,
        options={id(classifier): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    onx.doc_string = f"classes={','.join(spec.classes)}"
    return onx.SerializeToString()


def onnx_feed(frame: pd.DataFrame, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """ONNX Runtime inputs for a frame already passed through ``features.model_inputs``."""
    feed = {c: frame[c].to_numpy(np.float32).reshape(-1, 1) for c in spec.numeric}
    feed.update({c: frame[c].to_numpy(object).astype(str).astype(object).reshape(-1, 1) for c in spec.categorical})
    return feed


def onnx_scorer(model_bytes: bytes, spec: FeatureSpec) -> Scorer:
    """One ONNX Runtime session for ``model_bytes``: frame (``features.model_inputs``) -> class probabilities,
    columns in ``spec.classes`` order."""
    import onnxruntime as ort

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])

    def probabilities(frame: pd.DataFrame) -> np.ndarray:
        _, proba = session.run(None, onnx_feed(frame, spec))
        return np.asarray(proba, dtype=np.float64)

    return probabilities


def onnx_probabilities(model_bytes: bytes, frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Class probabilities from ONNX Runtime, columns in ``spec.classes`` order."""
    return onnx_scorer(model_bytes, spec)(frame)


def check_parity(pipeline: Any, scorer: Scorer, frame: pd.DataFrame, spec: FeatureSpec, tolerance: float) -> float:
    """Max |Δp| between the native model's and the ONNX model's probabilities (``scorer``: :func:`onnx_scorer`)
    on ``frame``; raise ParityError above ``tolerance``."""
    if list(pipeline.classes_) != list(spec.classes):
        raise ParityError(f"native classes {list(pipeline.classes_)} differ from the spec's {list(spec.classes)}")
    native = pipeline.predict_proba(frame)
    exported = scorer(frame)
    worst = float(np.max(np.abs(native - exported))) if len(frame) else 0.0
    if not worst <= tolerance:
        row = int(np.argmax(np.max(np.abs(native - exported), axis=1)))
        raise ParityError(
            f"ONNX parity failed: max |delta p| = {worst:.3g} > {tolerance:g} on {len(frame)} test rows "
            f"(worst row {row}: native {native[row].round(6).tolist()} vs onnx {exported[row].round(6).tolist()}). "
            "The exported model would serve different predictions; check the converter versions "
            "(skl2onnx/onnxmltools) and the feature types before registering."
        )
    return worst
