"""The golden DMS S3-target files (``tests/fixtures/dms``, written from DMS's documentation by
``make_golden.py``) against what this project writes and reads.

The local replicator must write files of the same schema (a STRING commit timestamp in DMS's
format included); the catalog must declare the types those files hold; the reconcile reader,
the pandas ETL reader and the DuckDB catalog's latest-state view must all read the same latest
state from them.
"""

from __future__ import annotations

import importlib.util
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import delete, insert, update

from mlops.aws.glue_requests import DMS_COLUMN_TYPES, PARQUET_IO, PARQUET_SERDE, RAW_COLUMNS
from mlops.catalog.duckdb_catalog import apply_table_inputs
from mlops.config import PipelineConfig
from mlops.etl.pandas_features import read_latest
from mlops.lake import Lake, local_path
from mlops.replication.reconcile import latest_state
from mlops.replication.replicator import LocalReplicator
from mlops.source.db import create_schema, make_engine
from mlops.source.schema import products

CONFIG = PipelineConfig()
FIXTURES = Path(__file__).parents[1] / "fixtures" / "dms"
DMS_TEXT_TS = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
HIVE_TYPES = {pa.string(): "string", pa.int64(): "bigint", pa.bool_(): "boolean", pa.timestamp("us"): "timestamp"}


def golden() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_golden", FIXTURES / "make_golden.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_files_are_what_the_generator_writes() -> None:
    g = golden()
    for path, rows in ((g.FULL_LOAD, g.LOAD_ROWS), (g.CDC, g.CDC_ROWS)):
        assert pq.read_table(path).equals(g.rows_table(rows)), f"{path} is stale: run {FIXTURES / 'make_golden.py'}"
    assert pq.ParquetFile(g.FULL_LOAD).metadata.format_version == "1.0"


def test_the_local_replicator_writes_the_golden_schema(sqlite_url: str, tmp_path: Path) -> None:
    g = golden()
    engine = make_engine(sqlite_url)
    create_schema(engine)
    t0 = datetime(2026, 1, 1)
    with engine.begin() as conn:
        rows = [dict(product_id=i, sku=f"S{i}", category="home", unit_price=Decimal("1.00"), weight_kg=None,
                     is_fragile=False, updated_at=t0) for i in (1, 2)]  # fmt: skip
        conn.execute(insert(products), rows)
    lake = Lake(root=(tmp_path / "lake").as_uri(), layout=CONFIG.lake)
    replicator = LocalReplicator(CONFIG, engine, lake, state_dir=tmp_path / "dms")
    replicator.full_load()
    with engine.begin() as conn:
        conn.execute(update(products).where(products.c.product_id == 1).values(unit_price=Decimal("2.00")))
        conn.execute(delete(products).where(products.c.product_id == 2))
    replicator.cdc_batch()
    folder = local_path(lake.raw_table(CONFIG.source.schema_name, "products"))
    files = sorted(folder.rglob("*.parquet"))
    assert [f.name for f in files][-1] == "LOAD00000001.parquet" and len(files) == 2
    for path in files:
        table = pq.read_table(path)
        # names, order and types (DMS documents no nullability, so it is not compared)
        assert [(f.name, f.type) for f in table.schema] == [(f.name, f.type) for f in g.SCHEMA], path.name
        assert all(DMS_TEXT_TS.fullmatch(v) for v in table["dms_commit_ts"].to_pylist())
    assert set(pq.read_table(files[0])["Op"].to_pylist()) == {"U", "D"}


def test_the_catalog_declares_the_types_dms_writes() -> None:
    g = golden()
    declared = DMS_COLUMN_TYPES + RAW_COLUMNS["products"]
    written = [(f.name, HIVE_TYPES.get(f.type) or f"decimal({f.type.precision},{f.type.scale})") for f in g.SCHEMA]
    assert declared == written


def test_reconcile_and_the_pandas_etl_read_the_golden_latest_state() -> None:
    g = golden()
    state = latest_state((FIXTURES / "shop" / "products").as_uri(), "product_id")
    assert dict(zip(state["product_id"].to_pylist(), state["unit_price"].to_pylist(), strict=True)) == g.LATEST
    frame = read_latest(FIXTURES / "shop", "products", "product_id").sort_values("product_id")
    assert dict(zip(frame["product_id"], frame["unit_price"], strict=True)) == g.LATEST


def test_the_duckdb_catalog_reads_the_golden_files(tmp_path: Path) -> None:
    g = golden()
    location = (FIXTURES / "shop" / "products").as_uri() + "/"
    columns = [{"Name": n, "Type": t} for n, t in DMS_COLUMN_TYPES + RAW_COLUMNS["products"]]
    table_input = {"Name": "raw_products", "TableType": "EXTERNAL_TABLE", "Parameters": {"primary_key": "product_id"},
                   "StorageDescriptor": {"Columns": columns, "Location": location, **PARQUET_IO,
                                         "SerdeInfo": PARQUET_SERDE}}  # fmt: skip
    db = tmp_path / "catalog.duckdb"
    assert apply_table_inputs(db, "lake", [table_input])["registered"] == ["raw_products"]
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT product_id, unit_price FROM lake.products ORDER BY product_id").fetchall()
        kinds = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'raw_products'").fetchall())  # fmt: skip
    assert dict(rows) == g.LATEST
    assert kinds["dms_commit_ts"] == "VARCHAR"
