"""Replication checks (pure, the same for aws and local evidence), fresh objects and DMS data validation.

The checks read DMS's validation verdict (DescribeTableStatistics' ``Validation*`` fields); the
local DMS stand-in produces that verdict itself by comparing the lake with the source.
"""

from __future__ import annotations

import os
import re
import shutil
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text, update

from mlops.config import PipelineConfig
from mlops.lake import Lake, local_path
from mlops.replication.checks import (
    CheckResult,
    ReplicationCheckError,
    check_replication,
    format_results,
    raise_on_failures,
    replicated_rows,
    validation_pending_since,
)
from mlops.replication.lake_io import count_fresh_objects, fresh_objects_by_table, list_fresh_objects
from mlops.replication.reconcile import latest_state
from mlops.replication.replicator import LocalReplicator
from mlops.replication.source_changes import applied_changes, check_source_changes
from mlops.source.db import create_schema, make_engine
from mlops.source.schema import customers

CONFIG = PipelineConfig()
TABLES = list(CONFIG.replication.tables)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
BUDGET = 3600.0
VALIDATED_STATS = {
    "ValidationState": "Validated",
    "ValidationPendingRecords": 0,
    "ValidationFailedRecords": 0,
    "ValidationSuspendedRecords": 0,
}


def healthy_evidence() -> dict[str, Any]:
    """Responses as boto3 returns them for a task replicating CDC with every table loaded."""
    tasks = {
        "ReplicationTasks": [
            {
                "ReplicationTaskIdentifier": "mlops-source-to-lake",
                "ReplicationTaskArn": "arn:aws:dms:eu-west-1:123456789012:task:ABC",
                "Status": "running",
                "MigrationType": "full-load-and-cdc",
                "ReplicationTaskStats": {
                    "FullLoadProgressPercent": 100,
                    "TablesLoaded": 4,
                    "TablesLoading": 0,
                    "TablesQueued": 0,
                    "TablesErrored": 0,
                },
            }
        ]
    }
    stats = {
        "TableStatistics": [
            {
                "SchemaName": "shop",
                "TableName": t,
                "TableState": "Table completed",
                "FullLoadErrorRows": 0,
                "FullLoadRows": 10,
                "Inserts": 3,
                "Deletes": 1,
                "AppliedInserts": 3,
                "AppliedDeletes": 1,
                **VALIDATED_STATS,
            }
            for t in TABLES
        ]
    }
    return {"tasks": tasks, "stats": stats}


def run_checks(
    evidence: dict[str, Any],
    lag: float | None = 5.0,
    fresh: dict[str, int] | None = None,
    pending_since: dict[str, datetime] | None = None,
    previous_applied: dict[str, int] | None = None,
) -> list[CheckResult]:
    return check_replication(
        tasks_response=evidence["tasks"],
        table_stats_response=evidence["stats"],
        expected_tables=TABLES,
        max_cdc_lag_seconds=900,
        cdc_lag_seconds=lag,
        fresh_objects=dict.fromkeys(TABLES, 1) if fresh is None else fresh,
        require_fresh_objects=True,
        max_validation_pending_seconds=BUDGET,
        pending_since=pending_since or {},
        now=NOW,
        previous_applied=previous_applied,
        since=NOW - timedelta(hours=1),
    )


def validation_of(evidence: dict[str, Any], table: str) -> dict[str, Any]:
    (row,) = [r for r in evidence["stats"]["TableStatistics"] if r["TableName"] == table]
    return row


def failure_message(results: list[CheckResult]) -> str:
    with pytest.raises(ReplicationCheckError) as error:
        raise_on_failures(results)
    return str(error.value)


def test_healthy_replication_passes_every_check() -> None:
    results = run_checks(healthy_evidence())
    assert all(r.passed for r in results), format_results(results)
    assert {r.name for r in results} == {
        "task_status",
        "full_load_progress",
        "tables_errored",
        "table_state",
        "full_load_error_rows",
        "validation_state",
        "validation_failed_records",
        "validation_suspended_records",
        "cdc_lag",
        "source_changes_waiting",
        "changes_arrived",
        "quarantine",
    }
    raise_on_failures(results)
    assert replicated_rows(healthy_evidence()["stats"]["TableStatistics"], TABLES) == dict.fromkeys(TABLES, 12)


