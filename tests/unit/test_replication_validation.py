"""The local DMS stand-in's data validation: every replicated column of every row, by key range.

A value changed on either side without a change record is a failed record naming the table, the
key and the column; changes not replicated yet are pending, not failures; after FailureMaxCount
failures the remaining differing key ranges are suspended; only differing key ranges are read
again. The replication checks then fail (or pass) on that verdict alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, insert, text, update

from mlops.config import PipelineConfig
from mlops.lake import Lake, local_path
from mlops.replication import validation
from mlops.replication.checks import ReplicationCheckError, check_replication, raise_on_failures
from mlops.replication.reconcile import RangeDigests, RowDiff, diff_rows, row_hashes
from mlops.replication.replicator import LocalReplicator
from mlops.source.db import create_schema, make_engine
from mlops.source.schema import customers, products

CONFIG = PipelineConfig()
TABLES = list(CONFIG.replication.tables)
TS = datetime(2025, 4, 1, 10, 0, 0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_db_url")
    source = make_engine(url)
    create_schema(source)
    with source.begin() as conn:
        conn.execute(
            insert(customers),
            [
                dict(customer_id=i, email=f"c{i}@x.io", country="DE", segment="vip", birth_year=None if i % 3 else 1980,
                     marketing_opt_in=i % 2 == 0, signup_ts=TS, updated_at=TS)
                for i in range(1, 13)
            ],
        )  # fmt: skip
        conn.execute(
            insert(products),
            [
                dict(product_id=i, sku=f"S{i}", category="toys", unit_price=Decimal("9.99"), weight_kg=None,
                     is_fragile=False, updated_at=TS)
                for i in range(1, 4)
            ],
        )  # fmt: skip
    return source


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(root=(tmp_path / "lake").as_uri(), layout=CONFIG.lake)


def replicator_for(engine: Engine, lake: Lake, tmp_path: Path, **replication: Any) -> LocalReplicator:
    config = PipelineConfig.model_validate({"replication": replication}) if replication else CONFIG
    return LocalReplicator(config, engine, lake, state_dir=tmp_path / "dms")


def statistics(replicator: LocalReplicator) -> dict[str, dict[str, Any]]:
    rows = replicator.status()["table_statistics"]["TableStatistics"]
    return {row["TableName"]: row for row in rows}


def check_message(replicator: LocalReplicator) -> str:
    """The replication checks over the stand-in's status, as the check operator runs them."""
    status = replicator.status()
    results = check_replication(
        status["tasks"], status["table_statistics"], TABLES, 900, status["cdc_lag_seconds"],
        dict.fromkeys(TABLES, 1), True,
        max_validation_pending_seconds=3600, pending_since={}, now=datetime.now(UTC),
    )  # fmt: skip
    with pytest.raises(ReplicationCheckError) as error:
        raise_on_failures(results)
    return str(error.value)


def change_without_change_record(engine: Engine, statement: str) -> None:
    """Change the source behind DMS's back: the statement's change records are removed from the log."""
    with engine.begin() as conn:
        before = conn.execute(text("SELECT coalesce(max(capture_id), 0) FROM dms_change_log")).scalar_one()
        conn.execute(text(statement))
        conn.execute(text("DELETE FROM dms_change_log WHERE capture_id > :b"), {"b": before})


def test_a_source_value_changed_without_a_change_record_fails_naming_table_and_column(
    engine: Engine, lake: Lake, tmp_path: Path
) -> None:
    replicator = replicator_for(engine, lake, tmp_path)
    assert set(replicator.sync().validation.values()) == {"Validated"}
    change_without_change_record(engine, "UPDATE customers SET country = 'XX' WHERE customer_id = 5")
    batch = replicator.sync()
    assert batch.rows == 0 and batch.validation["customers"] == "Mismatched records"
    row = statistics(replicator)["customers"]
    assert (row["ValidationFailedRecords"], row["ValidationPendingRecords"]) == (1, 0)
    assert row["ValidationStateDetails"] == "1 record(s) differ: customer_id=5: country differs"
    message = check_message(replicator)
    assert "validation_failed_records [table customers]: ValidationFailedRecords=1" in message
    assert "customer_id=5: country differs" in message
    assert "[table products]" not in message


