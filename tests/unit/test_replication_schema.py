"""Schema evolution like DMS, table reloads, and (re)loads that are atomic across tables.

Issue 13, rows "a column added to orders" (dropped silently), "a renamed or dropped column"
(replication wedged with "run full_load()", which no command offered) and "a failed full load"
(the lake left mixed: customers and products reloaded, orders on the old snapshot):

- an added column flows into the lake (later files carry it, earlier ones read as NULL) and into
  the catalog, counted as a DDL;
- a renamed, dropped or retyped column stops CDC before anything is applied, naming the change
  and the fix (`mlops replicate --reload TABLE`); the reload then un-wedges it;
- a (re)load that fails midway leaves every table's previous snapshot whole; one that crashes
  while swapping its files in is rolled forward by the next call.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from mlops.config import PipelineConfig
from mlops.lake import Lake, local_path
from mlops.replication import loading
from mlops.replication.reconcile import latest_state
from mlops.replication.replicator import LocalReplicator
from mlops.replication.schema_changes import SchemaChangeError, diff_columns
from mlops.replication.validation import validate_table
from mlops.source.db import create_schema, make_engine, reset_schema, table_counts
from tests.unit.test_replication_cdc import assert_lake_matches_source, lake_files, mutate, seed_rows

CONFIG = PipelineConfig()
SCHEMA = CONFIG.source.schema_name


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_db_url")
    source = make_engine(url)
    create_schema(source)
    seed_rows(source)
    return source


@pytest.fixture
def replicator(engine: Engine, tmp_path: Path) -> LocalReplicator:
    lake = Lake(root=(tmp_path / "lake").as_uri(), layout=CONFIG.lake)
    replicator = LocalReplicator(CONFIG, engine, lake, state_dir=tmp_path / "dms", max_rows_per_file=4)
    replicator.sync()
    return replicator


def execute(engine: Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def table_stats(replicator: LocalReplicator) -> dict[str, dict]:
    return {r["TableName"]: r for r in replicator.status()["table_statistics"]["TableStatistics"]}


def test_an_added_column_flows_into_the_lake_and_the_catalog(
    engine: Engine, replicator: LocalReplicator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    execute(
        engine,
        "ALTER TABLE orders ADD COLUMN gift_note VARCHAR(40)",
        "UPDATE orders SET gift_note = 'happy birthday', status = 'shipped' WHERE order_id = 2",
        "UPDATE orders SET status = 'delivered' WHERE order_id = 3",
    )
    batch = replicator.sync()
    assert batch.rows == 2 and batch.validation["orders"] == "Validated"
    rows = latest_state(replicator.lake.raw_table(SCHEMA, "orders"), "order_id").to_pylist()
    latest = {r["order_id"]: r for r in rows}
    assert latest[2]["gift_note"] == "happy birthday"
    assert latest[1]["gift_note"] is None, "rows from files written before the column existed read as NULL"
    stats = table_stats(replicator)
    assert (stats["orders"]["Ddls"], stats["orders"]["AppliedDdls"], stats["customers"]["Ddls"]) == (1, 1, 0)
    assert replicator.status()["tasks"]["ReplicationTasks"][0]["Status"] == "running"

    # the local Glue catalog (DuckDB views over the lake) exposes the new column
    from mlops.catalog.duckdb_catalog import apply_table_inputs
    from mlops.replication.content_local import run_locally

    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    results = run_locally(replicator.lake, CONFIG)
    (schema,) = [r for r in results if r.name == "schema" and r.table == "orders"]
    assert schema.passed and "added ones: gift_note" in schema.message
    assert apply_table_inputs  # the catalog module the content check registers the raw tables with


@pytest.mark.parametrize(
    ("change", "described"),
    [
        ("ALTER TABLE orders RENAME COLUMN channel TO sold_via", "orders: column channel was renamed to sold_via"),
        ("ALTER TABLE customers RENAME COLUMN country TO country_code", "customers: column country was renamed to"),
    ],
)
def test_a_renamed_column_stops_cdc_naming_the_change_and_the_fix(
    engine: Engine, replicator: LocalReplicator, change: str, described: str
) -> None:
    mutate(engine, 0)  # changes captured before the rename wait in the change log
    checkpoint = replicator.status()["checkpoint"]
    before = lake_files(replicator.lake)
    execute(engine, change)
    with pytest.raises(SchemaChangeError) as error:
        replicator.sync()
    table = described.split(":")[0]
    assert described in str(error.value)
    assert f"`mlops replicate --reload {table}`" in str(error.value) and "reload_tables=" in str(error.value)
    assert (replicator.status()["checkpoint"], lake_files(replicator.lake)) == (checkpoint, before)
    task = replicator.status()["tasks"]["ReplicationTasks"][0]
    assert task["Status"] == "failed" and described in task["LastFailureMessage"]
    with pytest.raises(SchemaChangeError):
        replicator.sync()  # still stopped: the fix is the reload, not a retry

    reloaded = replicator.reload([table])
    assert reloaded.kind == "reload" and set(reloaded.tables) == {table}
    after = replicator.sync()
    assert after.kind == "cdc" and set(after.validation.values()) == {"Validated"}
    assert_lake_matches_source_reflected(engine, replicator)


@pytest.mark.postgres
def test_dropped_and_retyped_columns_stop_cdc_on_postgres(postgres_db_url: str, tmp_path: Path) -> None:
    engine = make_engine(postgres_db_url)
    create_schema(engine)
    seed_rows(engine)
    replicator = LocalReplicator(CONFIG, engine, Lake(root=(tmp_path / "lake").as_uri(), layout=CONFIG.lake),
                                 state_dir=tmp_path / "dms")  # fmt: skip
    replicator.sync()
    execute(engine, "ALTER TABLE orders DROP COLUMN discount_code",
            "ALTER TABLE products ALTER COLUMN unit_price TYPE NUMERIC(12, 2)")  # fmt: skip
    with pytest.raises(SchemaChangeError) as error:
        replicator.sync()
    message = str(error.value)
    assert "orders: column discount_code was dropped" in message
    assert "products: column unit_price was retyped from decimal128(10, 2) to decimal128(12, 2)" in message
    assert "`mlops replicate --reload products orders`" in message
    replicator.reload(["orders", "products"])
    execute(engine, "UPDATE products SET unit_price = 1234567.89 WHERE product_id = 2",
            "UPDATE orders SET status = 'shipped' WHERE order_id = 1")  # fmt: skip
    after = replicator.sync()
    assert after.rows == 2 and set(after.validation.values()) == {"Validated"}


def test_a_table_rebuilt_on_sqlite_names_the_lost_capture_and_the_change(sqlite_url: str, tmp_path: Path) -> None:
    """SQLite drops columns by rebuilding the table, which takes its capture triggers with it."""
    engine = make_engine(sqlite_url)
    create_schema(engine)
    seed_rows(engine)
    replicator = LocalReplicator(CONFIG, engine, Lake(root=(tmp_path / "lake").as_uri(), layout=CONFIG.lake),
                                 state_dir=tmp_path / "dms")  # fmt: skip
    replicator.sync()
    execute(
        engine,
        "PRAGMA foreign_keys=OFF",
        "CREATE TABLE orders_new (order_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, order_ts DATETIME, "
        "channel VARCHAR(16), payment_method VARCHAR(24), shipping_method VARCHAR(16), ship_country VARCHAR(2), "
        "promised_days SMALLINT, shipping_fee NUMERIC(8, 2), status VARCHAR(16), updated_at DATETIME)",
        "INSERT INTO orders_new SELECT order_id, customer_id, order_ts, channel, payment_method, shipping_method, "
        "ship_country, promised_days, shipping_fee, status, updated_at FROM orders",
        "DROP TABLE orders",
        "ALTER TABLE orders_new RENAME TO orders",
    )
    with pytest.raises(RuntimeError) as error:
        replicator.sync()
    message = str(error.value)
    assert "change capture of ['orders'] is gone" in message and "orders: column discount_code was dropped" in message
    assert "`mlops replicate --reload orders`" in message


def test_generate_on_a_replicated_source_names_the_reload_and_the_reload_fixes_it(
    engine: Engine, replicator: LocalReplicator
) -> None:
    """Issue 13: "`mlops generate` on an already-replicated home: same wedge"."""
    reset_schema(engine)
    seed_rows(engine)
    with pytest.raises(RuntimeError, match=r"change capture of .* is gone .*`mlops replicate --reload`"):
        replicator.sync()
    loaded = replicator.reload()
    assert loaded.kind == "full-load"
    assert set(replicator.sync().validation.values()) == {"Validated"}
    assert_lake_matches_source(engine, replicator.lake, replicator)


def test_reloading_one_table_leaves_cdc_of_the_others_exact(engine: Engine, replicator: LocalReplicator) -> None:
    """Changes captured before the reload's snapshot are in it (not applied twice); the others' still flow."""
    changes = mutate(engine, 0)
    reloaded = replicator.reload(["order_items"])
    assert reloaded.tables == {"order_items": table_counts(engine)["order_items"]}
    batch = replicator.sync()
    order_items_changes = batch.tables.get("order_items", 0)
    assert order_items_changes == 0, "order_items' changes up to the reload are in its new snapshot"
    assert batch.changes == changes and batch.rows < changes
    assert set(batch.validation.values()) == {"Validated"}
    mutate(engine, 1)
    assert set(replicator.sync().validation.values()) == {"Validated"}
    assert_lake_matches_source(engine, replicator.lake, replicator)
    assert table_stats(replicator)["order_items"]["FullLoadReloaded"] is True


def test_reload_arguments_are_checked_before_anything_changes(replicator: LocalReplicator) -> None:
    before = lake_files(replicator.lake), replicator.status()["tasks"]
    with pytest.raises(ValueError, match=r"cannot reload \['order'\]: the replicated tables are customers, products"):
        replicator.reload(["order"])
    with pytest.raises(ValueError, match="'\\*' alone for every table"):
        replicator.reload(["*", "orders"])
    assert (lake_files(replicator.lake), replicator.status()["tasks"]) == before


def test_a_failed_full_load_leaves_the_previous_snapshot_whole(
    engine: Engine, replicator: LocalReplicator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: customers and products reloaded, orders still on the old snapshot."""
    mutate(engine, 0)
    replicator.sync()
    before = lake_files(replicator.lake)
    real = loading.full_load_batches

    def fail_on_orders(conn, table, *args, **kwargs):  # type: ignore[no-untyped-def]
        if table.name == "orders":
            raise OSError("disk full while writing orders")
        return real(conn, table, *args, **kwargs)

    monkeypatch.setattr(loading, "full_load_batches", fail_on_orders)
    with pytest.raises(OSError, match="disk full"):
        replicator.reload()
    assert lake_files(replicator.lake) == before, "no table of the lake changed"
    staging = local_path(replicator.lake.staging())
    assert not list(staging.rglob("*.parquet")), "the failed load's staged files are gone"
    task = replicator.status()["tasks"]["ReplicationTasks"][0]
    assert task["Status"] == "failed"
    assert "nothing in the lake changed" in task["LastFailureMessage"]
    assert "`mlops replicate --reload`" in task["LastFailureMessage"]
    monkeypatch.undo()
    replicator.reload()
    assert set(replicator.sync().validation.values()) == {"Validated"}
    assert_lake_matches_source(engine, replicator.lake, replicator)