def test_stopped_after_full_load_passes_without_lag() -> None:
    evidence = healthy_evidence()
    task = evidence["tasks"]["ReplicationTasks"][0]
    task.update(Status="stopped", StopReason="Stop Reason FULL_LOAD_ONLY_FINISHED")
    assert all(r.passed for r in run_checks(evidence, lag=None))


def test_missing_table_is_named_with_metric() -> None:
    evidence = healthy_evidence()
    evidence["stats"]["TableStatistics"] = [
        t for t in evidence["stats"]["TableStatistics"] if t["TableName"] != "orders"
    ]
    message = failure_message(run_checks(evidence))
    assert "table_state [table orders]: TableState=None" in message
    assert "missing from DescribeTableStatistics" in message and "reload" in message


def test_errored_table_is_named_with_metric() -> None:
    evidence = healthy_evidence()
    row = evidence["stats"]["TableStatistics"][1]
    row.update(TableState="Table error", FullLoadErrorRows=7)
    evidence["tasks"]["ReplicationTasks"][0]["ReplicationTaskStats"].update(TablesErrored=1, FullLoadProgressPercent=75)
    results = run_checks(evidence)
    message = failure_message(results)
    assert "table_state [table products]: TableState='Table error'" in message
    assert "full_load_error_rows [table products]: FullLoadErrorRows=7" in message
    assert "tables_errored: TablesErrored=1" in message
    assert "full_load_progress: FullLoadProgressPercent=75" in message
    assert sorted(r.table for r in results if not r.passed and r.table) == ["products", "products"]


def test_lag_over_bound_fails_with_the_fix() -> None:
    message = failure_message(run_checks(healthy_evidence(), lag=1200.5))
    assert "cdc_lag: CDCLatencySource=1200.5 (expected 900)" in message
    assert "exceeds 900s" in message and "max_cdc_lag_seconds" in message


def test_unmeasured_lag_fails_while_running() -> None:
    message = failure_message(run_checks(healthy_evidence(), lag=None))
    assert "cdc_lag: CDCLatencySource=None" in message


def test_applied_changes_without_new_lake_objects_fail_only_when_required() -> None:
    message = failure_message(run_checks(healthy_evidence(), fresh={}))
    assert "changes_arrived [table orders]: FreshObjects=0" in message and "require_fresh_objects=false" in message
    assert "DMS applied 4 change(s) since the last check but no new lake object" in message
    relaxed = check_replication(
        healthy_evidence()["tasks"], healthy_evidence()["stats"], TABLES, 900, 1.0, {}, require_fresh_objects=False,
        max_validation_pending_seconds=BUDGET, pending_since={}, now=NOW,
    )  # fmt: skip
    assert all(r.passed for r in relaxed)


def test_an_idle_source_passes_twice_in_a_row() -> None:
    """Issue 12.2: nothing changed in the source since the last check, no new lake object: healthy."""
    evidence = healthy_evidence()
    applied = applied_changes(evidence["stats"]["TableStatistics"], TABLES)
    assert applied == dict.fromkeys(TABLES, 4)
    for _ in range(2):
        results = run_checks(evidence, lag=0.0, fresh={}, previous_applied=applied)
        assert all(r.passed for r in results), format_results(results)
    idle = [r.message for r in results if r.name == "changes_arrived"]
    assert idle and all("the source was idle since the last check" in m for m in idle)


def test_changes_waiting_beyond_the_lag_budget_fail_naming_the_table() -> None:
    evidence = healthy_evidence()
    validation_of(evidence, "orders").update(Inserts=8, Updates=2)  # 5 + 2 captured, not applied
    applied = applied_changes(evidence["stats"]["TableStatistics"], TABLES)
    within = run_checks(evidence, lag=30.0, fresh={}, previous_applied=applied)
    assert all(r.passed for r in within), "changes on their way within the budget are fine"
    message = failure_message(run_checks(evidence, lag=1200.0, fresh={}, previous_applied=applied))
    assert "source_changes_waiting [table orders]: ChangesWaiting=7" in message
    assert "7 change(s) made in the source have not reached the lake (CDC lag 1200s, budget 900s)" in message
    assert "[table customers]: ChangesWaiting" not in message, "only tables with waiting changes are named"


