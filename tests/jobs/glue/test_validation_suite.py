"""The curated-features GX suite in the glue runtime: passes on good data, names the problem on each kind of
bad data. That real replicated data passes is checked through the validation job, in the Airflow env
(tests/unit/test_validation_gate.py: the source DB and replicator live there)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from mlops.etl import pandas_features
from mlops.etl.synthetic_raw import write_raw
from mlops.validation.features_suite import SuiteBounds, expectation_specs
from mlops.validation.runner import ValidationFailedError, summary_lines, validate_features


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> pd.DataFrame:
    raw = tmp_path_factory.mktemp("raw")
    write_raw(raw, 800, seed=11)
    return pandas_features.run(raw)


def _snake(class_name: str) -> str:
    """GX's expectation type of an Expectation class name (ExpectColumnValuesToBeUnique -> expect_column_...)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()


def _failure(frame: pd.DataFrame, **kwargs) -> str:
    with pytest.raises(ValidationFailedError) as caught:
        validate_features(frame, **kwargs)
    return str(caught.value)


def test_suite_is_code_covering_every_kind_of_check():
    kinds = {name for name, _ in expectation_specs()}
    assert {
        "ExpectTableColumnsToMatchOrderedList",
        "ExpectColumnValuesToBeInTypeList",
        "ExpectColumnValuesToNotBeNull",
        "ExpectColumnValuesToBeBetween",
        "ExpectColumnValuesToBeInSet",
        "ExpectColumnValuesToBeUnique",
        "ExpectTableRowCountToBeBetween",
        "ExpectColumnValuesToNotBeInSet",
    } <= kinds


def test_good_data_passes_and_writes_data_docs(good, tmp_path):
    summary = validate_features(good, docs_dir=tmp_path / "docs", run_name="scheduled__2025-01-01")
    assert summary["success"] and summary["failed"] == 0 and summary["rows"] == len(good)
    assert len(summary["expectations"]) == summary["evaluated"] and all(e["success"] for e in summary["expectations"])
    evaluated = [(e["expectation"], e["column"]) for e in summary["expectations"]]
    assert sorted(evaluated, key=str) == sorted(((_snake(n), k.get("column")) for n, k in expectation_specs()), key=str)
    assert (tmp_path / "docs" / "index.html").exists()
    assert list((tmp_path / "docs" / "validations").rglob("*.html")), "the validation result page is rendered"
    assert summary_lines(summary)[0].startswith("suite curated_features PASSED")


def test_dropped_column_is_named(good):
    message = _failure(good.drop(columns=["basket_value"]))
    assert "missing ['basket_value']" in message
    assert "column 'basket_value' is missing" in message


def test_type_change_is_named(good):
    message = _failure(good.assign(basket_units=good["basket_units"].astype(str)))
    assert "expect_column_values_to_be_in_type_list on basket_units: dtype is object" in message


def test_null_spike_is_named(good):
    spiked = good.copy()
    spiked.loc[spiked.index[: len(spiked) // 2], "customer_age"] = None
    message = _failure(spiked)
    assert "expect_column_values_to_not_be_null on customer_age:" in message and "at most 30.0% allowed" in message
    fee = good.copy()
    fee.loc[fee.index[:3], "shipping_fee"] = None
    assert "expect_column_values_to_not_be_null on shipping_fee: " in _failure(fee)


def test_duplicate_keys_are_named(good):
    message = _failure(pd.concat([good, good.head(5)], ignore_index=True))
    assert "expect_column_values_to_be_unique on order_id: 10 rows share a key" in message


def test_out_of_range_value_is_named(good):
    broken = good.copy()
    broken.loc[broken.index[0], "order_hour"] = 27
    message = _failure(broken)
    assert "expect_column_values_to_be_between on order_hour: 1 values outside [0, 23], e.g. [27]" in message


def test_unseen_categories_beyond_tolerance_are_named(good):
    n_within = max(1, int(len(good) * 0.005))
    within = good.copy()
    within.loc[within.index[:n_within], "channel"] = "telepathy"
    assert validate_features(within)["success"], "a few unseen values are within the 1% tolerance"
    beyond = good.copy()
    beyond.loc[beyond.index[: len(good) // 20], "channel"] = "telepathy"
    message = _failure(beyond)
    assert "expect_column_values_to_be_in_set on channel:" in message and "'telepathy'" in message
    assert "tolerance 1.00%" in message


def test_row_count_and_label_distribution_bounds(good):
    message = _failure(good, bounds=SuiteBounds(min_rows=len(good) + 1))
    assert f"{len(good)} rows, expected {len(good) + 1}..10000000" in message
    skewed = good.assign(label="delivered")
    message = _failure(skewed)
    assert "share of label 'delivered' is 100.0%, expected at most 98.0%" in message
    assert "share of label 'returned' is 0.0%, expected at least 0.5%" in message


def test_failure_exception_lists_each_problem(good, tmp_path):
    broken = good.drop(columns=["channel"]).assign(order_dow=9)
    with pytest.raises(ValidationFailedError) as caught:
        validate_features(broken, docs_dir=tmp_path / "docs")
    assert caught.value.summary["failed"] == len(caught.value.failures) >= 3
    assert any("order_dow" in line for line in caught.value.failures)
    assert Path(caught.value.summary["data_docs"]).exists(), "Data Docs are written for a failed run too"


def test_columns_validated_in_worker_processes_give_the_same_results_in_suite_order(good):
    bad = good.copy()
    bad.loc[bad.index[:3], "basket_value"] = -1.0  # one failing column, so a failure must travel back too
    bad.loc[bad.index[:2], "label"] = "lost"
    one, two = (validate_features(bad, raise_on_failure=False, workers=n) for n in (1, 2))
    assert not one["success"] and len(one["failures"]) == 2
    assert two == one, "forked workers return every result, and the summary keeps the suite's order"
