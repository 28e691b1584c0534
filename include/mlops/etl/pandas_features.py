"""The same transform as :mod:`mlops.etl.build_features`, in pandas.

It is the benchmark baseline (``bench/bench_etl.py``) and a cross-check in the tests: on the
same raw input it must give the same rows and values as the Spark job. It reads the same raw
layout with pyarrow and applies the same rules (latest state, leak-free history, hash split).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from mlops.schema.curated import (
    CURATED_COLUMNS,
    DMS_COMMIT_TS_FORMAT,
    INT_COLUMNS,
    LABEL_CLASSES,
    PRODUCT_RATE_PRIOR,
    PRODUCT_RATE_PRIOR_ORDERS,
    RAW_TABLES,
    SHARE_CATEGORIES,
    SPLIT_BOUNDS,
)

MICROS_PER_DAY = 86_400_000_000


def read_latest(raw_dir: Path, table: str, key: str) -> pd.DataFrame:
    """Latest state of one raw table folder (date folders included): last change per key, deletes removed."""
    files = sorted(str(p) for p in (raw_dir / table).rglob("*.parquet"))
    frame = ds.dataset(files, format="parquet").to_table().to_pandas()
    frame["_commit_ts"] = pd.to_datetime(frame["dms_commit_ts"], format=DMS_COMMIT_TS_FORMAT, utc=True)
    frame = frame.sort_values(["dms_change_seq", "_commit_ts"], kind="stable")
    frame = frame.drop_duplicates(key, keep="last")
    return frame[frame["Op"] != "D"].drop(columns=["Op", "dms_commit_ts", "dms_change_seq", "_commit_ts"])


def _micros(series: pd.Series) -> pd.Series:
    return series.astype("datetime64[us]").astype("int64")


def _hash_bucket(keys: pd.Series, first_hex: int = 1) -> np.ndarray:
    start = first_hex - 1
    return np.fromiter(
        (int(hashlib.sha256(str(k).encode()).hexdigest()[start : start + 8], 16) for k in keys),
        dtype=np.int64,
        count=len(keys),
    )


def basket_features(items: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Per-order basket aggregates."""
    prods = products[["product_id", "category", "weight_kg", "is_fragile"]]
    lines = items.merge(prods, on="product_id", how="left")
    qty = lines["quantity"].astype("int64")
    price = lines["unit_price"].astype("float64")
    disc = lines["discount_pct"].astype("float64").fillna(0.0)
    lines = pd.DataFrame(
        {
            "order_id": lines["order_id"].astype("int64"),
            "qty": qty,
            "price": price,
            "gross": qty * price,
            "value": qty * price * (1.0 - disc / 100.0),
            "category": lines["category"].fillna("unknown"),
            "weight": qty * lines["weight_kg"].astype("float64").fillna(0.0),
            "fragile": np.where(lines["is_fragile"].astype("boolean").fillna(False).to_numpy(bool), qty, 0),
            "discount": disc,
        }
    )
    for category in SHARE_CATEGORIES:
        lines[f"share_{category}"] = (lines["category"] == category).astype("float64")
    grouped = lines.groupby("order_id")
    out = grouped.agg(
        basket_lines=("qty", "size"),
        basket_units=("qty", "sum"),
        basket_gross=("gross", "sum"),
        basket_value=("value", "sum"),
        avg_unit_price=("price", "mean"),
        max_unit_price=("price", "max"),
        distinct_categories=("category", "nunique"),
        fragile_units=("fragile", "sum"),
        basket_weight_kg=("weight", "sum"),
        max_discount_pct=("discount", "max"),
        **{f"share_{c}": (f"share_{c}", "mean") for c in SHARE_CATEGORIES},
    )
    top = lines.sort_values(["order_id", "value", "category"]).drop_duplicates("order_id", keep="last")
    out["top_category"] = top.set_index("order_id")["category"]
    return out.reset_index()


