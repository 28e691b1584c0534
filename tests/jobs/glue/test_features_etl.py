"""The features Glue job on local Spark, in process (glue runtime): hand-checked output, CDC, idempotency,
failure safety, and the pandas twin's equality on the fixture and on synthetic data.

The same check on the real replicator's output, and the local Glue stand-in that runs the script
as a subprocess, are Airflow-env tests (tests/unit/test_local_glue.py): they need the source DB.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

from mlops.etl import build_features as job
from mlops.etl import pandas_features
from mlops.etl.synthetic_raw import write_raw
from mlops.schema import curated
from mlops.schema.snapshots import KEEP_SNAPSHOTS, LakeFiles, read_current, run_key_safe
from tests.unit.test_etl_fixtures import EXPECTED, write_fixture


@pytest.fixture(scope="module")
def spark():
    session = job.spark_session("mlops-etl-tests", shuffle_partitions=2)
    yield session
    logging.getLogger("py4j").setLevel(logging.WARNING)  # its exit-time INFO lines hit closed capture streams
    session.stop()


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("lake") / "raw" / "dms" / "shop")


def test_the_local_session_carries_the_local_settings(spark):
    conf = spark.sparkContext.getConf()
    for key, value in job.LOCAL_SPARK_TUNING.items():
        if key == "spark.driver.extraJavaOptions":
            assert value in conf.get(key)  # Spark adds its own module options to the same setting
        else:
            assert conf.get(key) == value
    beans = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    assert {bean.getName() for bean in beans} == {"PS Scavenge", "PS MarkSweep"}  # the JVM runs the parallel collector


def test_an_unknown_local_tuning_value_is_named_before_any_session(monkeypatch):
    monkeypatch.setenv("MLOPS_SPARK_LOCAL_TUNING", "off")
    with pytest.raises(ValueError, match=r"MLOPS_SPARK_LOCAL_TUNING must be 0 .* or 1 .*got 'off'.*unset"):
        job.spark_session("mlops-etl-tests-bad-tuning", shuffle_partitions=2)


def _args(root: Path, raw: Path, run_key: str = "manual__2025-04-01T00:00:00+00:00") -> dict[str, str]:
    return {
        "JOB_NAME": "mlops-build-features",
        "raw_uri": raw.as_uri(),
        "curated_uri": (root / "curated" / "features").as_uri(),
        "staging_uri": (root / "_staging" / "curated" / "features").as_uri(),
        "run_key": run_key,
        "offline_store_uri": (root / "curated" / "feature-store").as_uri(),
    }


def _read_current(root: Path) -> pd.DataFrame:
    pointer = read_current((root / "curated" / "features").as_uri())
    frame = pd.read_parquet(Path(pointer["uri"].removeprefix("file://")))
    frame["split"] = frame["split"].astype(str)
    return frame.sort_values("order_id").reset_index(drop=True)


def _split_of(order_id: int) -> str:
    import hashlib

    bucket = int(hashlib.sha256(str(order_id).encode()).hexdigest()[:8], 16) % 100
    return "train" if bucket < 80 else "validation" if bucket < 90 else "test"


def test_latest_state_applies_cdc_in_change_order(spark, raw):
    orders = job.latest_state(job.read_raw_table(spark, raw.as_uri(), "orders"), "order_id").toPandas()
    status = dict(zip(orders["order_id"], orders["status"], strict=True))
    assert 7 not in status, "a key whose last change is a delete must disappear"
    assert status[2] == "returned" and status[6] == "delivered", "the last update wins over earlier ones"
    assert status[9] == "cancelled", "a CDC insert followed by an update keeps the update"
    assert set(orders.columns).isdisjoint(curated.DMS_COLUMNS)


def test_hand_checked_features(spark, raw, tmp_path):
    pointer = job.run_job(spark, _args(tmp_path, raw))
    out = _read_current(tmp_path).set_index("order_id")
    assert sorted(out.index) == sorted(EXPECTED), (
        "terminal orders of live customers only (5 non-terminal, 7 deleted, 8 orphaned)"
    )
    for order_id, expected in EXPECTED.items():
        for column, value in expected.items():
            got = out.loc[order_id, column]
            if value is None:
                assert pd.isna(got), (order_id, column, got)
            elif isinstance(value, float):
                assert math.isclose(got, value, abs_tol=1e-9), (order_id, column, got, value)
            else:
                assert got == value, (order_id, column, got, value)
        assert out.loc[order_id, "split"] == _split_of(order_id)
    assert list(out.reset_index().columns[:-1]) == [c for c in curated.CURATED_COLUMNS if c != "split"]
    assert pointer["rows"] == 7 and sum(pointer["splits"].values()) == 7
    assert pointer["labels"] == {"delivered": 4, "returned": 1, "cancelled": 2}
    assert pointer["orders_through"] == "2025-04-01T02:00:00.000000+00:00", (
        "the cut-off is the newest orders commit read (the second CDC file's), in UTC"
    )


def test_pandas_baseline_matches_spark_on_fixture_and_synthetic(spark, raw, tmp_path):
    synthetic = tmp_path / "synthetic"
    write_raw(synthetic, 3000, seed=3)
    for raw_dir in (raw, synthetic):
        tables = job.load_latest_tables(spark, raw_dir.as_uri())
        spark_out = job.build_features(tables).toPandas().sort_values("order_id").reset_index(drop=True)
        pandas_out = pandas_features.run(raw_dir)
        assert len(spark_out) == len(pandas_out) > 0
        for column in curated.CURATED_COLUMNS:
            left, right = spark_out[column], pandas_out[column]
            if column == "order_ts":
                assert (left.astype("datetime64[us]") == right.astype("datetime64[us]")).all()
            elif left.dtype.kind in "fi":
                pd.testing.assert_series_equal(left.astype(float), right.astype(float), check_names=False, rtol=1e-9)
            else:
                assert (left.astype(str) == right.astype(str)).all(), column


def test_basket_categories_agree_with_the_sort_based_aggregate_for_many_categories(spark, tmp_path):
    """The per-category hash aggregate and the fallback for catalogues with more categories than columns
    (collect_set, a maximum over a struct) give the same baskets: ties on a line's value go to the greater
    category name, a line without a product counts as ``unknown``, a line without a price ranks lowest."""
    synthetic = tmp_path / "synthetic"
    write_raw(synthetic, 2000, seed=5)
    tables = job.load_latest_tables(spark, synthetic.as_uri())
    assert len(job.line_categories(tables["products"])) > 2
    lines = spark.createDataFrame(
        [(1, 10, 2, 5.0, None), (1, 11, 1, 10.0, None), (2, 99, 1, 3.0, None), (2, 10, 1, 1.0, None),
         (3, 10, 1, None, None), (3, 11, 1, None, None), (4, 12, 1, None, None), (4, 10, 1, 0.5, None)],
        "order_id long, product_id long, quantity int, unit_price double, discount_pct double",
    )  # fmt: skip
    products = spark.createDataFrame(
        [(10, "toys", 1.0, False), (11, "books", 1.0, True), (12, "apparel", 1.0, False)],
        "product_id long, category string, weight_kg double, is_fragile boolean",
    )
    cases = [(tables["order_items"], tables["products"]), (lines, products)]
    for items, catalogue in cases:
        hashed = job.basket_features(items, catalogue).toPandas()
        sorted_based = job.basket_features(items, catalogue, max_category_columns=1).toPandas()
        columns = sorted(hashed.columns)
        assert columns == sorted(sorted_based.columns)
        left = hashed[columns].sort_values("order_id").reset_index(drop=True)
        right = sorted_based[columns].sort_values("order_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(left, right, check_exact=False, rtol=1e-12)
    hand = hashed.set_index("order_id")
    assert hand.loc[1, "top_category"] == "toys", "a tie on value (10.0): the greater category name"
    assert hand.loc[2, "top_category"] == "unknown" and hand.loc[2, "distinct_categories"] == 2
    assert hand.loc[3, "top_category"] == "toys", "no line has a value: the greatest category"
    assert hand.loc[4, "top_category"] == "toys", "a line with a value beats one without"


def test_two_runs_give_identical_output_without_duplicates(spark, raw, tmp_path):
    first = job.run_job(spark, _args(tmp_path, raw))
    first_rows = _read_current(tmp_path)
    second = job.run_job(spark, _args(tmp_path, raw))
    second_rows = _read_current(tmp_path)
    pd.testing.assert_frame_equal(first_rows, second_rows)
    assert second_rows["order_id"].is_unique
    assert second["snapshot_id"] != first["snapshot_id"], "a visible snapshot is never overwritten"
    assert second["previous"]["snapshot_id"] == first["snapshot_id"]
    snapshots = sorted(p.name for p in (tmp_path / "curated" / "features" / "snapshots").iterdir())
    assert snapshots == sorted([first["snapshot_id"], second["snapshot_id"]])
    assert not (tmp_path / "_staging" / "curated" / "features" / first["run_key"]).exists()
    job.run_job(spark, _args(tmp_path, raw))  # a third run garbage-collects the oldest snapshot
    assert len(list((tmp_path / "curated" / "features" / "snapshots").iterdir())) == KEEP_SNAPSHOTS


def test_failure_midway_leaves_previous_curated_data_intact(spark, raw, tmp_path, monkeypatch):
    good = job.run_job(spark, _args(tmp_path, raw, run_key="scheduled__1"))
    before = _read_current(tmp_path)

    def crash(*_args, **_kwargs):
        raise OSError("disk full while moving the snapshot")

    monkeypatch.setattr(LakeFiles, "move_tree", crash)
    with pytest.raises(OSError, match="disk full"):
        job.run_job(spark, _args(tmp_path, raw, run_key="scheduled__2"))
    monkeypatch.undo()
    broken_raw = tmp_path / "broken_raw"
    write_fixture(broken_raw)
    for parquet in (broken_raw / "orders").iterdir():
        parquet.unlink()
    with pytest.raises(Exception, match=r"(?i)path does not exist|unable to infer"):
        job.run_job(spark, _args(tmp_path, broken_raw, run_key="scheduled__3"))
    assert read_current((tmp_path / "curated" / "features").as_uri())["snapshot_id"] == good["snapshot_id"]
    pd.testing.assert_frame_equal(before, _read_current(tmp_path))
    retried = job.run_job(spark, _args(tmp_path, raw, run_key="scheduled__2"))  # leftover staging is replaced
    assert retried["rows"] == good["rows"]


def test_sample_fraction_is_deterministic(spark, raw, tmp_path):
    synthetic = tmp_path / "synthetic"
    write_raw(synthetic, 2000, seed=5)
    tables = job.load_latest_tables(spark, synthetic.as_uri())
    full = job.build_features(tables).count()
    half_a = sorted(r.order_id for r in job.build_features(tables, 0.5).select("order_id").collect())
    half_b = sorted(pandas_features.run(synthetic, 0.5)["order_id"])
    assert half_a == half_b and 0.4 * full < len(half_a) < 0.6 * full


def test_job_args_are_parsed_glue_style():
    args = job.parse_args(
        [
            "x.py",
            "--JOB_NAME",
            "j",
            "--raw_uri",
            "r",
            "--curated_uri",
            "c",
            "--staging_uri",
            "s",
            "--run_key",
            "k",
            "--airflow_task_uuid",
            "d:t:r:-1",
        ]
    )
    assert args["sample_fraction"] == "1.0" and args["airflow_task_uuid"] == "d:t:r:-1"
    with pytest.raises(SystemExit, match="--run_key"):
        job.parse_args(["x.py", "--JOB_NAME", "j", "--raw_uri", "r", "--curated_uri", "c", "--staging_uri", "s"])
    assert run_key_safe("scheduled__2025-01-01T00:00:00+00:00") == "scheduled__2025-01-01T00-00-00-00-00"


def test_spark_reads_the_golden_dms_files(spark):
    """The Glue job's reader and latest-state step on DMS-format files written from the documentation
    (``tests/fixtures/dms``): the STRING commit timestamp is cast, updates win, deletes drop out."""
    fixtures = Path(__file__).parents[2] / "fixtures" / "dms"
    latest = job.latest_state(job.read_raw_table(spark, fixtures.as_uri() + "/shop", "products"), "product_id")
    rows = {r["product_id"]: r["unit_price"] for r in latest.collect()}
    assert {k: str(v) for k, v in rows.items()} == {1: "11.00", 2: "4.50", 4: "7.25"}
    assert "dms_commit_ts" not in latest.columns
    raw = job.read_raw_table(spark, fixtures.as_uri() + "/shop", "products")
    assert raw.filter(raw["dms_commit_ts"].cast("timestamp").isNull()).count() == 0  # DMS's text format casts
