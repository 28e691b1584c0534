"""The local Glue Data Catalog (DuckDB views) built from the same TableInputs the aws target sends."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from test_etl_fixtures import build_curated_lake, write_fixture

from mlops.aws.glue_requests import catalog_table_inputs, stack_names
from mlops.catalog.duckdb_catalog import apply_table_inputs, table_row_counts
from mlops.config import load_config
from mlops.lake import Lake
from mlops.schema.curated import CURATED_COLUMNS


@pytest.fixture
def lake_root(tmp_path) -> Path:
    return tmp_path / "lake"


def test_catalog_registers_raw_latest_state_and_curated_snapshots(lake_root, tmp_path):
    config = load_config(environ={})
    lake = Lake(root=lake_root.as_uri(), layout=config.lake)
    raw = write_fixture(lake_root / "raw" / "dms" / "shop")
    first = build_curated_lake(lake_root, raw, "run1")
    database = stack_names(config).database
    db = tmp_path / "catalog.duckdb"

    result = apply_table_inputs(db, database, catalog_table_inputs(lake, config, first))
    assert result["skipped"] == []
    assert {"raw_orders", "orders", "customers", "products", "order_items", "features", "features_previous"} <= set(
        result["views"]
    )
    counts = table_row_counts(db, database)
    assert counts["features"] == counts["features_previous"] == first["rows"] == 7
    assert counts["orders"] == 9, "10 keys seen, order 7 deleted"
    assert counts["customers"] == 2, "customer 3 deleted"
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute(f"SET schema = '{database}'")
        assert con.execute("SELECT status FROM orders WHERE order_id = 2").fetchone() == ("returned",)
        assert [r[0] for r in con.execute("DESCRIBE features").fetchall()] == list(CURATED_COLUMNS)
        assert con.execute("SELECT count(*) FROM raw_orders WHERE Op = 'D'").fetchone() == (1,)

    second = build_curated_lake(lake_root, raw, "run2")
    apply_table_inputs(db, database, catalog_table_inputs(lake, config, second))
    with duckdb.connect(str(db), read_only=True) as con:
        stored = dict(con.execute("SELECT name, location FROM _catalog.tables").fetchall())
    assert stored["features"].endswith("/snapshots/run2/")
    assert stored["features_previous"].endswith("/snapshots/run1/")


def test_missing_table_folders_are_skipped_not_fatal(lake_root, tmp_path):
    config = load_config(environ={})
    lake = Lake(root=lake_root.as_uri(), layout=config.lake)
    result = apply_table_inputs(tmp_path / "c.duckdb", "mlops_dev", catalog_table_inputs(lake, config, None))
    assert result["registered"] == [] and len(result["skipped"]) == 4
