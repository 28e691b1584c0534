"""OLTP activity: real inserts, updates and deletes, valid transitions, bumped updated_at, determinism."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from mlops.source.activity import ActivityResult, simulate_activity
from mlops.source.db import create_schema, make_engine, table_counts
from mlops.source.generator import generate
from mlops.source.schema import TABLES, primary_key

ORDERS = 2_000


def rows_by_key(engine: Engine) -> dict[str, dict[int, tuple]]:
    """Every table's raw rows keyed by primary key."""
    with engine.connect() as conn:
        return {
            name: {
                row[0]: tuple(row) for row in conn.exec_driver_sql(f"SELECT * FROM {name} ORDER BY {primary_key(name)}")
            }
            for name in TABLES
        }


def shop(url: str, seed: int = 5) -> Engine:
    engine = make_engine(url)
    generate(engine, orders=ORDERS, seed=seed)
    return engine


def orphans(engine: Engine) -> int:
    """Rows whose foreign keys point nowhere (works on SQLite and PostgreSQL)."""
    sql = (
        "SELECT (SELECT COUNT(*) FROM orders o LEFT JOIN customers c ON c.customer_id = o.customer_id "
        "WHERE c.customer_id IS NULL) + (SELECT COUNT(*) FROM order_items i LEFT JOIN orders o "
        "ON o.order_id = i.order_id WHERE o.order_id IS NULL) + (SELECT COUNT(*) FROM order_items i "
        "LEFT JOIN products p ON p.product_id = i.product_id WHERE p.product_id IS NULL)"
    )
    with engine.connect() as conn:
        return conn.exec_driver_sql(sql).scalar_one()


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, ActivityResult, dict, dict]:
    """Rows and counts before and after four days of activity on a 2k-order shop."""
    engine = shop(f"sqlite:///{tmp_path_factory.mktemp('activity') / 'source.db'}")
    before, counts_before = rows_by_key(engine), table_counts(engine)
    result = simulate_activity(engine, seed=3, steps=4)
    return before, rows_by_key(engine), result, counts_before, table_counts(engine)


def test_activity_inserts_updates_and_deletes(simulated) -> None:
    _, _, result, counts_before, counts_after = simulated
    for table in ("customers", "orders", "order_items"):
        assert result.inserts[table] > 0, table
        assert result.deletes[table] > 0, table
    for table in TABLES:
        assert result.updates[table] > 0, table
        assert counts_after[table] - counts_before[table] == result.inserts[table] - result.deletes[table], table
    assert result.steps == 4 and (result.end - result.start).days == 4


def test_counts_match_row_level_changes(simulated) -> None:
    before, after, result, _, _ = simulated
    for table in TABLES:
        old, new = before[table], after[table]
        assert len(new.keys() - old.keys()) == result.inserts[table], table
        assert len(old.keys() - new.keys()) == result.deletes[table], table
        changed = [key for key in old.keys() & new.keys() if old[key] != new[key]]
        assert len(changed) <= result.updates[table], table  # a row updated twice counts twice
        if table != "order_items":  # basket edits mostly hit orders placed during the activity
            assert changed, table


def test_updates_bump_updated_at_past_the_old_data(simulated) -> None:
    before, after, result, _, _ = simulated
    with_updated_at = {name: list(table.c.keys()).index("updated_at") for name, table in TABLES.items()}
    for table, column in with_updated_at.items():
        for key in before[table].keys() & after[table].keys():
            old, new = before[table][key], after[table][key]
            if old != new:
                assert datetime.fromisoformat(new[column]) > result.start >= datetime.fromisoformat(old[column])


def status_moves(before: dict, after: dict) -> set[tuple[str, str]]:
    """The (old, new) status pairs of orders whose status changed."""
    status = list(TABLES["orders"].c.keys()).index("status")
    return {
        (before["orders"][key][status], after["orders"][key][status])
        for key in before["orders"].keys() & after["orders"].keys()
        if before["orders"][key][status] != after["orders"][key][status]
    }


def test_orders_only_move_forward_over_several_days(simulated) -> None:
    before, after, _, _, _ = simulated
    forward = {
        ("placed", "shipped"),
        ("placed", "cancelled"),
        ("placed", "delivered"),
        ("placed", "returned"),
        ("shipped", "delivered"),
        ("shipped", "returned"),
    }
    assert status_moves(before, after) <= forward


def test_one_day_moves_each_order_one_state(sqlite_url: str) -> None:
    engine = shop(sqlite_url)
    before = rows_by_key(engine)
    simulate_activity(engine, seed=4, steps=1)
    one_state = {("placed", "shipped"), ("placed", "cancelled"), ("shipped", "delivered"), ("shipped", "returned")}
    moves = status_moves(before, rows_by_key(engine))
    assert moves and moves <= one_state


def test_deletes_purge_cancelled_orders_with_items_and_orderless_customers(simulated) -> None:
    before, after, _, _, _ = simulated
    status = list(TABLES["orders"].c.keys()).index("status")
    gone_orders = before["orders"].keys() - after["orders"].keys()
    assert gone_orders and all(before["orders"][key][status] == "cancelled" for key in gone_orders)
    assert not any(item[1] in gone_orders for item in after["order_items"].values())
    customers_with_orders = {row[1] for row in before["orders"].values()}
    assert not (before["customers"].keys() - after["customers"].keys()) & customers_with_orders


def test_foreign_keys_hold_after_activity(tmp_path: Path) -> None:
    engine = shop(f"sqlite:///{tmp_path / 'source.db'}")
    simulate_activity(engine, seed=1, steps=3)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    assert orphans(engine) == 0


def test_same_seed_same_changes_other_seed_differs(tmp_path: Path) -> None:
    engines = [shop(f"sqlite:///{tmp_path / name}.db") for name in ("a", "b", "c")]
    for engine, seed in zip(engines, (9, 9, 10), strict=True):
        simulate_activity(engine, seed=seed, steps=2)
    snapshots = [rows_by_key(engine) for engine in engines]
    assert snapshots[0] == snapshots[1]
    assert snapshots[0]["orders"] != snapshots[2]["orders"]


def test_progress_reports_steps(sqlite_url: str) -> None:
    calls: list[tuple[int, int]] = []
    simulate_activity(shop(sqlite_url), seed=1, steps=2, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)]


def test_bad_inputs_are_rejected(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with pytest.raises(ValueError, match="create_schema"):
        simulate_activity(engine, seed=1, steps=1)
    create_schema(engine)
    with pytest.raises(ValueError, match="run the generator first"):
        simulate_activity(engine, seed=1, steps=1)
    with pytest.raises(ValueError, match="steps must be an integer from 1"):
        simulate_activity(engine, seed=1, steps=0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        simulate_activity(engine, seed=-3, steps=1)


@pytest.mark.postgres
def test_postgres_activity_matches_sqlite(tmp_path: Path, postgres_db_url: str) -> None:
    sqlite_engine, pg_engine = shop(f"sqlite:///{tmp_path / 'source.db'}"), shop(postgres_db_url)
    sqlite_result = simulate_activity(sqlite_engine, seed=2, steps=3)
    pg_result = simulate_activity(pg_engine, seed=2, steps=3)
    assert (pg_result.inserts, pg_result.updates, pg_result.deletes) == (
        sqlite_result.inserts,
        sqlite_result.updates,
        sqlite_result.deletes,
    )
    assert table_counts(pg_engine) == table_counts(sqlite_engine)
    assert orphans(pg_engine) == 0
    pg_engine.dispose()
