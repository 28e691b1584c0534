"""The registration gate on the worker: its decisions, messages and comparison table over the
evaluation.json documents the evaluation job writes (the metrics themselves are tested in the
SageMaker runtime, tests/jobs/sagemaker/test_training_metrics.py)."""

from __future__ import annotations

import pytest

from mlops.training import gate


def _document(map_value: float, accuracy: float) -> dict:
    """An evaluation.json in the ModelQuality shape the evaluation job writes (two metrics of it)."""
    return {
        "dataset": {"item_count": 200},
        "multiclass_classification_metrics": {
            "accuracy": {"value": accuracy, "standard_deviation": 0.02},
            gate.GATE_METRIC: {"value": map_value, "standard_deviation": 0.03},
            "confusion_matrix": {"delivered": {"delivered": 200}},
        },
    }


def test_gate_value_reads_the_map_and_names_a_missing_one():
    assert gate.gate_value(_document(0.61, 0.9)) == 0.61
    with pytest.raises(ValueError, match=r"no multiclass_classification_metrics\.mean_average_precision\.value"):
        gate.gate_value({"multiclass_classification_metrics": {"accuracy": {"value": 0.9}}})


def test_gate_accepts_first_model_above_threshold():
    decision = gate.decide(0.62, threshold=0.5)
    assert decision.accepted and decision.required_map == 0.5
    gate.enforce(decision)


def test_gate_rejects_sub_threshold_model():
    decision = gate.decide(0.41, threshold=0.5)
    assert not decision.accepted
    with pytest.raises(gate.GateRejected, match=r"below the threshold 0\.5000.*map_threshold"):
        gate.enforce(decision)


def test_gate_rejects_worse_challenger_and_tolerates_small_drops():
    worse = gate.decide(0.60, threshold=0.5, champion_map=0.70, tolerance=0.01, champion_version=3)
    assert not worse.accepted
    assert "champion (v3) 0.7000 minus tolerance 0.0100" in worse.reasons[0]
    within = gate.decide(0.695, threshold=0.5, champion_map=0.70, tolerance=0.01, champion_version=3)
    assert within.accepted and within.required_map == pytest.approx(0.69)


def test_comparison_table_lists_both_models():
    challenger, champion = _document(0.6512, 0.91), _document(0.6234, 0.88)
    decision = gate.decide(
        gate.gate_value(challenger), threshold=0.0, champion_map=gate.gate_value(champion), champion_version=1
    )
    table = gate.comparison_table(decision, challenger, champion)
    first_row = table.splitlines()[2]
    assert first_row.startswith(gate.GATE_METRIC)  # the gate metric first, whatever the document's order
    assert "0.6512" in first_row and "0.6234" in first_row and "+0.0278" in first_row
    assert "confusion_matrix" not in table and "accuracy" in table
    assert "verdict: ACCEPTED" in table and "champion v1 mAP 0.6234" in table
