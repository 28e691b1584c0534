"""mlops_ingest end to end on the local target, through dag.test().

Fresh data: the full load then a CDC batch pass every check and emit the raw-data Asset with
counts that match the source and every table validated. An idle source passes run after run.
Broken replication (a table missing from the lake, a value changed behind DMS's back, changes
stuck in the source beyond the lag budget) fails the run with a message naming the table and the
metric. The check itself never opens the source DB: the DMS stand-in's
validation in ``dms_sync`` compared lake and source, and the check reads its verdict.

Issue 13 and 15 at DAG level: a poison row is quarantined and named while dms_sync goes on; a
schema change stops dms_sync naming the ``reload_tables`` Param, which fixes it; dms_sync catches
up in bounded batches before the check; 60 % NULLs fail the lake content check.
"""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import text

from mlops.config import load_config
from mlops.lake import Lake, local_path
from mlops.source.activity import simulate_activity
from mlops.source.db import make_engine, reset_schema, table_counts
from mlops.source.generator import generate
from mlops_airflow import targets
from mlops_tools.dag_runner import run_dag
from tests.asset_queue import clear_queue, queued_dag_ids, set_paused

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


def test_an_idle_source_stays_green_hour_after_hour(local_pipeline, tmp_path):
    """Issue 12.2: two hourly runs in a row with no source change both pass; nothing new is not a failure."""
    log = tmp_path / "ingest.log"
    assert run_dag("mlops_ingest", log_path=log).succeeded
    for _ in range(2):
        idle = run_dag("mlops_ingest", log_path=log)
        assert idle.succeeded, idle.error
        extra = idle.asset_extras["mlops_raw_data"]
        assert extra["fresh_objects"] == 0 and extra["rows"] == table_counts(local_pipeline)
    assert "the source was idle since the last check" in log.read_text()


def test_a_demo_run_leaves_no_asset_triggered_run_queued_for_the_scheduler(local_pipeline, tmp_path):
    """The raw-data event of a dag.test() run queues mlops_features when it is unpaused (as `make airflow`
    leaves it); run_dag takes that off the queue, so the next scheduler does not replay the demo's runs."""
    log = tmp_path / "ingest.log"
    assert run_dag("mlops_ingest", log_path=log).succeeded  # the bundle synced: mlops_features is known
    set_paused("mlops_features", False)
    try:
        kept = run_dag("mlops_ingest", log_path=log, keep_queued=True)
        assert kept.succeeded, kept.error
        assert "mlops_features" in queued_dag_ids(), "an unpaused consumer of the raw-data Asset is queued"
        clear_queue()
        dequeued = run_dag("mlops_ingest", log_path=log)
        assert dequeued.succeeded, dequeued.error
        assert "mlops_raw_data" in dequeued.asset_extras, "the event itself stays"
        assert queued_dag_ids() == set()
    finally:
        set_paused("mlops_features", True)


def test_changes_stuck_in_the_source_fail_naming_the_table(local_pipeline, tmp_path, monkeypatch):
    """Issue 12.2: a real lag (changes made an hour ago that the task never applied) still fails, naming the table."""
    from mlops.replication.replicator import LocalReplicator

    log = tmp_path / "ingest.log"
    assert run_dag("mlops_ingest", log_path=log).succeeded
    with local_pipeline.begin() as conn:
        before = conn.execute(text("SELECT coalesce(max(capture_id), 0) FROM dms_change_log")).scalar_one()
        conn.execute(text("UPDATE orders SET status = 'cancelled' WHERE order_id IN (3, 4, 5)"))
        conn.execute(  # committed an hour ago
            text("UPDATE dms_change_log SET commit_ts = datetime(commit_ts, '-1 hour') WHERE capture_id > :b"),
            {"b": before},
        )
    # The DMS task runs but reads nothing from the source's log (stalled capture).
    monkeypatch.setattr(LocalReplicator, "_plan_batch", lambda self, state, limit: (None, None, False))
    stalled = run_dag("mlops_ingest", log_path=log)
    assert stalled.task_states == {"dms_sync": "success", "check_replication": "failed"}
    error = stalled.error or ""
    assert "source_changes_waiting [table orders]: ChangesWaiting=3" in error, error
    assert "3 change(s) made in the source have not reached the lake (CDC lag 36" in error
    assert "[table customers]: ChangesWaiting" not in error
    assert stalled.asset_extras == {}


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


