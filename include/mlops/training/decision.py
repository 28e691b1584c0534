"""Labels a business can act on: per-class decision thresholds chosen on the validation split.

The argmax of the probabilities says "delivered" for nearly every order, because the other
classes are rare. A threshold ``t_k`` per class changes that: an order gets the class with the
largest ``p_k / t_k`` (equal thresholds give the argmax; a lower ``t_c`` predicts ``c`` more
often). The probabilities themselves never change.

:func:`choose_thresholds` picks them on the validation split for an objective:

- ``macro_f1`` (default): the mean over classes of F1;
- ``cost``: the mean cost per order under a cost matrix ``{actual: {predicted: cost}}`` (missing
  cells cost 0), e.g. what a missed return costs against a needless check of a delivered order.

The search is coordinate ascent over the non-reference classes' thresholds on a log grid, with the
most frequent class as the reference (``t = 1``). The result ships in the model package as
``decision.json`` (:func:`decision_document`), which ``inference.py`` applies.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

OBJECTIVES = ("macro_f1", "cost")
DECISION_FILE = "decision.json"
RULE = "label = the class with the largest probability / threshold"
GRID = np.geomspace(1.0 / 64, 4.0, 97)  # thresholds relative to the reference class's
ROUNDS = 3


def parse_cost_matrix(text: str | dict[str, Any] | None, classes: Sequence[str]) -> np.ndarray | None:
    """The cost matrix (rows actual, columns predicted, in ``classes`` order) of its JSON text or dict."""
    if text in (None, "", "null"):
        return None
    raw = json.loads(text) if isinstance(text, str) else text
    if not isinstance(raw, dict):
        raise ValueError(f"cost_matrix must be an object {{actual: {{predicted: cost}}}}, got {raw!r:.80}")
    matrix = np.zeros((len(classes), len(classes)))
    for actual, row in raw.items():
        if actual not in classes or not isinstance(row, dict):
            raise ValueError(
                f"cost_matrix: {actual!r} is not a class with a {{predicted: cost}} row; classes: {list(classes)}"
            )
        for predicted, cost in row.items():
            if predicted not in classes or isinstance(cost, bool) or not isinstance(cost, int | float) or cost < 0:
                raise ValueError(f"cost_matrix[{actual}][{predicted}] = {cost!r}: need a class and a cost >= 0")
            matrix[classes.index(actual), classes.index(predicted)] = float(cost)
    return matrix


def apply_thresholds(proba: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Index of each row's label: the class with the largest probability / threshold."""
    return np.argmax(np.asarray(proba, dtype=np.float64) / np.asarray(thresholds, dtype=np.float64), axis=1)


def confusion_counts(truth_index: np.ndarray, predicted_index: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts, rows actual, columns predicted."""
    return np.bincount(truth_index * n_classes + predicted_index, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def objective_value(matrix: np.ndarray, objective: str, cost: np.ndarray | None = None) -> float:
    """The objective of a confusion matrix, higher is better (macro-F1, or minus the mean cost)."""
    if objective == "cost":
        if cost is None:
            raise ValueError("objective 'cost' needs a cost_matrix")
        return -float((matrix * cost).sum() / max(matrix.sum(), 1))
    true_pos = np.diag(matrix).astype(np.float64)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1)
    f1 = np.divide(2 * true_pos, denominator, out=np.zeros_like(true_pos), where=denominator > 0)
    return float(f1.mean())


def choose_thresholds(
    y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str], objective: str = "macro_f1", cost: Any = None
) -> dict[str, Any]:
    """Per-class thresholds that maximise ``objective`` on these rows (the validation split)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"decision objective {objective!r} is not one of {OBJECTIVES}")
    classes = list(classes)
    cost_matrix = parse_cost_matrix(cost, classes)
    truth = np.array([classes.index(v) for v in y_true])
    reference = int(np.bincount(truth, minlength=len(classes)).argmax())
    thresholds = np.ones(len(classes))

    def score(candidate: np.ndarray) -> float:
        predicted = apply_thresholds(proba, candidate)
        return objective_value(confusion_counts(truth, predicted, len(classes)), objective, cost_matrix)

    argmax_value = best = score(thresholds)
    for _ in range(ROUNDS):
        for k in (i for i in range(len(classes)) if i != reference):
            for value in GRID:
                candidate = thresholds.copy()
                candidate[k] = value
                if (result := score(candidate)) > best + 1e-12:
                    best, thresholds = result, candidate
    return {
        "thresholds": dict(zip(classes, (float(t) for t in thresholds), strict=True)),
        "objective": objective,
        "validation": {"objective_value": best, "argmax_objective_value": argmax_value, "rows": len(truth)},
        **({"cost_matrix": cost_matrix.tolist()} if cost_matrix is not None else {}),
    }


def decision_document(chosen: dict[str, Any], classes: Sequence[str]) -> dict[str, Any]:
    """What ``decision.json`` holds: the rule, the classes in model order and their thresholds."""
    return {"rule": RULE, "classes": list(classes), **chosen}


def thresholds_in_order(document: dict[str, Any], classes: Sequence[str]) -> list[float]:
    """The thresholds of ``decision.json`` in ``classes`` order; raise naming a class it lacks."""
    missing = [c for c in classes if c not in document.get("thresholds", {})]
    if missing:
        raise ValueError(f"{DECISION_FILE} has no threshold for class(es) {missing}")
    return [float(document["thresholds"][c]) for c in classes]
