"""Baseline files follow Model Monitor's statistics.json / constraints.json schema, and the baseline
job (``baseline_job.py``) writes them from a model archive and its training data.

Job code, in-process: runs in the SageMaker runtime (``tests/jobs/sagemaker``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlops.monitoring import baseline_job
from mlops.monitoring.baseline import Thresholds, compute_baseline
from mlops.monitoring.feature_spec import FeatureSpecError, normalise_spec, read_feature_spec
from mlops.monitoring.statistics import kll_sketch, sketch_values, typed_column
from tests.jobs.sagemaker.monitoring_fixtures import (
    CATEGORICAL,
    NUMERIC,
    curated_features,
    feature_spec,
    model_archive,
    write_dataset,
)


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


# ---- the baseline job (the processing job's entry point, run in-process) --------------------------------


@pytest.fixture
def job_inputs(tmp_path):
    """A job's input folders as the processing runner stages them: model/model.tar.gz and train/ (split partitions)."""
    frame = curated_features(3000, seed=5)
    model_archive(tmp_path / "model" / "model.tar.gz", feature_spec())
    write_dataset(frame, tmp_path / "train")
    return tmp_path, frame


def _run(folder, *extra):
    args = ["--model", str(folder / "model"), "--train", str(folder / "train"), "--output", str(folder / "out")]
    return baseline_job.main([*args, "--failure-file", str(folder / "failure"), *extra])


def test_baseline_job_writes_the_model_monitor_files(job_inputs):
    folder, frame = job_inputs
    assert _run(folder, "--comparison-method", "Simple", "--comparison-threshold", "0.2") == 0
    out = folder / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(baseline_job.OUTPUT_FILES)
    train = frame[frame.split == "train"]
    statistics = json.loads((out / "statistics.json").read_text())
    assert statistics["dataset"]["item_count"] == float(len(train))
    assert [f["name"] for f in statistics["features"]] == NUMERIC + CATEGORICAL  # model order
    expected, constraints = compute_baseline(train, NUMERIC, CATEGORICAL, Thresholds(0.2, comparison_method="Simple"))
    assert statistics == json.loads(json.dumps(expected))  # the same as computing it in-process
    assert json.loads((out / "constraints.json").read_text()) == json.loads(json.dumps(constraints))
    distribution = constraints["monitoring_config"]["distribution_constraints"]
    assert distribution["comparison_method"] == "Simple" and distribution["comparison_threshold"] == 0.2
    assert json.loads((out / "feature_spec.json").read_text()) == feature_spec()
    summary = json.loads((out / "baseline_summary.json").read_text())
    assert summary["item_count"] == len(train) and summary["features"] == 11 and summary["split"] == "train"


def test_baseline_job_takes_a_split_folder_whole(job_inputs):
    """The training job's ``train`` channel is the ``split=train`` folder: no split column, all rows are training."""
    folder, frame = job_inputs
    (folder / "train" / "split=train").rename(folder / "only-train")
    args = ["--model", str(folder / "model"), "--train", str(folder / "only-train"), "--output", str(folder / "out")]
    baseline_job.main([*args, "--failure-file", str(folder / "failure")])
    summary = json.loads((folder / "out" / "baseline_summary.json").read_text())
    assert summary["item_count"] == int((frame.split == "train").sum())


def test_baseline_job_failures_name_the_problem(job_inputs):
    folder, _ = job_inputs
    model_archive(folder / "model" / "model.tar.gz", None)  # a package without feature_spec.json
    with pytest.raises(FeatureSpecError, match=r"no feature_spec\.json"):
        _run(folder)
    assert "no feature_spec.json" in (folder / "failure").read_text()  # SageMaker's FailureReason
    model_archive(folder / "model" / "model.tar.gz", {"numeric": ["basket_value", "coupon"], "categorical": []})
    with pytest.raises(ValueError, match=r"lacks feature column\(s\) \['coupon'\]"):
        _run(folder)
    with pytest.raises(ValueError, match="no 'holdout' rows"):
        _run(folder, "--split", "holdout")
    (folder / "model" / "model.tar.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"expected one model\.tar\.gz"):
        _run(folder)
    assert not (folder / "out" / "statistics.json").exists()  # nothing written by a failed job


def test_feature_spec_layouts(tmp_path):
    layout = {"features": [{"name": "basket_value", "type": "numeric"}, {"name": "channel", "type": "categorical"}]}
    normalised = normalise_spec(layout)
    assert normalised["numeric"] == ["basket_value"] and normalised["categorical"] == ["channel"]
    archive = model_archive(tmp_path / "m.tar.gz", layout)
    assert read_feature_spec(archive) == read_feature_spec(archive.read_bytes()) == normalise_spec(layout)
    with pytest.raises(FeatureSpecError, match="no numeric/categorical"):
        normalise_spec({"columns": ["a"]})
