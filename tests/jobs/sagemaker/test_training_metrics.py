"""mAP and the classification metrics of the evaluation job against sklearn, and the evaluation.json
document they make as the gate reads it (the gate's decisions: tests/unit/test_training_gate.py)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score
from sklearn.preprocessing import label_binarize

from mlops.training import gate, metrics

CLASSES = ("cancelled", "delivered", "returned")


def test_average_precision_known_case():
    # sklearn's documented example: AP = 0.8333...
    y = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    assert metrics.average_precision(y == 1, scores) == pytest.approx(0.8333333333, abs=1e-9)
    assert metrics.average_precision(y == 1, scores) == pytest.approx(average_precision_score(y, scores))


def test_map_matches_sklearn_macro_with_ties():
    rng = np.random.default_rng(7)
    y = rng.choice(CLASSES, size=500, p=[0.1, 0.75, 0.15])
    proba = rng.dirichlet([1, 1, 1], size=500).round(2)  # rounding makes many tied scores
    expected = average_precision_score(label_binarize(y, classes=list(CLASSES)), proba, average="macro")
    assert metrics.mean_average_precision(y, proba, CLASSES) == pytest.approx(expected, abs=1e-12)
    per_class = metrics.per_class_average_precision(y, proba, CLASSES)
    for i, name in enumerate(CLASSES):
        assert per_class[name] == pytest.approx(average_precision_score(y == name, proba[:, i]), abs=1e-12)


def test_perfect_and_absent_class():
    y = np.array(["delivered", "returned", "delivered"])
    proba = np.array([[0.0, 1.0, 0.0], [0.0, 0.1, 0.9], [0.0, 0.8, 0.2]])
    per_class = metrics.per_class_average_precision(y, proba, CLASSES)
    assert np.isnan(per_class["cancelled"])  # no positives: undefined, left out of the mean
    assert metrics.mean_average_precision(y, proba, CLASSES) == pytest.approx(1.0)


def test_model_quality_document_shape_and_values():
    rng = np.random.default_rng(1)
    y = rng.choice(CLASSES, size=300)
    proba = rng.dirichlet([2, 2, 2], size=300)
    doc = metrics.model_quality(y, proba, CLASSES, bootstrap_rounds=3)
    block = doc["multiclass_classification_metrics"]
    assert set(block[metrics.GATE_METRIC]) == {"value", "standard_deviation"}
    assert {f"average_precision_{c}" for c in CLASSES} <= set(block)
    predicted = np.asarray(CLASSES)[proba.argmax(axis=1)]
    assert block["accuracy"]["value"] == pytest.approx(np.mean(predicted == y), abs=1e-6)
    assert block["weighted_f1"]["value"] == pytest.approx(f1_score(y, predicted, average="weighted"), abs=1e-6)
    assert block["macro_f1"]["value"] == pytest.approx(f1_score(y, predicted, average="macro"), abs=1e-6)
    assert sum(sum(row.values()) for row in block["confusion_matrix"].values()) == 300
    assert doc["dataset"]["item_count"] == 300
    assert gate.gate_value(doc) == block[metrics.GATE_METRIC]["value"]


def test_gate_compares_the_documents_the_job_writes():
    """The worker's gate reads these documents: its comparison table lists both models from them."""
    rng = np.random.default_rng(2)
    y = rng.choice(CLASSES, size=200)
    challenger = metrics.model_quality(y, rng.dirichlet([1, 1, 1], size=200), CLASSES, bootstrap_rounds=2)
    champion = metrics.model_quality(y, rng.dirichlet([1, 1, 1], size=200), CLASSES, bootstrap_rounds=2)
    decision = gate.decide(
        gate.gate_value(challenger), threshold=0.0, champion_map=gate.gate_value(champion), champion_version=1
    )
    table = gate.comparison_table(decision, challenger, champion)
    first_row = table.splitlines()[2]
    assert first_row.startswith(metrics.GATE_METRIC)
    assert f"{gate.gate_value(champion):.4f}" in first_row and "verdict:" in table
