"""mlops_ingest end to end on the local target, through dag.test().

Fresh data: the full load then a CDC batch pass every check and emit the raw-data Asset with
counts that match the source and every table validated. Broken replication (a table missing from
the lake, a value changed behind DMS's back, a run with nothing new) fails the run with a message
naming the table and the metric. The check itself never opens the source DB: the DMS stand-in's
validation in ``dms_sync`` compared lake and source, and the check reads its verdict.
"""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import text

from mlops.config import load_config
from mlops.lake import Lake, local_path
from mlops.source.activity import simulate_activity
from mlops.source.db import make_engine, table_counts
from mlops.source.generator import generate
from mlops_airflow import targets
from mlops_tools.dag_runner import run_dag

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


@pytest.fixture
def local_pipeline(tmp_path, monkeypatch):
    """A fresh MLOPS_HOME with a small generated source DB."""
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    monkeypatch.setenv("MLOPS_TARGET", "local")
    targets.pipeline_config.cache_clear()
    engine = make_engine(None)
    generate(engine, orders=1500, seed=11)
    yield engine
    targets.pipeline_config.cache_clear()


def _raw_table_dir(table: str):
    config = load_config()
    return local_path(Lake.for_target(config, "local").raw_table(config.source.schema_name, table))


def test_full_load_then_cdc_pass_and_emit_counts(local_pipeline, tmp_path):
    log = tmp_path / "ingest.log"
    first = run_dag("mlops_ingest", log_path=log)
    assert first.succeeded, first.error
    extra = first.asset_extras["mlops_raw_data"]
    assert extra["rows"] == table_counts(local_pipeline)
    assert extra["task_status"] == "stopped"  # full load done, CDC starts with the next batch
    assert extra["fresh_objects"] == 4  # one LOAD file per table
    assert {v["state"] for v in extra["validation"].values()} == {"Validated"}
    assert first.xcoms["dms_sync"]["validation"] == dict.fromkeys(extra["rows"], "Validated")

    activity = simulate_activity(local_pipeline, seed=5, steps=2)
    assert sum(activity.deletes.values()) > 0 and sum(activity.updates.values()) > 0
    second = run_dag("mlops_ingest", log_path=log)
    assert second.succeeded, second.error
    extra = second.asset_extras["mlops_raw_data"]
    assert extra["rows"] == table_counts(local_pipeline)
    assert extra["task_status"] == "running"
    assert 0 < extra["fresh_objects"] <= 4, "only the new CDC files count as fresh"
    assert {(v["state"], v["failed"], v["pending"]) for v in extra["validation"].values()} == {("Validated", 0, 0)}
    assert extra["validation_pending_since"] == {}


def test_value_changed_behind_dms_fails_naming_table_and_column(local_pipeline, tmp_path):
    log = tmp_path / "ingest.log"
    assert run_dag("mlops_ingest", log_path=log).succeeded
    simulate_activity(local_pipeline, seed=7, steps=1)  # so the run has fresh objects
    with local_pipeline.begin() as conn:  # a change DMS never sees: its change record is gone
        before = conn.execute(text("SELECT max(capture_id) FROM dms_change_log")).scalar_one()
        conn.execute(text("UPDATE customers SET country = 'XX' WHERE customer_id = 3"))
        conn.execute(text("DELETE FROM dms_change_log WHERE capture_id > :b"), {"b": before})
    broken = run_dag("mlops_ingest", log_path=log)
    assert broken.task_states == {"dms_sync": "success", "check_replication": "failed"}
    assert "validation_failed_records [table customers]: ValidationFailedRecords=1" in (broken.error or "")
    assert "customer_id=3: country differs" in (broken.error or ""), broken.error
    assert broken.asset_extras == {}


def test_nothing_new_fails_unless_freshness_is_waived(local_pipeline, tmp_path):
    log = tmp_path / "ingest.log"
    assert run_dag("mlops_ingest", log_path=log).succeeded
    stale = run_dag("mlops_ingest", log_path=log)
    assert stale.state == "failed"
    assert "fresh_objects" in (stale.error or ""), stale.error
    waived = run_dag("mlops_ingest", conf={"require_fresh_objects": False}, log_path=log)
    assert waived.succeeded, waived.error


def test_table_missing_from_lake_fails_naming_it(local_pipeline, tmp_path):
    log = tmp_path / "ingest.log"
    assert run_dag("mlops_ingest", log_path=log).succeeded
    simulate_activity(local_pipeline, seed=6, steps=1)
    shutil.rmtree(_raw_table_dir("products"))
    broken = run_dag("mlops_ingest", log_path=log)
    assert broken.state == "failed"
    assert broken.task_states["check_replication"] == "failed"
    assert "products" in (broken.error or ""), broken.error
    assert "[table products]: Validation" in (broken.error or ""), "DMS validation names the table"
    assert broken.asset_extras == {}, "a failed check emits no raw-data event"