def history_features(orders: pd.DataFrame) -> pd.DataFrame:
    """Leak-free customer history: prior orders by order_ts, prior outcomes by when they were known."""
    terminal = orders["status"].isin(LABEL_CLASSES)
    placed = pd.DataFrame(
        {
            "customer_id": orders["customer_id"].to_numpy(),
            "order_id": orders["order_id"].to_numpy(),
            "t": _micros(orders["order_ts"]).to_numpy(),
            "is_order": 1,
            "spend": orders["basket_value"].to_numpy(),
            "term": 0,
            "ret": 0,
            "canc": 0,
        }
    )
    done = orders[terminal]
    outcomes = pd.DataFrame(
        {
            "customer_id": done["customer_id"].to_numpy(),
            "order_id": -1,
            "t": _micros(done["updated_at"]).to_numpy(),
            "is_order": 0,
            "spend": 0.0,
            "term": 1,
            "ret": (done["status"] == "returned").astype(int).to_numpy(),
            "canc": (done["status"] == "cancelled").astype(int).to_numpy(),
        }
    )
    events = pd.concat([placed, outcomes], ignore_index=True).sort_values(["customer_id", "t"], kind="stable")
    sums = ["is_order", "spend", "term", "ret", "canc"]
    running = events.groupby("customer_id")[sums].cumsum()
    tie_keys = [events["customer_id"], events["t"]]
    tie_end = running.groupby(tie_keys).transform("max")  # totals are non-decreasing within a customer
    prior = tie_end - events[sums].groupby(tie_keys).transform("sum")  # totals strictly before this instant
    order_t = events["t"].where(events["is_order"] == 1).astype("float64")
    last_order = order_t.groupby(events["customer_id"]).ffill()  # times ascend within a customer
    before_tie = last_order.groupby(events["customer_id"]).shift(1)
    prev_t = before_tie.groupby([events["customer_id"], events["t"]]).transform("first")
    term = prior["term"]
    out = pd.DataFrame(
        {
            "order_id": events["order_id"],
            "is_order": events["is_order"],
            "prior_orders": prior["is_order"].astype("int32"),
            "prior_spend": prior["spend"],
            "prior_terminal_orders": term.astype("int32"),
            "prior_return_rate": np.where(term > 0, prior["ret"] / term.where(term > 0, 1), 0.0),
            "prior_cancel_rate": np.where(term > 0, prior["canc"] / term.where(term > 0, 1), 0.0),
            "days_since_prev_order": (events["t"] - prev_t) / MICROS_PER_DAY,
        }
    )
    return out[out["is_order"] == 1].drop(columns="is_order")


def _before_each_instant(events: pd.DataFrame, entity: str, sums: list[str]) -> pd.DataFrame:
    """Per event row, the entity's totals of ``sums`` over events strictly before that row's time ``t``."""
    events = events.sort_values([entity, "t"], kind="stable")
    running = events.groupby(entity)[sums].cumsum()
    tie_keys = [events[entity], events["t"]]
    tie_end = running.groupby(tie_keys).transform("max")  # totals are non-decreasing within an entity
    return events.assign(**(tie_end - events[sums].groupby(tie_keys).transform("sum")))


