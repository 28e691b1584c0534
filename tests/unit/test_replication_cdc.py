"""The local DMS replicator end to end: full load + CDC reconcile exactly, on SQLite and PostgreSQL.

"Exactly" twice over: the latest state read back from the lake equals the source table, and the
stand-in's own DMS data validation reports every table ``Validated``.

Also: changes captured before the snapshot are not applied twice, batches split by max_changes,
a crash mid-batch resumes without loss or duplicates, and re-running with nothing pending writes
nothing.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, delete, func, insert, select, text, update

from mlops.config import PipelineConfig
from mlops.lake import Lake, local_path
from mlops.replication import lake_io
from mlops.replication.capture import CHANGE_LOG, install_capture
from mlops.replication.lake_io import source_schema
from mlops.replication.reconcile import latest_state
from mlops.replication.replicator import LocalReplicator
from mlops.source.db import create_schema, make_engine, reset_schema
from mlops.source.schema import TABLES, customers, order_items, orders, primary_key, products

CONFIG = PipelineConfig()
SCHEMA = CONFIG.source.schema_name
T0 = datetime(2025, 3, 1, 8, 30, 15, 123456)


def seed_rows(engine: Engine) -> None:
    """A few rows per table exercising NULLs, decimals, booleans and microsecond timestamps."""
    with engine.begin() as conn:
        conn.execute(
            insert(customers),
            [
                dict(customer_id=i, email=f"c{i}@x.io", country="DE", segment="vip" if i % 2 else "consumer",
                     birth_year=None if i == 3 else 1980 + i, marketing_opt_in=i % 2 == 0,
                     signup_ts=T0, updated_at=T0.replace(microsecond=i))
                for i in range(1, 6)
            ],
        )  # fmt: skip
        conn.execute(
            insert(products),
            [
                dict(product_id=i, sku=f"SKU{i}", category="toys", unit_price=Decimal(f"{i}9.99"),
                     weight_kg=None if i == 2 else Decimal("0.125") * i, is_fragile=i == 1, updated_at=T0)
                for i in range(1, 4)
            ],
        )  # fmt: skip
        conn.execute(
            insert(orders),
            [
                dict(order_id=i, customer_id=1 + i % 5, order_ts=T0, channel="web", payment_method="card",
                     shipping_method="standard", ship_country="FR", promised_days=3, shipping_fee=Decimal("4.90"),
                     discount_code=None if i % 2 else "SPRING", status="placed", updated_at=T0)
                for i in range(1, 7)
            ],
        )  # fmt: skip
        conn.execute(
            insert(order_items),
            [
                dict(order_item_id=i, order_id=1 + i % 6, product_id=1 + i % 3, quantity=1 + i % 4,
                     unit_price=Decimal("19.99"), discount_pct=None if i % 3 else Decimal("12.50"), updated_at=T0)
                for i in range(1, 13)
            ],
        )  # fmt: skip


def mutate(engine: Engine, step: int) -> int:
    """Inserts, updates (values to/from NULL, decimals, booleans), a re-key and deletes; returns row changes."""
    ts = T0.replace(day=2 + step)
    base = 100 * (step + 1)
    changes = 0
    with engine.begin() as conn:
        conn.execute(
            insert(customers).values(
                customer_id=base, email=f"new{base}@x.io", country="PL", segment="business", birth_year=None,
                marketing_opt_in=True, signup_ts=ts, updated_at=ts,
            )
        )  # fmt: skip
        conn.execute(
            insert(orders).values(
                order_id=base, customer_id=base, order_ts=ts, channel="app", payment_method="paypal",
                shipping_method="express", ship_country="PL", promised_days=1, shipping_fee=Decimal("0.00"),
                discount_code=None, status="placed", updated_at=ts,
            )
        )  # fmt: skip
        conn.execute(
            insert(order_items).values(
                order_item_id=base, order_id=base, product_id=2, quantity=2, unit_price=Decimal("7.05"),
                discount_pct=Decimal("5.00"), updated_at=ts,
            )
        )  # fmt: skip
        updates = [
            update(orders).where(orders.c.order_id == 2).values(status=f"shipped{step}", updated_at=ts),
            update(customers).where(customers.c.customer_id == 3).values(birth_year=1990 + step, updated_at=ts),
            update(products)
            .where(products.c.product_id == 2)
            .values(weight_kg=Decimal("1.001") + step, is_fragile=step % 2 == 0, unit_price=Decimal("0.01")),
            update(order_items).where(order_items.c.order_item_id == 1).values(discount_pct=None),
        ]
        changes = 3 + sum(conn.execute(statement).rowcount for statement in updates)
        rekey = update(order_items).where(order_items.c.order_item_id == 2).values(order_item_id=1000 + step)
        changes += 2 * conn.execute(rekey).rowcount  # a key change is captured as D + I
        doomed = 3 + step
        items = conn.execute(select(func.count()).where(order_items.c.order_id == doomed)).scalar_one()
        changes += items + conn.execute(delete(orders).where(orders.c.order_id == doomed)).rowcount  # cascades
    return changes


def source_table(engine: Engine, name: str) -> pa.Table:
    """The source table in primary-key order with the lake's Arrow types."""
    table = TABLES[name]
    with engine.connect() as conn:
        rows = conn.execute(select(table).order_by(table.primary_key.columns.values()[0])).all()
    schema = source_schema(table)
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    return pa.Table.from_arrays(
        [pa.array(list(c), type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )


def assert_lake_matches_source(engine: Engine, lake: Lake, replicator: LocalReplicator) -> None:
    for name in CONFIG.replication.tables:
        latest = latest_state(lake.raw_table(SCHEMA, name), primary_key(name))
        expected = source_table(engine, name)
        assert latest.to_pylist() == expected.to_pylist(), name
        assert latest.schema.equals(expected.schema, check_metadata=False), name
    outcomes = replicator.validate()
    assert {(v.state, v.pending, v.failed, v.suspended) for v in outcomes.values()} == {("Validated", 0, 0, 0)}
    assert set(outcomes) == set(CONFIG.replication.tables)


def lake_files(lake: Lake) -> dict[str, float]:
    root = local_path(lake.uri(CONFIG.lake.raw_prefix))
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*.parquet"))}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """An empty source DB with the schema: a SQLite file, or a fresh PostgreSQL database."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_db_url")
    source = make_engine(url)
    create_schema(source)
    return source


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(root=(tmp_path / "lake").as_uri(), layout=CONFIG.lake)


def make_replicator(engine: Engine, lake: Lake, tmp_path: Path, **kwargs: int) -> LocalReplicator:
    return LocalReplicator(CONFIG, engine, lake, state_dir=tmp_path / "dms", **kwargs)


def test_full_load_then_cdc_reconciles_exactly(engine: Engine, lake: Lake, tmp_path: Path) -> None:
    seed_rows(engine)
    replicator = make_replicator(engine, lake, tmp_path, max_rows_per_file=5)
    seen: list[tuple[int, int]] = []
    loaded = replicator.sync(progress=lambda done, total: seen.append((done, total)))
    assert loaded.kind == "full-load"
    assert loaded.tables == {"customers": 5, "products": 3, "orders": 6, "order_items": 12}
    assert seen[-1] == (26, 26)
    assert sorted(lake_files(lake)) == sorted(
        [f"{SCHEMA}/customers/LOAD00000001.parquet", f"{SCHEMA}/products/LOAD00000001.parquet"]
        + [f"{SCHEMA}/orders/LOAD0000000{i}.parquet" for i in (1, 2)]
        + [f"{SCHEMA}/order_items/LOAD0000000{i}.parquet" for i in (1, 2, 3)]
    )
    assert_lake_matches_source(engine, lake, replicator)
    task = replicator.status()["tasks"]["ReplicationTasks"][0]
    assert (task["Status"], task["StopReason"]) == ("stopped", "Stop Reason STOPPED_AFTER_FULL_LOAD")

    changes = mutate(engine, 0)
    assert replicator.status()["pending_changes"] == changes
    assert replicator.cdc_lag_seconds() > 0
    batch = replicator.sync()
    assert (batch.kind, batch.rows) == ("cdc", changes)
    assert (batch.inserts, batch.updates, batch.deletes) == (4, 4, changes - 8)
    names = {Path(f).name for f in batch.files}
    assert len(names) == 1 and (committed := lake_io.parse_cdc_file_name(names.pop()))
    # DatePartitionEnabled with YYYYMMDD and SLASH: <table>/<commit date>/<file>
    in_tables = [f.split(f"/{SCHEMA}/", 1)[1].split("/") for f in batch.files]
    assert {tuple(parts[1:4]) for parts in in_tables} == {tuple(committed.strftime("%Y/%m/%d").split("/"))}
    assert batch.validation == dict.fromkeys(CONFIG.replication.tables, "Validated")
    assert_lake_matches_source(engine, lake, replicator)

    status = replicator.status()
    assert status["tasks"]["ReplicationTasks"][0]["Status"] == "running"
    assert (status["cdc_lag_seconds"], status["pending_changes"]) == (0.0, 0)
    stats = {row["TableName"]: row for row in status["table_statistics"]["TableStatistics"]}
    assert (stats["orders"]["Inserts"], stats["orders"]["Updates"], stats["orders"]["Deletes"]) == (1, 1, 1)
    assert stats["order_items"]["FullLoadRows"] == 12
    assert {row["TableState"] for row in stats.values()} == {"Table completed"}


def test_cdc_files_have_the_dms_columns_and_before_images(engine: Engine, lake: Lake, tmp_path: Path) -> None:
    seed_rows(engine)
    replicator = make_replicator(engine, lake, tmp_path)
    replicator.full_load()
    mutate(engine, 0)
    (path,) = [f for f in replicator.cdc_batch().files if "/orders/" in f]
    table = pq.read_table(local_path(path))
    assert table.column_names[:3] == ["Op", "dms_commit_ts", "dms_change_seq"]
    assert table.schema.field("dms_commit_ts").type == pa.string()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", table["dms_commit_ts"][0].as_py())
    assert table.schema.field("shipping_fee").type == pa.decimal128(8, 2)
    rows = table.to_pylist()
    assert [r["Op"] for r in rows] == ["I", "U", "D"]
    assert [r["dms_change_seq"] for r in rows] == sorted(r["dms_change_seq"] for r in rows)
    assert all(len(r["dms_change_seq"]) == 20 for r in rows)
    deleted = rows[2]
    assert (deleted["order_id"], deleted["channel"], deleted["shipping_fee"]) == (3, "web", Decimal("4.90"))


def test_changes_captured_before_the_snapshot_are_not_applied_twice(engine: Engine, lake: Lake, tmp_path: Path) -> None:
    seed_rows(engine)
    with engine.begin() as conn:
        install_capture(conn, list(TABLES.values()))
    mutate(engine, 0)  # captured, and also already in the snapshot
    replicator = make_replicator(engine, lake, tmp_path)
    replicator.full_load()
    assert replicator.status()["pending_changes"] == 0
    assert replicator.cdc_batch().rows == 0
    assert all(name.startswith(f"{SCHEMA}/") and "/LOAD" in name for name in lake_files(lake))
    assert_lake_matches_source(engine, lake, replicator)


def test_small_batches_keep_file_names_increasing(engine: Engine, lake: Lake, tmp_path: Path) -> None:
    seed_rows(engine)
    replicator = make_replicator(engine, lake, tmp_path)
    replicator.full_load()
    total = mutate(engine, 0) + mutate(engine, 1)
    applied = 0
    while batch := replicator.cdc_batch(max_changes=3).rows:
        assert batch <= 3
        applied += batch
    assert applied == total
    cdc = sorted(n for n in lake_files(lake) if "LOAD" not in n and "/orders/" in n)
    assert cdc == sorted(set(cdc)) and len(cdc) >= 2
    assert_lake_matches_source(engine, lake, replicator)


def test_crash_mid_batch_resumes_without_loss_or_duplicates(
    engine: Engine, lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_rows(engine)
    make_replicator(engine, lake, tmp_path).full_load()
    first_changes = mutate(engine, 0)

    real_write = lake_io.LakeFS.write_atomically
    written: list[str] = []

    def crash_after_first_file(self: lake_io.LakeFS, staging: str, final: str, *args: object) -> int:
        if written:
            raise OSError("simulated crash after the first table's file")
        written.append(final)
        return real_write(self, staging, final, *args)

    monkeypatch.setattr(lake_io.LakeFS, "write_atomically", crash_after_first_file)
    with pytest.raises(OSError, match="simulated crash"):
        make_replicator(engine, lake, tmp_path).cdc_batch()
    monkeypatch.undo()
    crashed = make_replicator(engine, lake, tmp_path).status()
    task = crashed["tasks"]["ReplicationTasks"][0]
    assert (task["Status"], task["StopReason"]) == ("failed", "Stop Reason FATAL_ERROR")
    assert "simulated crash" in task["LastFailureMessage"]
    assert len(written) == 1 and Path(local_path(written[0])).exists()

    second_changes = mutate(engine, 1)  # arrives after the crash; must not join the redone batch
    replicator = make_replicator(engine, lake, tmp_path)
    redone = replicator.sync()
    assert redone.resumed and redone.rows == first_changes
    assert written[0] in redone.files
    assert replicator.sync().rows == second_changes
    assert_lake_matches_source(engine, lake, replicator)

    seqs = []
    for name in lake_files(lake):
        if "LOAD" not in name:
            seqs += pq.read_table(local_path(lake.uri(CONFIG.lake.raw_prefix, name)))["dms_change_seq"].to_pylist()
    assert len(seqs) == len(set(seqs)) == first_changes + second_changes
    assert replicator.status()["tasks"]["ReplicationTasks"][0]["Status"] == "running"


def test_sync_with_nothing_pending_writes_nothing(engine: Engine, lake: Lake, tmp_path: Path) -> None:
    seed_rows(engine)
    replicator = make_replicator(engine, lake, tmp_path)
    replicator.sync()
    mutate(engine, 0)
    replicator.sync()
    before = lake_files(lake)
    checkpoint = replicator.status()["checkpoint"]
    again = replicator.sync()
    assert (again.kind, again.rows, again.files) == ("cdc", 0, [])
    assert lake_files(lake) == before
    assert replicator.status()["checkpoint"] == checkpoint
    staging = local_path(lake.staging())
    assert not staging.exists() or not list(staging.rglob("*.parquet"))


def test_applied_changes_are_purged_from_the_change_log(engine: Engine, lake: Lake, tmp_path: Path) -> None:
    seed_rows(engine)
    replicator = make_replicator(engine, lake, tmp_path)
    replicator.full_load()
    mutate(engine, 0)
    replicator.cdc_batch()
    mutate(engine, 1)
    replicator.cdc_batch()
    assert replicator.cdc_batch().rows == 0  # purges everything below the checkpoint
    with engine.connect() as conn:
        kept = conn.execute(select(func.count()).select_from(text(CHANGE_LOG))).scalar_one()
    assert kept == 1  # the checkpoint row stays so sequence numbers never restart
    changes = mutate(engine, 2)
    assert replicator.cdc_batch().rows == changes
    assert_lake_matches_source(engine, lake, replicator)


def test_reload_replaces_old_files_and_flags_tables(engine: Engine, lake: Lake, tmp_path: Path) -> None:
    seed_rows(engine)
    replicator = make_replicator(engine, lake, tmp_path)
    replicator.full_load()
    mutate(engine, 0)
    replicator.cdc_batch()
    replicator.full_load()
    assert all("/LOAD" in name for name in lake_files(lake))
    stats = replicator.describe_table_statistics()["TableStatistics"]
    assert {row["FullLoadReloaded"] for row in stats} == {True}
    assert_lake_matches_source(engine, lake, replicator)


def test_recreated_source_fails_cdc_with_the_fix(engine: Engine, lake: Lake, tmp_path: Path) -> None:
    seed_rows(engine)
    replicator = make_replicator(engine, lake, tmp_path)
    replicator.full_load()
    reset_schema(engine)  # drops the tables and with them their capture triggers
    with pytest.raises(RuntimeError, match=r"change capture of .* is gone .* `mlops replicate --reload"):
        replicator.cdc_batch()
    assert replicator.status()["tasks"]["ReplicationTasks"][0]["Status"] == "failed"


def test_cdc_before_full_load_and_bad_batch_size_name_the_fix(engine: Engine, lake: Lake, tmp_path: Path) -> None:
    replicator = make_replicator(engine, lake, tmp_path)
    with pytest.raises(RuntimeError, match=r"no completed full load; run it first: `mlops replicate`"):
        replicator.cdc_batch()
    with pytest.raises(ValueError, match="max_changes must be at least 1, got 0"):
        replicator.cdc_batch(max_changes=0)


@pytest.mark.postgres
def test_postgres_late_commit_with_an_earlier_capture_id_is_not_skipped(
    postgres_db_url: str, lake: Lake, tmp_path: Path
) -> None:
    engine = make_engine(postgres_db_url)
    create_schema(engine)
    seed_rows(engine)
    replicator = make_replicator(engine, lake, tmp_path)
    replicator.full_load()
    with engine.connect() as slow:
        slow.execute(update(orders).where(orders.c.order_id == 1).values(status="slow"))  # capture id taken first
        changes = mutate(engine, 0)  # commits later capture ids while the slow transaction is open
        assert replicator.cdc_batch().rows == changes
        slow.commit()
    late = replicator.cdc_batch()
    assert (late.rows, late.updates) == (1, 1)
    assert_lake_matches_source(engine, lake, replicator)


def test_full_load_of_a_source_without_tables_names_the_fix(sqlite_url: str, lake: Lake, tmp_path: Path) -> None:
    replicator = make_replicator(make_engine(sqlite_url), lake, tmp_path)
    with pytest.raises(RuntimeError, match=r"lacks tables \['customers', 'products', 'orders', 'order_items'\]"):
        replicator.sync()
    task = replicator.status()["tasks"]["ReplicationTasks"][0]
    assert (task["Status"], task["StopReason"]) == ("failed", "Stop Reason FATAL_ERROR")
    assert "lacks tables" in task["LastFailureMessage"]
