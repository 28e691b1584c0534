"""Raw orders from the raw lake, and the online store as it was at an order's time (shared by the raw-order tests)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from mlops.etl import pandas_features
from mlops.schema.curated import RAW_TABLES
from mlops.schema.feature_groups import FEATURE_GROUPS, put_record_request
from mlops.schema.online_store import OnlineStore

PREFIX = "mlops-test"


def _plain(value: Any) -> Any:
    """JSON-ready: Decimal/numpy -> float/int, NaN/NaT -> None."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if hasattr(value, "item"):
        value = value.item()
    return float(value) if type(value).__name__ == "Decimal" else value


def load(raw_dir: Path) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, dict[str, pd.DataFrame]]:
    """Latest raw tables, the curated frame (pandas job) and the feature groups' records."""
    tables = {table: pandas_features.read_latest(raw_dir, table, key) for table, key in RAW_TABLES.items()}
    return tables, pandas_features.build_features(tables), pandas_features.entity_records(tables)


def raw_order(tables: dict[str, pd.DataFrame], order_id: int) -> dict[str, Any]:
    """What a checkout knows of one order (source schema fields), JSON-ready."""
    order = tables["orders"].set_index("order_id").loc[order_id]
    lines = tables["order_items"][tables["order_items"]["order_id"] == order_id].sort_values("order_item_id")
    fields = ("customer_id", "channel", "payment_method", "shipping_method", "ship_country", "promised_days",
              "shipping_fee", "discount_code")  # fmt: skip
    return {
        **{f: _plain(order[f]) for f in fields},
        "order_ts": pd.Timestamp(order["order_ts"]).isoformat(),
        "lines": [
            {f: _plain(line[f]) for f in ("product_id", "quantity", "unit_price", "discount_pct")}
            for _, line in lines.iterrows()
        ],
    }


def fill_as_of(path: Path, records: dict[str, pd.DataFrame], order: dict[str, Any]) -> OnlineStore:
    """A fresh online store holding, for the order's customer and products, their latest record strictly
    before the order's time: the store as a checkout at that instant would find it."""
    path.unlink(missing_ok=True)
    t = pd.Timestamp(order["order_ts"]).value // 1000
    wanted = {
        "customer-history": {order["customer_id"]},
        "product-history": {line["product_id"] for line in order["lines"]},
    }
    store = OnlineStore(str(path), {f"{PREFIX}-{g.name}": (g.record_identifier, g.event_time) for g in FEATURE_GROUPS})
    for group in FEATURE_GROUPS:
        frame = records[group.name]
        frame = frame[frame[group.record_identifier].isin(wanted[group.name])]
        frame = frame[(frame[group.event_time] * 1_000_000.0).round() < t]
        latest = frame.sort_values(group.event_time).drop_duplicates(group.record_identifier, keep="last")
        rows = [{k: _plain(v) for k, v in row.items()} for row in latest.to_dict("records")]
        store.put_records(put_record_request(f"{PREFIX}-{group.name}", group, row) for row in rows)
    return store
