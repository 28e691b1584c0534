"""Drift detection quality: detected on drifted windows, not on held-out windows of the same
distribution. The false-alarm rate is measured over 200 windows and must stay under documented bounds.

Job code, in-process: runs in the SageMaker runtime (``tests/jobs/sagemaker``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.monitoring.baseline import compute_baseline
from mlops.monitoring.drift import DriftSettings, compare, drift_share, ks_critical, psi, threshold_for
from mlops.monitoring.traffic import drift_rows
from tests.jobs.sagemaker.monitoring_fixtures import CATEGORICAL, NUMERIC, curated_features

WINDOWS, WINDOW_ROWS = 200, 500
SHARE = 0.25  # monitoring.drift_share_threshold
# Bounds: with the Robust method (alpha = 0.001 per feature) a clean window's features exceed their
# threshold with probability well under 0.1 % each, so a window reaching a 25 % drift share by
# chance (3 of 12 features at once) is practically impossible. We assert generous bounds.
MAX_WINDOW_FALSE_ALARM_RATE = 0.01
MAX_FEATURE_FALSE_ALARM_RATE = 0.01
MIN_DETECTION_RATE = 0.99


@pytest.fixture(scope="module")
def baseline():
    frame = curated_features(40_000, seed=1)
    train = frame[frame.split == "train"]
    numeric, categorical = list(NUMERIC), list(CATEGORICAL)
    stats, constraints = compute_baseline(train, numeric, categorical)
    return stats, constraints, numeric, categorical


@pytest.fixture(scope="module")
def held_out(baseline):
    _, _, numeric, categorical = baseline
    return curated_features(WINDOWS * WINDOW_ROWS, seed=2)[numeric + categorical]


def _windows(frame: pd.DataFrame, count: int):
    for i in range(count):
        yield frame.iloc[i * WINDOW_ROWS : (i + 1) * WINDOW_ROWS].reset_index(drop=True)


def test_false_alarm_rate_on_held_out_windows(baseline, held_out, record_property):
    stats, constraints, _, _ = baseline
    features = len(stats["features"])
    window_alarms = feature_alarms = any_violation = 0
    for window in _windows(held_out, WINDOWS):
        results, violations = compare(window, stats, constraints, DriftSettings())
        window_alarms += drift_share(results, features) >= SHARE
        feature_alarms += sum(r.drifted for r in results)
        any_violation += bool(violations)
    window_rate = window_alarms / WINDOWS
    feature_rate = feature_alarms / (WINDOWS * features)
    record_property("window_false_alarm_rate", window_rate)
    record_property("feature_false_alarm_rate", feature_rate)
    print(
        f"\nfalse alarms over {WINDOWS} held-out windows of {WINDOW_ROWS} rows: windows {window_rate:.4f}, "
        f"feature checks {feature_rate:.5f}, windows with any violation {any_violation / WINDOWS:.3f}"
    )
    assert window_rate <= MAX_WINDOW_FALSE_ALARM_RATE
    assert feature_rate <= MAX_FEATURE_FALSE_ALARM_RATE


def test_simple_method_alarms_more_on_small_windows(baseline, held_out):
    """Why Robust is the default: with 60-row windows a fixed 0.1 L-inf threshold is inside sampling noise."""
    stats, constraints, _, _ = baseline
    simple = robust = 0
    small = held_out.iloc[: 60 * 100]
    for i in range(100):
        window = small.iloc[i * 60 : (i + 1) * 60]
        simple += sum(
            r.drifted for r in compare(window, stats, constraints, DriftSettings(comparison_method="Simple"))[0]
        )
        robust += sum(r.drifted for r in compare(window, stats, constraints, DriftSettings())[0])
    assert robust < simple


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_drifted_windows_are_detected(baseline, held_out, strength):
    stats, constraints, numeric, categorical = baseline
    detected, count = 0, 50
    for i, window in enumerate(_windows(held_out, count)):
        shifted = drift_rows(window, numeric, categorical, strength=strength, seed=i)
        results, violations = compare(shifted, stats, constraints, DriftSettings())
        detected += drift_share(results, len(stats["features"])) >= SHARE
        assert any(v["constraint_check_type"] == "baseline_drift_check" for v in violations)
    print(f"\ndetection rate at strength {strength}: {detected / count:.2f}")
    assert detected / count >= MIN_DETECTION_RATE


def test_single_feature_shift_is_named(baseline, held_out):
    stats, constraints, _, _ = baseline
    window = held_out.iloc[:2000].copy()
    window["basket_value"] = window["basket_value"] * 1.5
    results, violations = compare(window, stats, constraints, DriftSettings())
    assert [r.name for r in results if r.drifted] == ["basket_value"]
    drift = next(r for r in results if r.name == "basket_value")
    assert drift.linf > drift.threshold and drift.psi > 0.2 and drift.psi_alert
    assert violations == [
        {
            "feature_name": "basket_value",
            "constraint_check_type": "baseline_drift_check",
            "description": f"Baseline drift distance: {drift.linf:.4f} exceeds threshold: {drift.threshold:.4f}",
        }
    ]


def test_categorical_new_values_and_type_and_completeness_checks(baseline, held_out):
    stats, constraints, _, _ = baseline
    window = held_out.iloc[:1000].copy()
    window["channel"] = np.where(np.arange(1000) % 3 == 0, "tiktok", window["channel"])
    window["basket_units"] = window["basket_units"] + 0.5  # Integral in the baseline
    window["prior_orders"] = window["prior_orders"].astype(object).where(np.arange(1000) % 4 != 0, None)
    window["shipping_method"] = "standard"
    window = window.drop(columns=["country"]).assign(coupon="X")
    _, violations = compare(window, stats, constraints, DriftSettings())
    found = {(v["feature_name"], v["constraint_check_type"]) for v in violations}
    assert ("channel", "categorical_values_check") in found
    assert ("basket_units", "data_type_check") in found
    assert ("prior_orders", "completeness_check") in found
    assert ("shipping_method", "baseline_drift_check") in found
    assert ("country", "missing_column_check") in found
    assert ("coupon", "extra_column_check") in found


def test_distance_helpers():
    assert ks_critical(0.001, 500, 10_000) == pytest.approx(1.9495 * np.sqrt(10_500 / 5_000_000), rel=1e-3)
    settings = DriftSettings()
    assert threshold_for(0.1, settings, 50, 10_000) > 0.25
    assert threshold_for(0.1, settings, 100_000, 100_000) == 0.1
    assert threshold_for(0.1, DriftSettings(comparison_method="Simple"), 50, 10_000) == 0.1
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    assert psi(np.array([0.9, 0.1]), np.array([0.1, 0.9])) > 2
