"""Synthetic DMS raw output at any size, for the ETL benchmark and the Spark/pandas cross-check.

It writes exactly the layout the DMS S3 target (and the local replicator) produces under
``<raw_dir>/<table>/``: ``LOAD0000000N.parquet`` full-load files with ``Op='I'`` and
sequence ``"0" * 20``, then ``YYYY/MM/DD/YYYYMMDD-HHMMSSfff.parquet`` CDC files (date folders,
as DMS's ``DatePartitionEnabled`` writes them) with inserts, updates and deletes. Columns:
``Op``, ``dms_commit_ts`` (UTC text, as DMS writes it), ``dms_change_seq``, then the table's columns in schema order
with the DMS Parquet types. Vectorised numpy, so 5M orders take seconds, not minutes; it does
not replace the source-DB generator, which models behaviour.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlops.schema.curated import DMS_COMMIT_TS_FORMAT
from mlops.source.vocabulary import CATEGORIES, CHANNELS, COUNTRIES, PAYMENT_METHODS, SEGMENTS, SHIPPING_METHODS

START = np.datetime64("2025-01-01T00:00:00", "us")
DAY_US = 86_400_000_000
LOAD_TS = datetime(2026, 7, 1, 0, 0, 0)
MONEY = pa.decimal128(10, 2)


def _ts(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype("datetime64[us]"), type=pa.timestamp("us"))


def _dec(values: np.ndarray, dtype: pa.DataType) -> pa.Array:
    return pa.array(values, from_pandas=True).cast(dtype, safe=False)


def _with_dms(table: pa.Table, ops: list[str] | str, commit: datetime, seq_start: int) -> pa.Table:
    n = table.num_rows
    op = pa.array([ops] * n if isinstance(ops, str) else ops, pa.string())
    seq = pa.array(["0" * 20] * n if seq_start == 0 else [f"{seq_start + i:020d}" for i in range(n)], pa.string())
    ts = pa.array([commit.strftime(DMS_COMMIT_TS_FORMAT)] * n, pa.string())  # DMS's text timestamp column
    return pa.table(
        {
            "Op": op,
            "dms_commit_ts": ts,
            "dms_change_seq": seq,
            **dict(zip(table.column_names, table.columns, strict=True)),
        }
    )


def generate_tables(n_orders: int, seed: int = 7) -> dict[str, pa.Table]:
    """Full-load state of the four tables (latest state before any CDC)."""
    rng = np.random.default_rng(seed)
    n_cust, n_prod = max(50, n_orders // 5), 500
    customers = _customers(rng, n_cust)
    products, price = _products(rng, n_prod)
    orders, order_ts = _orders(rng, n_orders, n_cust)
    order_items = _order_items(rng, order_ts, price)
    return {"customers": customers, "products": products, "orders": orders, "order_items": order_items}


def _customers(rng: np.random.Generator, n_cust: int) -> pa.Table:
    cust_ids = np.arange(1, n_cust + 1)
    signup = START - rng.integers(0, 400 * DAY_US, n_cust).astype("timedelta64[us]")
    birth = rng.integers(1950, 2006, n_cust).astype("float64")
    birth[rng.random(n_cust) < 0.1] = np.nan
    return pa.table(
        {
            "customer_id": pa.array(cust_ids, pa.int64()),
            "email": pa.array([f"c{i}@example.com" for i in cust_ids]),
            "country": pa.array(np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n_cust)]),
            "segment": pa.array(np.array(SEGMENTS)[rng.choice(3, n_cust, p=[0.8, 0.15, 0.05])]),
            "birth_year": pa.array(birth, from_pandas=True).cast(pa.int16()),
            "marketing_opt_in": pa.array(rng.random(n_cust) < 0.4),
            "signup_ts": _ts(signup),
            "updated_at": _ts(signup),
        }
    )


def _products(rng: np.random.Generator, n_prod: int) -> tuple[pa.Table, np.ndarray]:
    """The products table and its unit prices (order lines copy them)."""
    prod_ids = np.arange(1, n_prod + 1)
    price = np.round(rng.lognormal(3.0, 0.9, n_prod), 2)
    weight = np.round(rng.lognormal(0.0, 0.8, n_prod), 3)
    weight[rng.random(n_prod) < 0.05] = np.nan
    products = pa.table(
        {
            "product_id": pa.array(prod_ids, pa.int64()),
            "sku": pa.array([f"SKU-{i:06d}" for i in prod_ids]),
            "category": pa.array(np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), n_prod)]),
            "unit_price": _dec(price, MONEY),
            "weight_kg": _dec(weight, pa.decimal128(8, 3)),
            "is_fragile": pa.array(rng.random(n_prod) < 0.15),
            "updated_at": _ts(np.full(n_prod, START)),
        }
    )
    return products, price


def _orders(rng: np.random.Generator, n_orders: int, n_cust: int) -> tuple[pa.Table, np.ndarray]:
    """The orders table (outcomes depend on payment and shipping) and the order times."""
    order_ts = START + np.sort(rng.integers(0, 540 * DAY_US, n_orders)).astype("timedelta64[us]")
    payment = rng.integers(0, len(PAYMENT_METHODS), n_orders)
    shipping = rng.integers(0, len(SHIPPING_METHODS), n_orders)
    p_cancel = np.where(payment == 3, 0.18, 0.05)
    p_return = np.where(shipping == 1, 0.16, 0.09)
    u = rng.random(n_orders)
    status = np.where(u < p_cancel, "cancelled", np.where(u < p_cancel + p_return, "returned", "delivered"))
    recent = order_ts > START + np.timedelta64(530 * DAY_US, "us")
    status = np.where(recent, np.where(rng.random(n_orders) < 0.5, "placed", "shipped"), status)
    updated = order_ts + rng.integers(DAY_US // 24, 20 * DAY_US, n_orders).astype("timedelta64[us]")
    discount = np.where(rng.random(n_orders) < 0.2, "SAVE10", None)
    orders = pa.table(
        {
            "order_id": pa.array(np.arange(1, n_orders + 1), pa.int64()),
            "customer_id": pa.array(rng.integers(1, n_cust + 1, n_orders), pa.int64()),
            "order_ts": _ts(order_ts),
            "channel": pa.array(np.array(CHANNELS)[rng.integers(0, len(CHANNELS), n_orders)]),
            "payment_method": pa.array(np.array(PAYMENT_METHODS)[payment]),
            "shipping_method": pa.array(np.array(SHIPPING_METHODS)[shipping]),
            "ship_country": pa.array(np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n_orders)]),
            "promised_days": pa.array(rng.integers(1, 10, n_orders), pa.int16()),
            "shipping_fee": _dec(np.round(rng.uniform(0, 15, n_orders), 2), pa.decimal128(8, 2)),
            "discount_code": pa.array(discount, pa.string()),
            "status": pa.array(status),
            "updated_at": _ts(updated),
        }
    )
    return orders, order_ts


def _order_items(rng: np.random.Generator, order_ts: np.ndarray, price: np.ndarray) -> pa.Table:
    """One to four lines per order, at the product's price."""
    n_orders, n_prod = len(order_ts), len(price)
    lines = rng.integers(1, 5, n_orders)
    item_order = np.repeat(np.arange(1, n_orders + 1), lines)
    n_items = len(item_order)
    item_prod = rng.integers(1, n_prod + 1, n_items)
    line_disc = np.where(rng.random(n_items) < 0.3, rng.choice([5.0, 10.0, 20.0], n_items), np.nan)
    return pa.table(
        {
            "order_item_id": pa.array(np.arange(1, n_items + 1), pa.int64()),
            "order_id": pa.array(item_order, pa.int64()),
            "product_id": pa.array(item_prod, pa.int64()),
            "quantity": pa.array(rng.integers(1, 4, n_items), pa.int16()),
            "unit_price": _dec(price[item_prod - 1], MONEY),
            "discount_pct": _dec(line_disc, pa.decimal128(5, 2)),
            "updated_at": _ts(np.repeat(order_ts, lines)),
        }
    )