def test_a_crash_while_swapping_a_reload_in_is_rolled_forward(
    engine: Engine, replicator: LocalReplicator, monkeypatch: pytest.MonkeyPatch
) -> None:
    mutate(engine, 0)
    replicator.sync()
    real = loading.publish_staged
    calls = []

    def crash_on_second_table(lake_fs, staged, stale):  # type: ignore[no-untyped-def]
        calls.append(staged)
        if len(calls) == 2:
            raise OSError("killed while swapping")
        return real(lake_fs, staged, stale)

    monkeypatch.setattr(loading, "publish_staged", crash_on_second_table)
    with pytest.raises(OSError, match="killed while swapping"):
        replicator.reload()
    monkeypatch.undo()
    mutate(engine, 1)
    batch = replicator.sync()  # finishes the saved swap first, then goes on with CDC
    assert batch.kind == "cdc" and set(batch.validation.values()) == {"Validated"}
    assert all("/LOAD" in name or "/20" in name for name in lake_files(replicator.lake))
    assert_lake_matches_source(engine, replicator.lake, replicator)


def test_diff_columns_names_each_kind_of_change() -> None:
    before = [("id", "int64"), ("a", "string"), ("b", "decimal128(8, 2)"), ("c", "bool")]
    after = [("id", "int64"), ("a2", "string"), ("b", "decimal128(9, 2)"), ("d", "int64")]
    described = [c.describe() for c in diff_columns("t", before, after)]
    assert described == [
        "t: column a was renamed to a2",
        "t: column b was retyped from decimal128(8, 2) to decimal128(9, 2)",
        "t: column c was dropped",
        "t: column d was added (int64) at position 4, not at the end",
    ]
    appended = diff_columns("t", before, [*before, ("e", "string")])
    assert [c.describe() for c in appended] == ["t: column e was added (string)"]


def assert_lake_matches_source_reflected(engine: Engine, replicator: LocalReplicator) -> None:
    """Validation against the source as it is now (after a rename), every table."""
    from mlops.replication.schema_changes import reflect_table
    from mlops.replication.snapshot import snapshot

    with snapshot(engine) as (conn, _):
        for name in CONFIG.replication.tables:
            table = reflect_table(conn, name)
            outcome = validate_table(conn, table, replicator.lake.raw_table(SCHEMA, name), checkpoint=10**9,
                                     partition_size=1000, failure_max_count=10)  # fmt: skip
            assert outcome.state == "Validated", (name, outcome.details)
