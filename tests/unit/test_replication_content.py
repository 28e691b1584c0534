"""Lake content checks at ingest: NULL rates, duplicate keys, schema and unreadable objects, in Athena SQL.

Issue 13, rows "60 % nulls in a lake column" (ingest passed; caught only at features) and
"truncated Parquet in the lake" (``magic bytes not found`` with no file name). The checks are
the same StartQueryExecution requests on both targets; here the local Athena stand-in (DuckDB)
runs them over a real replicated lake, and the Athena-shaped answers are evaluated directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, text

from mlops.config import PipelineConfig
from mlops.eda.queries import to_duckdb
from mlops.lake import local_path
from mlops.local_stack import local_replicator, source_engine
from mlops.replication import content
from mlops.replication.checks import CheckResult
from mlops.replication.content_local import run_locally
from mlops.replication.replicator import LocalReplicator
from mlops.source.generator import generate
from mlops.source.schema import TABLES

CONFIG = PipelineConfig()
SCHEMA = CONFIG.source.schema_name


@pytest.fixture
def replicated(mlops_home: Path) -> tuple[Engine, LocalReplicator]:
    engine = source_engine(CONFIG)
    generate(engine, orders=400, seed=5)
    replicator = local_replicator(CONFIG)
    replicator.sync()
    return engine, replicator


def failures(results: list[CheckResult]) -> dict[tuple[str, str | None], CheckResult]:
    return {(r.name, r.table): r for r in results if not r.passed}


def table_dir(replicator: LocalReplicator, table: str) -> Path:
    return local_path(replicator.lake.raw_table(SCHEMA, table))


def test_a_healthy_lake_passes_every_content_check(replicated: tuple[Engine, LocalReplicator]) -> None:
    _, replicator = replicated
    results = run_locally(replicator.lake, CONFIG)
    assert failures(results) == {}
    names = {(r.name, r.table) for r in results}
    assert {("schema", t) for t in TABLES} | {("duplicate_keys", t) for t in TABLES} <= names
    assert ("null_rate", "customers") in names
    (birth_year,) = [r for r in results if r.metric == "NullRate[birth_year]"]
    assert 0.1 < birth_year.value < 0.4, "the generator leaves about a fifth of birth years empty"


def test_sixty_percent_nulls_fail_ingest_naming_table_and_column(replicated: tuple[Engine, LocalReplicator]) -> None:
    engine, replicator = replicated
    with engine.begin() as conn:
        total = conn.execute(text("SELECT count(*) FROM customers")).scalar_one()
        conn.execute(text(f"UPDATE customers SET birth_year = NULL WHERE customer_id <= {int(total * 0.6)}"))
    assert set(replicator.sync().validation.values()) == {"Validated"}, "DMS validation cannot see this"
    failed = failures(run_locally(replicator.lake, CONFIG))
    assert set(failed) == {("null_rate", "customers")}
    message = failed["null_rate", "customers"].message
    assert "table customers column birth_year: 6" in message and "% NULL in the lake" in message
    assert "more than the 40% allowed" in message


def test_a_null_in_a_not_null_column_fails(replicated: tuple[Engine, LocalReplicator]) -> None:
    engine, replicator = replicated
    with engine.begin() as conn:
        conn.execute(text("UPDATE orders SET status = 'returned' WHERE order_id = 1"))
    (cdc_file,) = [Path(local_path(f)) for f in replicator.sync().files if "/orders/" in f]
    tampered = pq.read_table(cdc_file)
    index = tampered.schema.get_field_index("status")
    pq.write_table(tampered.set_column(index, "status", pa.nulls(tampered.num_rows, pa.string())), cdc_file)
    failed = failures(run_locally(replicator.lake, CONFIG))
    assert "table orders column status: 1 NULL value(s) in the lake, but the column is NOT NULL" in (
        failed["null_rate", "orders"].message
    )


def test_a_file_written_twice_fails_as_duplicate_keys(replicated: tuple[Engine, LocalReplicator]) -> None:
    _, replicator = replicated
    folder = table_dir(replicator, "orders")
    shutil.copy(folder / "LOAD00000001.parquet", folder / "LOAD00000002.parquet")
    failed = failures(run_locally(replicator.lake, CONFIG))
    assert set(failed) == {("duplicate_keys", "orders")}
    assert "pair(s) occur more than once" in failed["duplicate_keys", "orders"].message
    assert "`mlops replicate --reload orders`" in failed["duplicate_keys", "orders"].message


def test_a_truncated_object_is_reported_with_its_key(replicated: tuple[Engine, LocalReplicator]) -> None:
    _, replicator = replicated
    damaged = table_dir(replicator, "products") / "LOAD00000001.parquet"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    failed = failures(run_locally(replicator.lake, CONFIG))
    key = f"raw/dms/{SCHEMA}/products/LOAD00000001.parquet"
    assert f"lake object {key} is unreadable" in failed["content_query", "products"].message
    outcome = replicator.validate()["products"]
    assert outcome.state == "Error" and "products/LOAD00000001.parquet is unreadable" in outcome.details


def test_a_file_with_a_retyped_column_fails_the_schema_check(replicated: tuple[Engine, LocalReplicator]) -> None:
    engine, replicator = replicated
    with engine.begin() as conn:
        conn.execute(text("UPDATE orders SET status = 'returned' WHERE order_id = 2"))
    (cdc_file,) = [Path(local_path(f)) for f in replicator.sync().files if "/orders/" in f]
    written = pq.read_table(cdc_file)
    index = written.schema.get_field_index("shipping_fee")
    as_text = pc.cast(written["shipping_fee"], pa.string())
    pq.write_table(written.set_column(index, pa.field("shipping_fee", pa.string()), as_text), cdc_file)
    failed = failures(run_locally(replicator.lake, CONFIG))
    assert "table raw_orders: shipping_fee is string, not decimal(8,2)" in failed["schema", "orders"].message


def test_nullable_columns_are_the_schemas() -> None:
    nullable = {name: tuple(c.name for c in t.columns if c.nullable) for name, t in TABLES.items()}
    assert content.NULLABLE_COLUMNS == nullable


def test_every_query_is_one_trino_statement_duckdb_can_run() -> None:
    requests = content.content_requests(local_replicator_lake(), CONFIG)
    assert set(requests) == set(TABLES)
    requests["schema"] = content.schema_request(local_replicator_lake(), CONFIG)
    for request in requests.values():
        assert to_duckdb(request["QueryString"])
        assert request["QueryExecutionContext"]["Database"] and request["WorkGroup"]


def local_replicator_lake():  # type: ignore[no-untyped-def]
    from mlops.lake import Lake

    return Lake(root="s3://mlops-lake-dev", layout=CONFIG.lake)


def test_athena_answers_are_read_the_same_way() -> None:
    """Athena spells types its own way (varchar, timestamp(3)); its failures carry the object's s3 URI."""
    athena_schema = [
        {"table_name": "raw_products", "column_name": c, "data_type": t}
        for c, t in [("op", "varchar"), ("dms_commit_ts", "varchar"), ("dms_change_seq", "varchar"),
                     ("product_id", "bigint"), ("sku", "varchar"), ("category", "varchar"),
                     ("unit_price", "decimal(10,2)"), ("weight_kg", "decimal(8,3)"), ("is_fragile", "boolean"),
                     ("updated_at", "timestamp(3)")]
    ]  # fmt: skip
    (schema,) = content.evaluate_schema(athena_schema, ["products"])
    assert schema.passed, schema.message
    reason = (
        "HIVE_CANNOT_OPEN_SPLIT: Error opening Hive split s3://mlops-lake-dev/raw/dms/shop/orders/"
        "LOAD00000001.parquet (offset=0, length=1234): not a Parquet file"
    )
    failed = content.failed_query("orders", reason, "s3://mlops-lake-dev")
    assert "lake object raw/dms/shop/orders/LOAD00000001.parquet is unreadable" in failed.message
    row = {"row_count": "10", "nulls__discount_code": "9", "duplicate_keys": "0", "null_keys": "0"}
    results = {r.metric: r for r in content.evaluate_content("orders", row, CONFIG)}
    assert results["NullRate[discount_code]"].passed and results["NullRate[discount_code]"].value == 0.9
    assert results["NullRate[status]"].passed and results["DuplicateKeys"].passed