def test_a_poison_row_is_quarantined_the_check_names_it_and_fixing_the_row_heals(local_pipeline, tmp_path):
    """Issue 13.4: dms_sync goes on; the check fails naming table, key and column; the fixed row passes."""
    log = tmp_path / "ingest.log"
    assert run_dag("mlops_ingest", log_path=log).succeeded
    with local_pipeline.begin() as conn:
        conn.execute(text("UPDATE orders SET shipping_fee = 'abc' WHERE order_id = 7"))
        conn.execute(text("UPDATE orders SET status = 'cancelled' WHERE order_id = 8"))
    poisoned = run_dag("mlops_ingest", log_path=log)
    assert poisoned.task_states == {"dms_sync": "success", "check_replication": "failed"}
    assert poisoned.xcoms["dms_sync"]["quarantined"] == 1 and poisoned.xcoms["dms_sync"]["rows"] == 1
    error = poisoned.error or ""
    assert "quarantine [table orders]: QuarantinedOpen=1" in error, error
    assert "order_id=7: shipping_fee holds 'abc'" in error
    with local_pipeline.begin() as conn:
        conn.execute(text("UPDATE orders SET shipping_fee = 5.5 WHERE order_id = 7"))
    healed = run_dag("mlops_ingest", log_path=log)
    assert healed.succeeded, healed.error


def test_a_renamed_column_stops_ingest_and_the_reload_param_fixes_it(local_pipeline, tmp_path):
    """Issue 13.3: the error names the change and the Param; reload_tables=['orders'] un-wedges it."""
    log = tmp_path / "ingest.log"
    assert run_dag("mlops_ingest", log_path=log).succeeded
    with local_pipeline.begin() as conn:
        conn.execute(text("ALTER TABLE orders RENAME COLUMN discount_code TO voucher"))
        conn.execute(text("UPDATE orders SET status = 'cancelled' WHERE order_id = 8"))
    stopped = run_dag("mlops_ingest", log_path=log)
    assert stopped.task_states["dms_sync"] == "failed"
    assert "orders: column discount_code was renamed to voucher" in (stopped.error or ""), stopped.error
    assert "reload_tables=['orders']" in (stopped.error or "")
    bad = run_dag("mlops_ingest", conf={"reload_tables": ["order"]}, log_path=log)
    assert bad.task_states["dms_sync"] == "failed" and "not replicated" in (bad.error or ""), bad.error
    reloaded = run_dag("mlops_ingest", conf={"reload_tables": ["orders"]}, log_path=log)
    assert reloaded.task_states == {"dms_sync": "success", "check_replication": "failed"}
    assert reloaded.xcoms["dms_sync"]["validation"]["orders"] == "Validated", "replication runs again"
    # the lake now follows the source, which no longer has the column the catalog and features declare
    assert "schema [table orders]" in (reloaded.error or "") and "columns missing: discount_code" in reloaded.error


def test_a_regenerated_source_stops_ingest_and_reload_of_every_table_fixes_it(local_pipeline, tmp_path):
    """Issue 13: `mlops generate` on an already-replicated home wedged ingest; reload_tables=['*'] fixes it."""
    log = tmp_path / "ingest.log"
    assert run_dag("mlops_ingest", log_path=log).succeeded
    reset_schema(local_pipeline)
    generate(local_pipeline, orders=1200, seed=12)
    wedged = run_dag("mlops_ingest", log_path=log)
    assert wedged.task_states["dms_sync"] == "failed"
    assert "is gone from the source DB" in (wedged.error or "") and "reload_tables=['*']" in wedged.error
    reloaded = run_dag("mlops_ingest", conf={"reload_tables": ["*"]}, log_path=log)
    assert reloaded.succeeded, reloaded.error
    assert reloaded.asset_extras["mlops_raw_data"]["rows"] == table_counts(local_pipeline)


def test_dms_sync_catches_up_in_bounded_batches_before_the_check(local_pipeline, tmp_path, monkeypatch):
    """Issue 15.1: the check runs on a caught-up task, however many batches the backlog needs."""
    monkeypatch.setenv("MLOPS__REPLICATION__CDC_BATCH_MAX_CHANGES", "25")
    targets.pipeline_config.cache_clear()
    log = tmp_path / "ingest.log"
    assert run_dag("mlops_ingest", log_path=log).succeeded
    simulate_activity(local_pipeline, seed=5, steps=2)
    caught_up = run_dag("mlops_ingest", log_path=log)
    assert caught_up.succeeded, caught_up.error
    sync = caught_up.xcoms["dms_sync"]
    assert sync["batches"] > 2 and sync["pending_changes"] == 0
    assert caught_up.asset_extras["mlops_raw_data"]["rows"] == table_counts(local_pipeline)
    assert "CDC batch 2:" in log.read_text()


def test_sixty_percent_nulls_fail_ingest_naming_table_and_column(local_pipeline, tmp_path):
    """Issue 13.5: before, ingest passed and only features noticed."""
    log = tmp_path / "ingest.log"
    assert run_dag("mlops_ingest", log_path=log).succeeded
    with local_pipeline.begin() as conn:
        total = conn.execute(text("SELECT count(*) FROM customers")).scalar_one()
        conn.execute(text(f"UPDATE customers SET birth_year = NULL WHERE customer_id <= {int(total * 0.6)}"))
    broken = run_dag("mlops_ingest", log_path=log)
    assert broken.task_states == {"dms_sync": "success", "check_replication": "failed"}
    assert "null_rate [table customers]: NullRate[birth_year]=0.6" in (broken.error or ""), broken.error