def write_raw(raw_dir: Path, n_orders: int, seed: int = 7, load_files: int = 2) -> dict[str, int]:
    """Write full load + two CDC batches (updates, deletes, inserts); return row counts written."""
    rng = np.random.default_rng(seed + 1)
    tables = generate_tables(n_orders, seed)
    counts: dict[str, int] = {}
    for name, table in tables.items():
        folder = raw_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        step = -(-table.num_rows // load_files)
        for i in range(load_files):
            chunk = table.slice(i * step, step)
            pq.write_table(_with_dms(chunk, "I", LOAD_TS, 0), folder / f"LOAD{i + 1:08d}.parquet")
        counts[name] = table.num_rows
    orders = tables["orders"]
    n = orders.num_rows
    seq = 1
    # CDC batch 1: ~2% of orders move to a new terminal status; ~0.5% of orders are deleted (with items).
    upd = np.sort(rng.choice(n, max(1, n // 50), replace=False))
    moved = orders.take(pa.array(upd))
    new_status = np.array(["delivered", "returned", "cancelled"])[rng.integers(0, 3, len(upd))]
    moved = moved.set_column(moved.schema.get_field_index("status"), "status", pa.array(new_status))
    dele = np.sort(rng.choice(np.setdiff1d(np.arange(n), upd), max(1, n // 200), replace=False))
    gone = orders.take(pa.array(dele))
    items = tables["order_items"]
    gone_items = items.filter(pa.compute.is_in(items["order_id"], value_set=gone["order_id"]))
    batch1 = LOAD_TS + timedelta(hours=1)
    cdc_orders = pa.concat_tables([_with_dms(moved, "U", batch1, seq), _with_dms(gone, "D", batch1, seq + len(upd))])
    seq += len(upd) + len(dele)
    cdc_items = _with_dms(gone_items, "D", batch1, seq)
    seq += gone_items.num_rows
    name1 = _cdc_key(batch1)
    pq.write_table(cdc_orders, _parent_made(raw_dir / "orders" / name1))
    pq.write_table(cdc_items, _parent_made(raw_dir / "order_items" / name1))
    # CDC batch 2: a second update of some orders updated in batch 1 (only the last may count).
    again = moved.slice(0, max(1, len(upd) // 4))
    again = again.set_column(again.schema.get_field_index("status"), "status", pa.array(["delivered"] * again.num_rows))
    batch2 = LOAD_TS + timedelta(hours=2)
    pq.write_table(_with_dms(again, "U", batch2, seq), _parent_made(raw_dir / "orders" / _cdc_key(batch2)))
    counts["cdc_changes"] = len(upd) + len(dele) + gone_items.num_rows + again.num_rows
    return counts


def _cdc_key(batch: datetime) -> str:
    """``YYYY/MM/DD/YYYYMMDD-HHMMSSfff.parquet``: a CDC file in the date folder of its commit time."""
    return batch.strftime("%Y/%m/%d/%Y%m%d-%H%M%S000") + ".parquet"


def _parent_made(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