def test_a_lake_value_changed_without_a_change_record_fails_naming_table_and_column(
    sqlite_url: str, lake: Lake, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(products),
            [dict(product_id=i, sku=f"S{i}", category="toys", unit_price=Decimal("9.99"), weight_kg=None,
                  is_fragile=False, updated_at=TS) for i in range(1, 4)],
        )  # fmt: skip
    replicator = replicator_for(engine, lake, tmp_path)
    replicator.sync()
    load = local_path(lake.raw_table("shop", "products")) / "LOAD00000001.parquet"
    table = pq.read_table(load)
    tampered = pc.if_else(pc.equal(table["product_id"], 2), pa.scalar(Decimal("0.01"), table["unit_price"].type),
                          table["unit_price"])  # fmt: skip
    pq.write_table(table.set_column(table.schema.get_field_index("unit_price"), "unit_price", tampered), load)
    assert replicator.validate()["products"].failures == ("product_id=2: unit_price differs",)
    message = check_message(replicator)
    assert "validation_state [table products]: ValidationState='Mismatched records'" in message
    assert "product_id=2: unit_price differs" in message


def test_rows_missing_on_either_side_are_failed_records(engine: Engine, lake: Lake, tmp_path: Path) -> None:
    replicator = replicator_for(engine, lake, tmp_path)
    replicator.sync()
    change_without_change_record(engine, "DELETE FROM customers WHERE customer_id = 7")
    change_without_change_record(
        engine,
        "INSERT INTO customers (customer_id, email, country, segment, birth_year, marketing_opt_in, signup_ts, "
        "updated_at) VALUES (50, 'c50@x.io', 'DE', 'vip', NULL, false, '2025-04-01 10:00:00', '2025-04-01 10:00:00')",
    )
    outcome = replicator.validate()["customers"]
    assert (outcome.state, outcome.failed) == ("Mismatched records", 2)
    assert outcome.failures == ("customer_id=7: not in the source", "customer_id=50: missing in the lake")


def test_changes_not_replicated_yet_are_pending_not_mismatches(engine: Engine, lake: Lake, tmp_path: Path) -> None:
    replicator = replicator_for(engine, lake, tmp_path, cdc_batch_max_changes=2)
    replicator.sync()
    with engine.begin() as conn:
        conn.execute(update(customers).where(customers.c.customer_id <= 5).values(country="FR"))  # 5 changes
    batch = replicator.sync()  # applies 2 of them
    assert batch.rows == 2 and batch.validation["customers"] == "Pending records"
    row = statistics(replicator)["customers"]
    assert (row["ValidationPendingRecords"], row["ValidationFailedRecords"]) == (3, 0)
    replicator.sync()
    replicator.sync()
    assert statistics(replicator)["customers"]["ValidationState"] == "Validated"