def test_without_a_latency_datapoint_a_table_not_updated_within_the_budget_is_late() -> None:
    row = {"TableName": "orders", "Inserts": 5, "AppliedInserts": 2, "LastUpdateTime": NOW - timedelta(hours=2)}
    kwargs = dict(previous_applied={"orders": 2}, fresh_objects={}, cdc_lag_seconds=None, max_cdc_lag_seconds=900,
                  require_fresh_objects=True, since=NOW - timedelta(hours=1), now=NOW)  # fmt: skip
    (waiting, arrived) = check_source_changes([row], ["orders"], **kwargs)
    assert not waiting.passed and "no statistics update for 7200s" in waiting.message
    assert arrived.passed, "nothing was applied since the last check"
    fresh = check_source_changes([{**row, "LastUpdateTime": NOW - timedelta(seconds=60)}], ["orders"], **kwargs)
    assert all(r.passed for r in fresh)


def test_a_reload_since_the_last_check_needs_new_objects_even_with_reset_counters() -> None:
    row = {"TableName": "orders", "Inserts": 0, "AppliedInserts": 0, "FullLoadEndTime": NOW - timedelta(minutes=5)}
    kwargs = dict(previous_applied={"orders": 40}, cdc_lag_seconds=0.0, max_cdc_lag_seconds=900,
                  require_fresh_objects=True, since=NOW - timedelta(hours=1), now=NOW)  # fmt: skip
    (_, arrived) = check_source_changes([row], ["orders"], fresh_objects={}, **kwargs)
    assert not arrived.passed and arrived.value == 0
    (_, arrived) = check_source_changes([row], ["orders"], fresh_objects={"orders": 1}, **kwargs)
    assert arrived.passed


def test_failed_task_reports_reason_and_failure_message() -> None:
    evidence = healthy_evidence()
    evidence["tasks"]["ReplicationTasks"][0].update(
        Status="failed", StopReason="Stop Reason FATAL_ERROR", LastFailureMessage="Last Error ORA-01555"
    )
    message = failure_message(run_checks(evidence))
    assert "task_status: Status='failed'" in message
    assert "FATAL_ERROR" in message and "ORA-01555" in message and "resume-processing" in message


def test_stopped_for_other_reasons_fails() -> None:
    evidence = healthy_evidence()
    evidence["tasks"]["ReplicationTasks"][0].update(Status="stopped", StopReason="Stop Reason NORMAL")
    assert "task_status: Status='stopped'" in failure_message(run_checks(evidence, lag=None))


def test_no_task_in_response_fails() -> None:
    evidence = healthy_evidence()
    evidence["tasks"] = {"ReplicationTasks": []}
    assert "exactly one task" in failure_message(run_checks(evidence))


def test_schema_qualified_expected_tables() -> None:
    evidence = healthy_evidence()
    results = check_replication(
        evidence["tasks"], evidence["stats"], ["shop.orders", "other.orders"], 900, 1.0, {"orders": 1}, True,
        max_validation_pending_seconds=BUDGET, pending_since={}, now=NOW,
    )  # fmt: skip
    assert [(r.table, r.name) for r in results if r.name.startswith("validation")] == [
        ("shop.orders", "validation_state"),
        ("shop.orders", "validation_failed_records"),
        ("shop.orders", "validation_suspended_records"),
    ]
    assert [(r.table, r.passed) for r in results if r.name == "table_state"] == [
        ("shop.orders", True),
        ("other.orders", False),
    ]


