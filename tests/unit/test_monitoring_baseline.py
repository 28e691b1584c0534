"""Baseline files follow Model Monitor's statistics.json / constraints.json schema."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.monitoring.baseline import Thresholds, compute_baseline
from mlops.monitoring.statistics import kll_sketch, sketch_values, typed_column


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    n = 5000
    return pd.DataFrame(
        {
            "amount": np.round(rng.lognormal(3, 1, n), 2),
            "units": rng.integers(1, 9, n).astype("int32"),
            "flag": rng.random(n) < 0.3,
            "age": np.where(rng.random(n) < 0.1, np.nan, rng.integers(18, 80, n)),
            "channel": rng.choice(["web", "app", "phone"], n, p=[0.6, 0.3, 0.1]),
            "country": np.where(rng.random(n) < 0.05, None, rng.choice(["DE", "FR"], n)),
        }
    )


def test_statistics_schema(frame):
    stats, _ = compute_baseline(frame, ["amount", "units", "flag", "age"], ["channel", "country"])
    assert stats["version"] == 0.0 and stats["dataset"] == {"item_count": 5000.0}
    by_name = {f["name"]: f for f in stats["features"]}
    assert [f["name"] for f in stats["features"]] == ["amount", "units", "flag", "age", "channel", "country"]
    assert {n: f["inferred_type"] for n, f in by_name.items()} == {
        "amount": "Fractional",
        "units": "Integral",
        "flag": "Integral",
        "age": "Integral",
        "channel": "String",
        "country": "String",
    }
    num = by_name["age"]["numerical_statistics"]
    assert set(num) == {"common", "mean", "sum", "std_dev", "min", "max", "distribution"}
    assert num["common"]["num_missing"] + num["common"]["num_present"] == 5000 and num["common"]["num_missing"] > 300
    kll = num["distribution"]["kll"]
    assert len(kll["buckets"]) == 10 and set(kll["buckets"][0]) == {"lower_bound", "upper_bound", "count"}
    assert sum(b["count"] for b in kll["buckets"]) == num["common"]["num_present"]
    assert kll["buckets"][0]["lower_bound"] == num["min"] and kll["buckets"][-1]["upper_bound"] == num["max"]
    assert kll["sketch"]["parameters"] == {"c": 0.64, "k": 2048.0} and isinstance(kll["sketch"]["data"], list)
    strings = by_name["channel"]["string_statistics"]
    assert set(strings) == {"common", "distinct_count", "distribution"} and strings["distinct_count"] == 3.0
    buckets = strings["distribution"]["categorical"]["buckets"]
    assert buckets[0]["value"] == "web" and set(buckets[0]) == {"value", "count"}


def test_constraints_schema(frame):
    thresholds = Thresholds(comparison_threshold=0.2, comparison_method="Simple")
    _, constraints = compute_baseline(frame, ["amount", "units", "flag", "age"], ["channel", "country"], thresholds)
    assert constraints["version"] == 0.0
    by_name = {f["name"]: f for f in constraints["features"]}
    assert by_name["amount"] == {
        "name": "amount",
        "inferred_type": "Fractional",
        "completeness": 1.0,
        "num_constraints": {"is_non_negative": True},
    }
    assert 0.85 < by_name["age"]["completeness"] < 0.95
    assert by_name["country"]["string_constraints"] == {"domains": ["DE", "FR"]}
    config = constraints["monitoring_config"]
    assert config["evaluate_constraints"] == "Enabled" and config["emit_metrics"] == "Enabled"
    assert config["distribution_constraints"] == {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.2,
        "comparison_method": "Simple",
        "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity",
    }


def test_baseline_errors_name_the_problem(frame):
    with pytest.raises(ValueError, match=r"lacks feature column\(s\) \['missing'\]"):
        compute_baseline(frame, ["missing"], [])
    with pytest.raises(ValueError, match="no rows"):
        compute_baseline(frame.iloc[:0], ["amount"], [])


def test_kll_sketch_keeps_quantiles_and_weights():
    values = np.random.default_rng(1).normal(size=100_000)
    sketch = kll_sketch(values)
    items, weights = sketch_values(sketch)
    assert len(items) <= 2048 and abs(weights.sum() - 100_000) < 2048 * 64
    assert len(sketch["data"]) == 7 and sketch["data"][:6] == [[]] * 6  # level 6: each item stands for 64 values
    assert abs(np.quantile(items, 0.9) - np.quantile(values, 0.9)) < 0.01
    small = kll_sketch(np.array([3.0, 1.0, 2.0]))
    assert small["data"] == [[1.0, 2.0, 3.0]]


def test_values_are_typed_one_by_one():
    column = typed_column(pd.Series(["3", "3.5", 4, 4.0, "abc", None, "", float("nan")], dtype=object))
    assert (column.num_integral, column.num_fractional, column.num_string, column.num_missing) == (3, 1, 1, 3)