def test_only_differing_key_ranges_are_compared_and_failures_beyond_the_maximum_are_suspended(
    engine: Engine, lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replicator = replicator_for(engine, lake, tmp_path, validation_partition_size=4, validation_failure_max_count=1)
    replicator.sync()
    # customers 1..12 fall in key ranges [0,4) [4,8) [8,12) [12,16); break one row in [4,8) and one in [8,12)
    change_without_change_record(engine, "UPDATE customers SET segment = 'x' WHERE customer_id IN (5, 9)")
    compared: list[tuple[int, int]] = []
    real = validation._range_diffs

    def spy(conn: Any, table: Any, uri: str, key_range: tuple[int, int], skip: Any) -> list[RowDiff]:
        compared.append(key_range)
        return real(conn, table, uri, key_range, skip)

    monkeypatch.setattr(validation, "_range_diffs", spy)
    outcome = replicator.validate()["customers"]
    assert compared == [(4, 8)], "equal ranges are never read again; after FailureMaxCount nothing more is compared"
    assert (outcome.state, outcome.failed, outcome.suspended) == ("Mismatched records", 1, 4)
    assert "4 record(s) not compared after FailureMaxCount=1 failures" in outcome.details
    message = check_message(replicator)
    assert "validation_suspended_records [table customers]: ValidationSuspendedRecords=4" in message


def test_validation_switched_off_is_reported_and_fails_the_check(engine: Engine, lake: Lake, tmp_path: Path) -> None:
    replicator = replicator_for(engine, lake, tmp_path, validation_enabled=False)
    assert set(replicator.sync().validation.values()) == {"Not enabled"}
    assert "ValidationState='Not enabled'" in check_message(replicator)
    assert "EnableValidation" in check_message(replicator)


def test_row_hashes_cover_every_column_and_tell_null_from_values() -> None:
    names = pa.array(["a", "", None, "a"])
    amounts = pa.array([Decimal("1.10"), Decimal("1.10"), Decimal("1.10"), Decimal("1.01")], pa.decimal128(5, 2))
    hashes = row_hashes([names, amounts])
    assert len(set(hashes.tolist())) == 4, "'' vs NULL and 1.10 vs 1.01 all differ"
    assert row_hashes([amounts, names]).tolist() != hashes.tolist(), "column order matters"
    chunked = pa.chunked_array([names[:2], names[2:]])
    assert row_hashes([chunked, amounts]).tolist() == hashes.tolist()
    assert row_hashes([names.cast(pa.large_string()), amounts]).tolist() == hashes.tolist(), "text form, not type"
    counts = pa.array([7, None, 7, 8], pa.int32())
    assert row_hashes([counts.cast(pa.int64())]).tolist() == row_hashes([counts]).tolist(), "any integer width"
    assert row_hashes([names, names]).tolist() != row_hashes([names]).tolist(), "every column counts"
    stamps = pa.array([datetime(2025, 1, 1, 0, 0, 0, 1), datetime(2025, 1, 1)], pa.timestamp("us"))
    assert row_hashes([stamps])[0] != row_hashes([stamps])[1], "microseconds count"


def test_range_digests_and_row_diffs() -> None:
    ours, theirs = RangeDigests(10), RangeDigests(10)
    keys = pa.array([1, 2, 15, 31], pa.int64()).to_numpy()
    hashes = row_hashes([pa.array(["a", "b", "c", "d"])])
    ours.add(keys, hashes)
    theirs.add(keys[::-1].copy(), hashes[::-1].copy())  # order does not matter
    assert ours.differing(theirs) == []
    theirs.add(pa.array([12], pa.int64()).to_numpy(), hashes[:1])
    assert ours.differing(theirs) == [1] and ours.key_range(1) == (10, 20)

    source = pa.table({"id": [1, 2, 3], "v": ["x", None, "z"], "w": [1, 2, 3]})
    lake = pa.table({"id": [4, 3, 2], "v": ["q", "Z", None], "w": [4, 30, 2]})
    assert [d.describe("id") for d in diff_rows(source, lake, "id")] == [
        "id=1: missing in the lake",
        "id=3: v, w differ",
        "id=4: not in the source",
    ]


def test_published_status_is_read_without_the_source(engine: Engine, lake: Lake, tmp_path: Path) -> None:
    from mlops.replication.status import published_status

    replicator = replicator_for(engine, lake, tmp_path)
    replicator.sync()
    state = replicator.store.load(TABLES, datetime.now(UTC))
    engine.dispose()
    fresh = published_status(state, schema="shop", now=datetime.now(UTC), latency_window_seconds=900)
    assert fresh["cdc_lag_seconds"] == 0.0
    assert {row["ValidationState"] for row in fresh["table_statistics"]["TableStatistics"]} == {"Validated"}
    later = datetime.now(UTC) + timedelta(hours=1)
    stale = published_status(state, schema="shop", now=later, latency_window_seconds=900)
    assert stale["cdc_lag_seconds"] is None, "a datapoint older than the metric window is no measurement"
