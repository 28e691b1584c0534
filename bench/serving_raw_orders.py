"""The raw-order set-up of ``bench_serving.py --raw-orders``: a lake, a model trained on its curated table, an
online store holding every customer's and product's latest record, and two request sets for the same orders.

- **featurized**: each order's curated feature row (what a client sends today);
- **raw order**: what a checkout knows (customer id, lines, channel, payment, shipping...), featurized by
  ``inference.py`` with one BatchGetRecord against the local online store (SQLite) per request.

Both go to the same model package in one model server process, so the difference is the lookup and the
featurization.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mlops.etl.synthetic_raw import write_raw
from mlops.schema.curated import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from mlops.schema.feature_groups import FEATURE_GROUPS, put_record_request
from mlops.schema.online_store import OnlineStore

PREFIX = "mlops-bench"


def _plain(value: Any) -> Any:
    """JSON-ready: numpy/Decimal -> int/float, NaN -> None."""
    if hasattr(value, "item"):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value) if type(value).__name__ == "Decimal" else value


def _write_curated(curated: Any, data: Path) -> None:
    for split, rows in curated.groupby("split"):
        (data / f"split={split}").mkdir(parents=True)
        rows.drop(columns="split").to_parquet(data / f"split={split}" / "part-0.parquet", index=False)


def _fill_store(path: Path, records: dict[str, Any]) -> int:
    """Every entity's latest record, as the features job leaves the online store."""
    store = OnlineStore(str(path), {f"{PREFIX}-{g.name}": (g.record_identifier, g.event_time) for g in FEATURE_GROUPS})
    written = 0
    for group in FEATURE_GROUPS:
        latest = records[group.name].sort_values(group.event_time).drop_duplicates(group.record_identifier, keep="last")
        rows = ({k: _plain(v) for k, v in row.items()} for row in latest.to_dict("records"))
        written += store.put_records(put_record_request(f"{PREFIX}-{group.name}", group, row) for row in rows)
    return written


def _raw_order(order: Any, lines: Any) -> dict[str, Any]:
    fields = ("customer_id", "channel", "payment_method", "shipping_method", "ship_country", "promised_days",
              "shipping_fee", "discount_code")  # fmt: skip
    return {
        **{f: _plain(order[f]) for f in fields},
        "order_ts": order["order_ts"].isoformat(),
        "lines": [
            {f: _plain(line[f]) for f in ("product_id", "quantity", "unit_price", "discount_pct")}
            for line in lines.to_dict("records")
        ],
    }


def request_sets(tables: dict[str, Any], curated: Any, count: int) -> dict[str, list[bytes]]:
    """One JSON body per request: the last ``count`` test orders as raw orders and as curated rows."""
    rows = curated[curated["split"] == "test"].tail(count)
    orders = tables["orders"].set_index("order_id")
    lines = tables["order_items"].sort_values("order_item_id").groupby("order_id")
    columns = (*CATEGORICAL_FEATURES, *NUMERIC_FEATURES)
    raw, featurized = [], []
    for row in rows.to_dict("records"):
        order_id = int(row["order_id"])
        raw.append(json.dumps({"instances": [_raw_order(orders.loc[order_id], lines.get_group(order_id))]}).encode())
        featurized.append(json.dumps({"instances": [{c: _plain(row[c]) for c in columns}]}).encode())
    return {"featurized": featurized, "raw": raw}


def build(work: Path, orders: int, requests: int) -> dict[str, Any]:
    """Lake -> curated table and feature records (the pandas job) -> model package, online store, request sets."""
    from mlops.etl import pandas_features
    from mlops.schema.curated import RAW_TABLES
    from tests.sagemaker_runtime import build_model_packages

    raw = work / "raw" / "shop"
    write_raw(raw, orders, seed=11)
    tables = {table: pandas_features.read_latest(raw, table, key) for table, key in RAW_TABLES.items()}
    curated = pandas_features.build_features(tables)
    _write_curated(curated, work / "curated")
    package = build_model_packages(work / "packages", {"onnx": {"seed": 7, "data": str(work / "curated")}})["onnx"]
    store = work / "online.sqlite"
    records = _fill_store(store, pandas_features.entity_records(tables))
    return {
        "archive": Path(package["archive"]),
        "store": store,
        "records": records,
        "bodies": request_sets(tables, curated, requests),
        "features": len(package["feature_spec"]["numeric"]) + len(package["feature_spec"]["categorical"]),
    }
