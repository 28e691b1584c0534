"""Model quality on delayed ground truth: join, metrics, calibration and the verdict (job code).

The metrics are the training evaluation's (:mod:`mlops.training.metrics`: mAP = macro mean of the
one-vs-rest average precision over the classes present, per-class AP, accuracy, F1, log loss,
confusion counts), so a window's mAP is comparable with the registered model's evaluated mAP.
Added here: the Brier score and reliability bins of the top-class confidence, and label coverage.

Files follow SageMaker Model Monitor's model-quality contract: ``statistics.json``
(``multiclass_classification_metrics``), ``constraints.json`` (``multiclass_classification_constraints``,
``{"threshold", "comparison_operator"}``) and ``constraint_violations.json`` (``{"violations":
[{"metric_name", "constraint_check_type", "description"}]}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlops.training import metrics

MAP = metrics.GATE_METRIC
LESS_THAN = "LessThanThreshold"


@dataclass(frozen=True)
class Joined:
    """Predictions that met their label: ids, true labels, probabilities (columns = classes)."""

    ids: list[str]
    truth: np.ndarray
    proba: np.ndarray
    classes: list[str]
    predictions: int  # joinable predictions in the window

    @property
    def coverage(self) -> float:
        return len(self.ids) / self.predictions if self.predictions else 0.0


def join(probabilities: dict[str, dict[str, float]], labels: pd.Series, classes: Sequence[str]) -> Joined:
    """Predictions (by inference id) inner-joined with labels (by order id); probabilities in ``classes`` order."""
    ids = sorted(i for i in probabilities if i in labels.index)
    proba = np.array([[probabilities[i].get(c, 0.0) for c in classes] for i in ids], dtype=np.float64)
    truth = labels.loc[ids].astype(str).to_numpy() if ids else np.array([], dtype=object)
    return Joined(ids, truth, proba.reshape(len(ids), len(classes)), list(classes), len(probabilities))


def calibration(truth: np.ndarray, proba: np.ndarray, classes: Sequence[str], bins: int = 10) -> dict[str, Any]:
    """Multiclass Brier score and reliability bins of the top-class confidence (count, confidence, accuracy)."""
    onehot = (truth[:, None] == np.asarray(classes)[None, :]).astype(np.float64)
    confidence = proba.max(axis=1)
    correct = np.asarray(classes)[proba.argmax(axis=1)] == truth
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    table = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            table.append({
                "lower": round(float(edges[b]), 3),
                "upper": round(float(edges[b + 1]), 3),
                "count": int(inside.sum()),
                "confidence": round(float(confidence[inside].mean()), 6),
                "accuracy": round(float(correct[inside].mean()), 6),
            })  # fmt: skip
    gap = sum(row["count"] * abs(row["confidence"] - row["accuracy"]) for row in table) / max(len(truth), 1)
    return {
        "brier_score": round(float(np.mean(np.sum((proba - onehot) ** 2, axis=1))), 6),
        "expected_calibration_error": round(float(gap), 6),
        "reliability": table,
    }


def statistics_document(joined: Joined, bootstrap_rounds: int = 10) -> dict[str, Any]:
    """Model Monitor's model-quality ``statistics.json`` for the joined rows, with calibration added."""
    doc = metrics.model_quality(joined.truth, joined.proba, joined.classes, bootstrap_rounds=bootstrap_rounds)
    doc["calibration"] = calibration(joined.truth, joined.proba, joined.classes)
    return doc


def constraints_document(baseline_map: float, max_map_drop: float) -> dict[str, Any]:
    """``constraints.json``: mAP may not fall below the champion's evaluated mAP minus the margin."""
    threshold = round(baseline_map - max_map_drop, 6)
    return {
        "version": 0.0,
        "multiclass_classification_constraints": {MAP: {"threshold": threshold, "comparison_operator": LESS_THAN}},
    }


def violations_document(
    statistics: dict[str, Any], constraints: dict[str, Any], confidence_z: float = 0.0
) -> dict[str, Any]:
    """``constraint_violations.json``: one LessThanThreshold violation per metric below its threshold by more
    than sampling noise: ``value + confidence_z * standard_deviation < threshold`` (the bootstrap's standard
    deviation; ``confidence_z`` 0 compares the value alone, as Model Monitor does). A small window's mAP
    scatters several points around the model's true mAP, so a plain comparison raises false alarms."""
    found = []
    values = statistics["multiclass_classification_metrics"]
    for name, rule in constraints["multiclass_classification_constraints"].items():
        metric = values.get(name) or {}
        value, spread = metric.get("value"), metric.get("standard_deviation")
        margin = confidence_z * (spread if isinstance(spread, float) and spread == spread else 0.0)
        if value is not None and rule["comparison_operator"] == LESS_THAN and value + margin < rule["threshold"]:
            found.append({
                "metric_name": name,
                "constraint_check_type": LESS_THAN,
                "description": f"Metric {name} with {value} +/- {spread} was {LESS_THAN} '{rule['threshold']}'",
            })  # fmt: skip
    return {"violations": found}


def window_status(labelled: int, coverage: float, *, min_labelled_rows: int, min_label_coverage: float) -> str:
    """``pending`` until enough of the window's predictions have their labels, else ``evaluated``."""
    return "evaluated" if labelled >= min_labelled_rows and coverage >= min_label_coverage else "pending"
