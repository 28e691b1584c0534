"""The feature groups' offline stores registered in the local catalog read their hourly partitions."""

from __future__ import annotations

import duckdb
import pandas as pd

from mlops.aws.glue_requests import offline_store_table_inputs
from mlops.catalog.duckdb_catalog import apply_table_inputs
from mlops.config import load_config
from mlops.schema.feature_groups import PRODUCT_HISTORY


def test_offline_store_table_reads_every_hour_partition(tmp_path):
    data = tmp_path / "000000000000/sagemaker/local/offline-store/mlops-dev-product-history-1700000000/data"
    for hour, product in (("03", 1), ("04", 2)):
        folder = data / f"year=2026/month=01/day=02/hour={hour}"
        folder.mkdir(parents=True)
        row = {"product_id": product, "event_time": 1.0, "terminal_orders": 1, "returned_orders": 0,
               "cancelled_orders": 0, "category": "books", "weight_kg": 0.5, "is_fragile": 0,
               "write_time": pd.Timestamp("2026-01-02"), "api_invocation_time": pd.Timestamp("2026-01-02"),
               "is_deleted": False}  # fmt: skip
        pd.DataFrame([row]).to_parquet(folder / "part-0.parquet", index=False)
    [table] = offline_store_table_inputs(load_config(environ={}), {PRODUCT_HISTORY.name: data.as_uri()})
    assert table["Name"] == "mlops_dev_product_history"
    db = tmp_path / "catalog.duckdb"
    assert apply_table_inputs(db, "mlops_dev", [table])["registered"] == ["mlops_dev_product_history"]
    with duckdb.connect(str(db)) as con:
        rows = con.execute("SELECT product_id, hour FROM mlops_dev.mlops_dev_product_history ORDER BY 1").fetchall()
    assert rows == [(1, "03"), (2, "04")] or rows == [(1, 3), (2, 4)]
