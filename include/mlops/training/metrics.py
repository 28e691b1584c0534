"""Evaluation metrics: mean Average Precision (the gate metric) and the usual classification metrics.

``average_precision`` is computed here (vectorised, the step-wise definition sklearn uses:
AP = sum_n (R_n - R_{n-1}) P_n over distinct score thresholds), so the tests can check it
against ``sklearn.metrics.average_precision_score``. ``model_quality`` shapes the result like
SageMaker Model Monitor's ModelQuality ``statistics.json`` (``multiclass_classification_metrics``
with ``{"value", "standard_deviation"}`` per metric), which ModelMetrics points at.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlops.training.gate import GATE_METRIC


def average_precision(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """AP of one class from binary truth and scores; NaN when the class has no positives."""
    truth = np.asarray(is_positive, dtype=bool)
    positives = int(truth.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    sorted_scores, sorted_truth = np.asarray(scores, dtype=np.float64)[order], truth[order]
    last_of_threshold = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    true_pos = np.cumsum(sorted_truth)[last_of_threshold]
    predicted_pos = last_of_threshold + 1
    precision = true_pos / predicted_pos
    recall = true_pos / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def per_class_average_precision(y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """One-vs-rest AP per class; ``proba`` columns follow ``classes``."""
    truth = np.asarray(y_true)
    return {name: average_precision(truth == name, proba[:, i]) for i, name in enumerate(classes)}


def mean_average_precision(y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str]) -> float:
    """Macro mean of per-class AP over the classes present in ``y_true``."""
    values = [v for v in per_class_average_precision(y_true, proba, classes).values() if not np.isnan(v)]
    if not values:
        raise ValueError("no class has a positive example; cannot compute mAP")
    return float(np.mean(values))


def log_loss(y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str]) -> float:
    """Multiclass cross-entropy."""
    index = {c: i for i, c in enumerate(classes)}
    picked = proba[np.arange(len(proba)), [index[v] for v in y_true]]
    return float(-np.mean(np.log(np.clip(picked, 1e-15, 1.0))))


def confusion(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Counts, rows = actual, columns = predicted."""
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(matrix, ([index[v] for v in y_true], [index[v] for v in y_pred]), 1)
    return matrix


def scalar_metrics(y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """mAP, per-class AP, accuracy, macro/weighted precision, recall and F1, log loss."""
    truth = np.asarray(y_true)
    predicted = np.asarray(classes)[np.argmax(proba, axis=1)]
    matrix = confusion(truth, predicted, classes)
    support = matrix.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(np.diag(matrix) / matrix.sum(axis=0))
        recall = np.nan_to_num(np.diag(matrix) / support)
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    weights = support / max(support.sum(), 1)
    out = {GATE_METRIC: mean_average_precision(truth, proba, classes)}
    out.update({f"average_precision_{c}": v for c, v in per_class_average_precision(truth, proba, classes).items()})
    out.update(
        accuracy=float(np.mean(truth == predicted)),
        macro_precision=float(precision.mean()),
        macro_recall=float(recall.mean()),
        macro_f1=float(f1.mean()),
        weighted_precision=float(precision @ weights),
        weighted_recall=float(recall @ weights),
        weighted_f1=float(f1 @ weights),
        log_loss=log_loss(truth, proba, classes),
    )
    return out


def bootstrap_std(
    y_true: Sequence[str],
    proba: np.ndarray,
    classes: Sequence[str],
    rounds: int = 10,
    max_rows: int = 20_000,
    seed: int = 0,
) -> dict[str, float]:
    """Standard deviation of each scalar metric over bootstrap resamples (as Model Monitor reports)."""
    rng = np.random.default_rng(seed)
    truth = np.asarray(y_true)
    draws: list[dict[str, float]] = []
    for _ in range(rounds):
        rows = rng.integers(0, len(truth), size=min(len(truth), max_rows))
        draws.append(scalar_metrics(truth[rows], proba[rows], classes))
    return {name: float(np.nanstd([d[name] for d in draws])) for name in draws[0]} if draws else {}


def model_quality(
    y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str], *, bootstrap_rounds: int = 10
) -> dict[str, Any]:
    """The ModelQuality statistics document (``evaluation.json``) for one model on one split."""
    truth = np.asarray(y_true)
    values = scalar_metrics(truth, proba, classes)
    spread = bootstrap_std(truth, proba, classes, rounds=bootstrap_rounds)
    predicted = np.asarray(classes)[np.argmax(proba, axis=1)]
    matrix = confusion(truth, predicted, classes)
    metrics: dict[str, Any] = {
        name: {"value": round(value, 6), "standard_deviation": round(spread.get(name, float("nan")), 6)}
        for name, value in values.items()
    }
    metrics["confusion_matrix"] = {
        a: {p: int(matrix[i, j]) for j, p in enumerate(classes)} for i, a in enumerate(classes)
    }
    return {
        "version": 0.0,
        "dataset": {"item_count": len(truth), "class_counts": {c: int((truth == c).sum()) for c in classes}},
        "multiclass_classification_metrics": metrics,
    }


def precision_recall_curve(is_positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision at each distinct threshold (for plotting)."""
    truth = np.asarray(is_positive, dtype=bool)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    sorted_scores, sorted_truth = np.asarray(scores)[order], truth[order]
    last = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    true_pos = np.cumsum(sorted_truth)[last]
    return np.r_[0.0, true_pos / max(truth.sum(), 1)], np.r_[1.0, true_pos / (last + 1)]
