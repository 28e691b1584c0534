"""Replication is type-faithful, and a change the lake cannot take is quarantined without wedging anything.

Issue 13, rows "text in a Numeric source column" and "a poison row": SQLite keeps ``'abc'`` and
``'12,50'`` in a NUMERIC(8, 2) column. The capture trigger used to print them with
``printf('%.2f')`` into 0.00 and 12.00, and the reconcile passed; a value the JSON reader could not
parse wedged CDC ("run full_load()"). Now such a change goes to the quarantine with its table,
key, column and value, the rest of the batch is applied, validation names the record, the check
fails naming it, and fixing the row in the source heals the lake.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, text

from mlops.config import PipelineConfig
from mlops.lake import Lake, local_path
from mlops.replication.checks import check_quarantine
from mlops.replication.quarantine import CONTROL_SCHEMA, QUARANTINE_TABLE
from mlops.replication.reconcile import latest_state
from mlops.replication.replicator import LocalReplicator
from mlops.source.db import create_schema, make_engine
from tests.unit.test_replication_cdc import assert_lake_matches_source, seed_rows

CONFIG = PipelineConfig()
SCHEMA = CONFIG.source.schema_name


@pytest.fixture
def engine(sqlite_url: str) -> Engine:
    source = make_engine(sqlite_url)
    create_schema(source)
    seed_rows(source)
    return source


@pytest.fixture
def replicator(engine: Engine, tmp_path: Path) -> LocalReplicator:
    lake = Lake(root=(tmp_path / "lake").as_uri(), layout=CONFIG.lake)
    replicator = LocalReplicator(CONFIG, engine, lake, state_dir=tmp_path / "dms")
    replicator.sync()
    return replicator


def orders_in_lake(replicator: LocalReplicator) -> dict[int, dict]:
    latest = latest_state(replicator.lake.raw_table(SCHEMA, "orders"), "order_id")
    return {row["order_id"]: row for row in latest.to_pylist()}


def quarantine_rows(replicator: LocalReplicator) -> list[dict]:
    folder = local_path(replicator.quarantine_uri())
    return [row for path in sorted(folder.rglob("*.parquet")) for row in pq.read_table(path).to_pylist()]


def execute(engine: Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def test_text_in_a_numeric_column_is_quarantined_not_coerced(engine: Engine, replicator: LocalReplicator) -> None:
    execute(
        engine,
        "UPDATE orders SET shipping_fee = 'abc' WHERE order_id = 1",
        "UPDATE orders SET shipping_fee = '12,50' WHERE order_id = 2",
        "UPDATE orders SET status = 'shipped' WHERE order_id = 4",
    )
    batch = replicator.sync()
    assert (batch.rows, batch.quarantined, batch.changes) == (1, 2, 3)
    lake = orders_in_lake(replicator)
    # before: the trigger's printf made these 0.00 and 12.00; now the lake keeps the last value it could carry
    assert lake[1]["shipping_fee"] == lake[2]["shipping_fee"] == Decimal("4.90")
    assert lake[4]["status"] == "shipped", "the rest of the batch is applied"

    quarantined = {row["KEY"]: row for row in quarantine_rows(replicator)}
    assert set(quarantined) == {"1", "2"}
    assert quarantined["1"]["TABLE_NAME"] == "orders" and quarantined["1"]["COLUMN_NAME"] == "shipping_fee"
    assert quarantined["1"]["VALUE"] == "'abc'" and quarantined["2"]["VALUE"] == "'12,50'"
    assert "orders order_id=1: shipping_fee holds 'abc', which is not a decimal128(8, 2)" in quarantined["1"]["ERROR"]
    assert '"shipping_fee":"abc"' in quarantined["1"]["STATEMENT"].replace(" ", "")
    raw = local_path(replicator.lake.raw_table(SCHEMA, "orders"))
    assert not any(QUARANTINE_TABLE in str(p) for p in raw.rglob("*")), "no reader of the table sees the quarantine"
    assert replicator.quarantine_uri().endswith(f"/{CONTROL_SCHEMA}/{QUARANTINE_TABLE}")

    stats = {r["TableName"]: r for r in replicator.status()["table_statistics"]["TableStatistics"]}
    assert stats["orders"]["ValidationState"] == "Mismatched records"
    assert stats["orders"]["ValidationFailedRecords"] == 2
    assert "order_id=1: shipping_fee holds 'abc'" in stats["orders"]["ValidationStateDetails"]
    (check,) = [r for r in check_quarantine(replicator.status()["quarantine"], ["orders"])]
    assert not check.passed and check.value == 2
    assert "order_id=2: shipping_fee holds '12,50'" in check.message
    assert "`mlops replicate --reload orders`" in check.message


def test_fixing_the_row_in_the_source_heals_the_lake(engine: Engine, replicator: LocalReplicator) -> None:
    execute(engine, "UPDATE orders SET shipping_fee = 'abc' WHERE order_id = 1")
    replicator.sync()
    execute(engine, "UPDATE orders SET shipping_fee = 12.5 WHERE order_id = 1")
    healed = replicator.sync()
    assert healed.validation["orders"] == "Validated"
    assert orders_in_lake(replicator)[1]["shipping_fee"] == Decimal("12.50")
    report = replicator.status()["quarantine"]["orders"]
    assert (report["open"], report["total"]) == (1 - 1, 1)
    assert all(r.passed for r in check_quarantine(replicator.status()["quarantine"], ["orders"]))
    assert_lake_matches_source(engine, replicator.lake, replicator)


def test_a_poison_change_does_not_wedge_later_batches(engine: Engine, replicator: LocalReplicator) -> None:
    """Before: "row images of table orders do not fit its lake schema; run full_load()" on every sync."""
    execute(engine, "UPDATE orders SET promised_days = 'soon' WHERE order_id = 3")
    first = replicator.sync()
    assert first.quarantined == 1
    execute(engine, "UPDATE orders SET status = 'delivered' WHERE order_id = 5")
    second = replicator.sync()
    assert (second.rows, second.quarantined) == (1, 0)
    task = replicator.status()["tasks"]["ReplicationTasks"][0]
    assert task["Status"] == "running" and "LastFailureMessage" not in task
    assert orders_in_lake(replicator)[5]["status"] == "delivered"


@pytest.mark.parametrize(
    ("statement", "column", "shown"),
    [
        ("UPDATE customers SET marketing_opt_in = 2 WHERE customer_id = 2", "marketing_opt_in", "2"),
        ("UPDATE products SET unit_price = 12.345 WHERE product_id = 1", "unit_price", "'12.345'"),
        ("UPDATE order_items SET updated_at = 'yesterday' WHERE order_item_id = 4", "updated_at", "'yesterday'"),
    ],
)
def test_values_the_lake_would_round_or_coerce_are_quarantined(
    engine: Engine, replicator: LocalReplicator, statement: str, column: str, shown: str
) -> None:
    """A boolean 2 is not true, 12.345 is not 12.35 in a scale-2 column, 'yesterday' is no timestamp."""
    execute(engine, statement)
    batch = replicator.sync()
    (row,) = quarantine_rows(replicator)
    assert (batch.quarantined, row["COLUMN_NAME"], row["VALUE"]) == (1, column, shown)


def test_full_load_quarantines_the_same_rows_cdc_does(engine: Engine, tmp_path: Path) -> None:
    """One rule for both paths: a fresh load of the same data quarantines instead of failing or coercing."""
    execute(
        engine,
        "UPDATE orders SET shipping_fee = 'abc' WHERE order_id = 1",
        "UPDATE products SET unit_price = 12.345 WHERE product_id = 1",
        "UPDATE customers SET marketing_opt_in = 2 WHERE customer_id = 2",
    )
    lake = Lake(root=(tmp_path / "fresh").as_uri(), layout=CONFIG.lake)
    replicator = LocalReplicator(CONFIG, engine, lake, state_dir=tmp_path / "fresh-dms")
    loaded = replicator.sync()
    assert loaded.quarantined == 3
    assert loaded.tables == {"customers": 4, "products": 2, "orders": 5, "order_items": 12}
    assert {(r["TABLE_NAME"], r["KEY"], r["PHASE"]) for r in quarantine_rows(replicator)} == {
        ("orders", "1", "full load"), ("products", "1", "full load"), ("customers", "2", "full load"),
    }  # fmt: skip
    stats = {r["TableName"]: r for r in replicator.status()["table_statistics"]["TableStatistics"]}
    assert {name: r["FullLoadErrorRows"] for name, r in stats.items()} == {
        "customers": 1, "products": 1, "orders": 1, "order_items": 0,
    }  # fmt: skip


def test_a_delete_whose_before_image_holds_bad_values_is_still_applied(
    engine: Engine, replicator: LocalReplicator
) -> None:
    execute(engine, "UPDATE orders SET shipping_fee = 'abc' WHERE order_id = 6")
    replicator.sync()
    execute(engine, "DELETE FROM order_items WHERE order_id = 6", "DELETE FROM orders WHERE order_id = 6")
    replicator.sync()
    assert 6 not in orders_in_lake(replicator)
    assert replicator.status()["quarantine"]["orders"]["open"] == 0, "the delete supersedes the quarantined change"
    assert_lake_matches_source(engine, replicator.lake, replicator)