def test_fresh_objects_since_a_timestamp(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    (root / "shop" / "orders").mkdir(parents=True)
    old, new = (
        root / "shop" / "orders" / "LOAD00000001.parquet",
        root / "shop" / "orders" / "20250601-120000000.parquet",
    )
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    (root / "shop" / "orders" / "_tmp").write_bytes(b"z")
    os.utime(old, (NOW.timestamp() - 3600,) * 2)
    os.utime(new, (NOW.timestamp() + 60,) * 2)
    assert list_fresh_objects(root.as_uri(), NOW) == [new.as_uri()]
    assert count_fresh_objects(root.as_uri(), NOW.replace(tzinfo=None)) == 1
    assert count_fresh_objects(root.as_uri(), None) == 2
    assert count_fresh_objects(root.as_uri(), NOW + timedelta(hours=1)) == 0
    assert count_fresh_objects((tmp_path / "missing").as_uri(), None) == 0


def seed_customers(engine: Any, ids: range, ts: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(customers),
            [
                dict(customer_id=i, email=f"{i}@x", country="SE", segment="vip", birth_year=None,
                     marketing_opt_in=False, signup_ts=ts, updated_at=ts)
                for i in ids
            ],
        )  # fmt: skip


def local_checks(
    replicator: LocalReplicator, raw: str, *, previous: dict[str, str] | None = None, now: datetime | None = None
) -> list[CheckResult]:
    """The checks over the stand-in's status, as the local check operator runs them."""
    status = replicator.status()
    now = now or datetime.now(UTC)
    since = validation_pending_since(status["table_statistics"]["TableStatistics"], TABLES, previous or {}, now)
    return check_replication(
        status["tasks"], status["table_statistics"], TABLES, 900, status["cdc_lag_seconds"],
        fresh_objects_by_table(raw, now - timedelta(minutes=5)), True,
        max_validation_pending_seconds=BUDGET, pending_since=since, now=now,
    )  # fmt: skip


def test_local_status_feeds_the_same_checks_and_reconciles(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    create_schema(engine)
    ts = datetime(2025, 1, 1, 9)
    seed_customers(engine, range(1, 4), ts)
    lake = Lake(root=(tmp_path / "lake").as_uri(), layout=CONFIG.lake)
    replicator = LocalReplicator(CONFIG, engine, lake, state_dir=tmp_path / "dms")
    replicator.sync()
    raw = lake.uri(CONFIG.lake.raw_prefix, "shop")

    assert all(r.passed for r in local_checks(replicator, raw)), format_results(local_checks(replicator, raw))
    rows = replicator.status()["table_statistics"]["TableStatistics"]
    assert {r["ValidationState"] for r in rows} == {"Validated"}
    assert replicated_rows(rows, TABLES)["customers"] == 3

    with engine.begin() as conn:
        conn.execute(update(customers).where(customers.c.customer_id == 2).values(updated_at=ts + timedelta(days=1)))
        conn.execute(
            insert(customers).values(
                customer_id=9, email="9@x", country="SE", segment="vip", birth_year=1970,
                marketing_opt_in=True, signup_ts=ts, updated_at=ts,
            )
        )  # fmt: skip
    # Not replicated yet: the two changed keys await validation, they are not mismatches.
    (customers_row,) = [r for r in _validated(replicator) if r["TableName"] == "customers"]
    assert (customers_row["ValidationState"], customers_row["ValidationPendingRecords"]) == ("Pending records", 2)
    assert customers_row["ValidationFailedRecords"] == 0
    assert all(r.passed for r in local_checks(replicator, raw)), "pending within the budget passes"
    long_ago = {"customers": (datetime.now(UTC) - timedelta(seconds=BUDGET + 60)).isoformat()}
    message = failure_message(local_checks(replicator, raw, previous=long_ago))
    assert re.search(r"validation_state \[table customers\]: ValidationState='Pending records'", message)
    assert "longer than 3600s" in message and "max_validation_pending_seconds" in message

    replicator.sync()
    assert all(r.passed for r in local_checks(replicator, raw, previous=long_ago))
    assert [
        row["birth_year"] for row in latest_state(lake.raw_table("shop", "customers"), "customer_id").to_pylist()
    ] == [
        None,
        None,
        None,
        1970,
    ]


def _validated(replicator: LocalReplicator) -> list[dict[str, Any]]:
    replicator.validate()
    return replicator.status()["table_statistics"]["TableStatistics"]


def test_reconcile_reports_a_table_missing_from_the_lake(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    create_schema(engine)
    lake = Lake(root=(tmp_path / "lake").as_uri(), layout=CONFIG.lake)
    replicator = LocalReplicator(CONFIG, engine, lake, state_dir=tmp_path / "dms")
    replicator.sync()
    shutil.rmtree(local_path(lake.raw_table("shop", "orders")))
    (orders_row,) = [r for r in _validated(replicator) if r["TableName"] == "orders"]
    assert orders_row["ValidationState"] == "Error"
    assert "run the replication first" in orders_row["ValidationStateDetails"]
    message = failure_message(local_checks(replicator, lake.uri(CONFIG.lake.raw_prefix, "shop")))
    assert "validation_state [table orders]: ValidationState='Error'" in message and "no replicated Parquet" in message
    with pytest.raises(FileNotFoundError, match="run the replication first"):
        latest_state(lake.raw_table("shop", "orders"), "order_id")


def test_check_inputs_are_not_mutated() -> None:
    evidence = healthy_evidence()
    frozen = deepcopy(evidence)
    run_checks(evidence)
    assert evidence == frozen


def test_unfit_value_in_the_full_load_is_quarantined_and_the_checks_name_it(sqlite_url: str, tmp_path: Path) -> None:
    """A value the lake cannot carry no longer fails the whole load: its row is quarantined, the others load."""
    engine = make_engine(sqlite_url)
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO products (product_id, sku, category, unit_price, weight_kg, is_fragile, updated_at) "
                "VALUES (1, 'S1', 'toys', 'twelve', NULL, 0, '2025-01-01 00:00:00.000000'), "
                "(2, 'S2', 'toys', 3.5, NULL, 1, '2025-01-01 00:00:00.000000')"
            )
        )
    lake = Lake(root=(tmp_path / "lake").as_uri(), layout=CONFIG.lake)
    replicator = LocalReplicator(CONFIG, engine, lake, state_dir=tmp_path / "dms")
    loaded = replicator.sync()
    assert (loaded.tables["products"], loaded.quarantined) == (1, 1)
    status = replicator.status()
    stats = {row["TableName"]: row for row in status["table_statistics"]["TableStatistics"]}
    assert {row["TableState"] for row in stats.values()} == {"Table completed"}
    assert stats["products"]["FullLoadErrorRows"] == 1
    assert stats["products"]["ValidationFailedRecords"] == 1
    assert status["quarantine"]["products"]["examples"] == [
        "products product_id=1: unit_price holds 'twelve', which is not a decimal128(10, 2) "
        "(a number with at most 2 decimal places)"
    ]
    message = failure_message(
        check_replication(
            status["tasks"], status["table_statistics"], TABLES, 900, status["cdc_lag_seconds"],
            dict.fromkeys(TABLES, 1), True,
            max_validation_pending_seconds=BUDGET, pending_since={}, now=NOW, quarantine=status["quarantine"],
        )
    )  # fmt: skip
    assert "full_load_error_rows [table products]: FullLoadErrorRows=1" in message
    assert "product_id=1: unit_price holds 'twelve'" in message
    assert "quarantine [table products]: QuarantinedOpen=1" in message
    assert "`mlops replicate --reload products`" in message


# ---- DMS data validation (DescribeTableStatistics' Validation* fields) ----------------------------------


def test_mismatched_records_fail_naming_table_metric_and_columns() -> None:
    evidence = healthy_evidence()
    validation_of(evidence, "orders").update(
        ValidationState="Mismatched records",
        ValidationFailedRecords=2,
        ValidationStateDetails="2 record(s) differ: order_id=7: status differs; order_id=9: missing in the lake",
    )
    results = run_checks(evidence)
    message = failure_message(results)
    assert "validation_state [table orders]: ValidationState='Mismatched records'" in message
    assert "validation_failed_records [table orders]: ValidationFailedRecords=2 (expected 0)" in message
    assert "order_id=7: status differs" in message and "`mlops replicate --reload orders`" in message
    assert "reload_tables=['orders']" in message
    assert {r.table for r in results if not r.passed} == {"orders"}


def test_failed_records_fail_even_when_the_last_validation_passed() -> None:
    # S3 targets: ValidationState reflects the latest daily validation; earlier failures stay counted.
    evidence = healthy_evidence()
    validation_of(evidence, "customers").update(ValidationFailedRecords=1)
    message = failure_message(run_checks(evidence))
    assert "validation_failed_records [table customers]: ValidationFailedRecords=1" in message
    assert "validation_state" not in message


def test_validation_pending_within_the_budget_passes() -> None:
    evidence = healthy_evidence()
    validation_of(evidence, "orders").update(ValidationState="Pending records", ValidationPendingRecords=40)
    results = run_checks(evidence, pending_since={"orders": NOW - timedelta(seconds=BUDGET - 1)})
    assert all(r.passed for r in results), format_results(results)
    (state,) = [r for r in results if r.name == "validation_state" and r.table == "orders"]
    assert "40 record(s) pending" in state.message


def test_validation_pending_beyond_the_budget_fails() -> None:
    evidence = healthy_evidence()
    validation_of(evidence, "orders").update(ValidationState="Pending records", ValidationPendingRecords=40)
    message = failure_message(run_checks(evidence, pending_since={"orders": NOW - timedelta(seconds=BUDGET + 1)}))
    assert "validation_state [table orders]: ValidationState='Pending records'" in message
    assert "longer than 3600s" in message and "00:00 UTC" in message
    assert "max_validation_pending_seconds" in message


def test_validated_with_records_waiting_for_the_next_validation_passes() -> None:
    evidence = healthy_evidence()
    validation_of(evidence, "orders").update(ValidationPendingRecords=1200)
    results = run_checks(evidence)
    assert all(r.passed for r in results)
    assert any("1200 changed record(s) wait for the next validation" in r.message for r in results)


def test_suspended_records_fail() -> None:
    evidence = healthy_evidence()
    validation_of(evidence, "order_items").update(
        ValidationState="Suspended records", ValidationSuspendedRecords=30, ValidationStateDetails="too many failures"
    )
    message = failure_message(run_checks(evidence))
    assert "validation_suspended_records [table order_items]: ValidationSuspendedRecords=30" in message
    assert "validation_failure_max_count" in message and "validate-only" in message


@pytest.mark.parametrize(
    ("state", "hint"),
    [
        ("Not enabled", "EnableValidation"),
        ("No primary key", "primary key"),
        ("Table error", "not migrated"),
        ("Error", "task log"),
        ("Something new", "does not know"),
    ],
)
def test_states_that_cannot_vouch_for_the_table_fail(state: str, hint: str) -> None:
    evidence = healthy_evidence()
    validation_of(evidence, "products").update(ValidationState=state)
    message = failure_message(run_checks(evidence))
    assert f"validation_state [table products]: ValidationState={state!r}" in message and hint in message


def test_pending_since_keeps_the_first_sighting_of_each_table_awaiting_validation() -> None:
    evidence = healthy_evidence()
    validation_of(evidence, "orders").update(ValidationState="Pending records")
    validation_of(evidence, "products").update(ValidationState="Pending revalidation")
    rows = evidence["stats"]["TableStatistics"]
    first = NOW - timedelta(hours=5)
    future = NOW + timedelta(days=1)
    previous = {"orders": first.isoformat(), "customers": first.isoformat(), "products": future.isoformat()}
    since = validation_pending_since(rows, TABLES, previous, NOW)
    # orders still awaits (since its first sighting), customers was validated in between (dropped),
    # products awaits and a recorded time in the future is clamped to now
    assert since == {"orders": first, "products": NOW}
    assert validation_pending_since(rows, TABLES, {}, NOW) == {"orders": NOW, "products": NOW}