def product_history_features(orders: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Leak-free product history per order: smoothed return/cancel rates of its products' known outcomes."""
    pairs = (
        items[["order_id", "product_id"]]
        .drop_duplicates()
        .merge(orders[["order_id", "order_ts", "updated_at", "status"]], on="order_id")
    )
    done = pairs[pairs["status"].isin(LABEL_CLASSES)]
    events = pd.concat(
        [
            pd.DataFrame({"product_id": pairs["product_id"], "order_id": pairs["order_id"],
                          "t": _micros(pairs["order_ts"]), "term": 0, "ret": 0, "canc": 0}),
            pd.DataFrame({"product_id": done["product_id"], "order_id": -1, "t": _micros(done["updated_at"]),
                          "term": 1, "ret": (done["status"] == "returned").astype(int),
                          "canc": (done["status"] == "cancelled").astype(int)}),
        ],
        ignore_index=True,
    )  # fmt: skip
    prior = _before_each_instant(events, "product_id", ["term", "ret", "canc"])
    prior = prior[prior["order_id"] >= 0]
    k = PRODUCT_RATE_PRIOR_ORDERS
    prior = prior.assign(
        ret_rate=(prior["ret"] + k * PRODUCT_RATE_PRIOR["returned"]) / (prior["term"] + k),
        canc_rate=(prior["canc"] + k * PRODUCT_RATE_PRIOR["cancelled"]) / (prior["term"] + k),
    )
    return (
        prior.groupby("order_id")
        .agg(
            product_return_rate_max=("ret_rate", "max"),
            product_return_rate_mean=("ret_rate", "mean"),
            product_cancel_rate_mean=("canc_rate", "mean"),
            product_prior_terminal_min=("term", "min"),
        )
        .reset_index()
    )


def build_features(tables: dict[str, pd.DataFrame], sample_fraction: float = 1.0) -> pd.DataFrame:
    """Latest-state raw frames -> the curated frame (same columns and rules as the Spark job)."""
    customers = tables["customers"].rename(columns={"country": "customer_country", "segment": "customer_segment"})
    baskets = basket_features(tables["order_items"], tables["products"])
    orders = tables["orders"].merge(baskets, on="order_id", how="left")
    for column in ("basket_lines", "basket_units", "distinct_categories", "fragile_units"):
        orders[column] = orders[column].fillna(0)
    zero_when_no_lines = ("basket_gross", "basket_value", "avg_unit_price", "max_unit_price", "basket_weight_kg")
    for column in (*zero_when_no_lines, "max_discount_pct", *(f"share_{c}" for c in SHARE_CATEGORIES)):
        orders[column] = orders[column].fillna(0.0)
    orders["top_category"] = orders["top_category"].fillna("none")
    orders = orders.merge(product_history_features(orders, tables["order_items"]), on="order_id", how="left")
    orders = orders.fillna(
        {
            "product_return_rate_max": PRODUCT_RATE_PRIOR["returned"],
            "product_return_rate_mean": PRODUCT_RATE_PRIOR["returned"],
            "product_cancel_rate_mean": PRODUCT_RATE_PRIOR["cancelled"],
            "product_prior_terminal_min": 0,
        }
    )
    history = history_features(orders)
    labelled = orders[orders["status"].isin(LABEL_CLASSES)]
    if sample_fraction < 1.0:
        keep = _hash_bucket(labelled["order_id"], 9) % 10_000 < round(sample_fraction * 10_000)
        labelled = labelled[keep]
    frame = labelled.merge(customers, on="customer_id", how="inner").merge(history, on="order_id", how="left")
    ts = frame["order_ts"].astype("datetime64[us]")
    dow = ts.dt.dayofweek + 1
    bucket = _hash_bucket(frame["order_id"]) % 100
    frame = frame.assign(
        order_ts=ts,
        has_discount_code=frame["discount_code"].notna().astype(int),
        cross_border=(frame["ship_country"] != frame["customer_country"]).astype(int),
        marketing_opt_in=frame["marketing_opt_in"].astype(int),
        customer_age=ts.dt.year - frame["birth_year"].astype("float64"),
        customer_tenure_days=(_micros(ts) // 1_000_000 - _micros(frame["signup_ts"]) // 1_000_000) / 86400.0,
        shipping_fee=frame["shipping_fee"].astype("float64"),
        order_hour=ts.dt.hour,
        order_dow=dow,
        order_month=ts.dt.month,
        is_weekend=(dow >= 6).astype(int),
        label=frame["status"],
        split=np.where(bucket < SPLIT_BOUNDS[0], "train", np.where(bucket < SPLIT_BOUNDS[1], "validation", "test")),
    )
    frame = frame[list(CURATED_COLUMNS)].copy()
    frame["order_id"] = frame["order_id"].astype("int64")
    frame["customer_id"] = frame["customer_id"].astype("int64")
    for column in INT_COLUMNS:
        frame[column] = frame[column].astype("int32")
    for column in ("customer_age", "days_since_prev_order", "max_unit_price"):
        frame[column] = frame[column].astype("float64")
    return frame.sort_values("order_id").reset_index(drop=True)


def run(raw_dir: Path, sample_fraction: float = 1.0) -> pd.DataFrame:
    """Read the raw folder of the source schema and build the curated frame."""
    tables = {table: read_latest(raw_dir, table, key) for table, key in RAW_TABLES.items()}
    return build_features(tables, sample_fraction)
