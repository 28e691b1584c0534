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


def _with_recent(document: dict, recent_map: float, trigger: str | None, rows: int = 900) -> dict:
    """The document with the recent-rows block the evaluation job adds (orders after the drift point)."""
    rule = "orders from the drift point 2026-06-01T00:00:00+00:00"
    usable = rows >= 200
    return {**document, "recent": {"trigger": trigger, "rule": rule, "rows": rows, "usable": usable,
                                   gate.GATE_METRIC: recent_map}}  # fmt: skip


def test_after_drift_the_gate_decides_on_the_recent_rows_and_shows_both_comparisons():
    from mlops.training.steps import decide

    # on the mixed test split the challenger looks worse (0.60 vs 0.63); on drifted traffic it is better
    challenger = _with_recent(_document(0.60, 0.9), 0.58, "input_drift")
    champion_doc = _with_recent(_document(0.63, 0.9), 0.52, "input_drift")
    champion = {"version": 3, "map": 0.63}
    decision, table = decide(challenger, champion_doc, champion, threshold=0.4, tolerance=0.01)
    assert decision.accepted and decision.basis.startswith("900 recent rows")
    assert decision.challenger_map == 0.58 and decision.champion_map == 0.52
    assert "mAP, recent rows" in table and "+0.0600" in table and "-0.0300" in table  # both comparisons
    assert "gate on the 900 recent rows" in table
    # the same documents from a run not started by drift: the whole split decides, and rejects
    plain = decide(
        _with_recent(_document(0.60, 0.9), 0.58, None), champion_doc, champion, threshold=0.4, tolerance=0.01
    )
    assert not plain[0].accepted and plain[0].basis == "test split" and "mAP, recent rows" in plain[1]


def test_too_few_recent_rows_fall_back_to_the_whole_split():
    from mlops.training.steps import decide

    challenger = _with_recent(_document(0.60, 0.9), 0.58, "input_drift", rows=40)
    champion_doc = _with_recent(_document(0.63, 0.9), 0.52, "input_drift", rows=40)
    decision, table = decide(challenger, champion_doc, {"version": 3}, threshold=0.4, tolerance=0.01)
    assert decision.basis == "test split" and not decision.accepted
    assert "too few to compare" in table and "(on " not in decision.reasons[0]


def test_recent_window_takes_the_drift_point_of_the_streak_that_fired():
    from mlops.training.steps import recent_window

    extra = {
        "trigger": "input_drift",
        "window_start": "2026-06-03T00:00:00",
        "windows": [{"window_start": "2026-06-02T00:00:00"}, {"window_start": "2026-06-03T00:00:00"}],
    }
    assert recent_window(extra) == {"trigger": "input_drift", "since": "2026-06-02T00:00:00"}
    assert recent_window({"trigger": "model_quality_degraded"}) == {"trigger": "model_quality_degraded"}
    assert recent_window({"curated_uri": "s3://x"}) is None  # new features: no trigger, nothing recent
