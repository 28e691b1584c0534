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
    CUSTOMER_RATE_PRIOR,
    CUSTOMER_RATE_PRIOR_ORDERS,
    DMS_COMMIT_TS_FORMAT,
    INT_COLUMNS,
    LABEL_CLASSES,
    PRODUCT_RATE_PRIOR,
    PRODUCT_RATE_PRIOR_ORDERS,
    RAW_TABLES,
    SHARE_CATEGORIES,
    SPLIT_BOUNDS,
    smoothed_rate,
)
from mlops.schema.feature_groups import (
    CUSTOMER_COUNTERS,
    CUSTOMER_HISTORY,
    MICROS_PER_DAY,
    PRODUCT_COUNTERS,
    PRODUCT_HISTORY,
    PRODUCT_RECORD_PERIOD_MICROS,
    RECORD_DECIMALS,
    FeatureGroup,
)


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


def _running_records(events: pd.DataFrame, entity: str, sums: list[str]) -> pd.DataFrame:
    """One record per (entity, instant ``t``): the entity's totals of ``sums`` through ``t``."""
    per_instant = events.groupby([entity, "t"], sort=True)[sums].sum().reset_index()
    per_instant[sums] = per_instant.groupby(entity)[sums].cumsum()
    return per_instant


def _as_records(frame: pd.DataFrame, group: FeatureGroup) -> pd.DataFrame:
    """The record columns of ``group``, event time in seconds, doubles rounded (as the Spark job writes them)."""
    doubles = [name for name, kind in group.columns if kind == "double"]
    rounded = {name: frame[name].astype("float64").round(RECORD_DECIMALS) for name in doubles}
    out = frame.assign(**{group.event_time: frame["t"] / 1_000_000.0}, **rounded)
    return out[group.feature_names()].reset_index(drop=True)


def customer_records(orders: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Customer-history feature records (``mlops.schema.feature_groups.CUSTOMER_HISTORY``), as the Spark job."""
    done = orders[orders["status"].isin(LABEL_CLASSES)]
    t_placed = _micros(orders["order_ts"]).to_numpy()
    events = pd.concat(
        [
            pd.DataFrame({"customer_id": orders["customer_id"].to_numpy(), "t": t_placed, "orders": 1,
                          "spend": orders["basket_value"].to_numpy(), "terminal_orders": 0, "returned_orders": 0,
                          "cancelled_orders": 0, "last_order_micros": t_placed.astype("float64")}),
            pd.DataFrame({"customer_id": done["customer_id"].to_numpy(), "t": _micros(done["updated_at"]).to_numpy(),
                          "orders": 0, "spend": 0.0, "terminal_orders": 1,
                          "returned_orders": (done["status"] == "returned").astype(int).to_numpy(),
                          "cancelled_orders": (done["status"] == "cancelled").astype(int).to_numpy(),
                          "last_order_micros": np.nan}),
        ],
        ignore_index=True,
    )  # fmt: skip
    counts = ["orders", "spend", "terminal_orders", "returned_orders", "cancelled_orders"]
    running = _running_records(events, "customer_id", counts)
    last = events.groupby(["customer_id", "t"], sort=True)["last_order_micros"].max().reset_index(drop=True)
    running["last_order_micros"] = last.groupby(running["customer_id"]).ffill()
    base = pd.DataFrame({"customer_id": customers["customer_id"].to_numpy(), "t": 0, **dict.fromkeys(counts, 0)})
    profile = pd.DataFrame({
        "customer_id": customers["customer_id"].to_numpy(), "country": customers["country"].to_numpy(),
        "segment": customers["segment"].to_numpy(), "birth_year": customers["birth_year"].astype("float64").to_numpy(),
        "marketing_opt_in": customers["marketing_opt_in"].astype(int).to_numpy(),
        "signup_micros": _micros(customers["signup_ts"]).to_numpy(),
    })  # fmt: skip
    records = pd.concat([running, base], ignore_index=True).merge(profile, on="customer_id", how="left")
    return _as_records(records, CUSTOMER_HISTORY)


def product_records(orders: pd.DataFrame, items: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Product-history feature records (``PRODUCT_HISTORY``): per product and complete UTC day, as the Spark job."""
    pairs = (
        items[["order_id", "product_id"]].drop_duplicates()
        .merge(orders[["order_id", "updated_at", "status"]], on="order_id")
    )  # fmt: skip
    done = pairs[pairs["status"].isin(LABEL_CLASSES)]
    period = PRODUCT_RECORD_PERIOD_MICROS
    day_end = (_micros(done["updated_at"]).to_numpy() // period + 1) * period - 1  # the day's last microsecond
    events = pd.DataFrame({
        "product_id": done["product_id"].to_numpy(), "t": day_end,
        "terminal_orders": 1, "returned_orders": (done["status"] == "returned").astype(int).to_numpy(),
        "cancelled_orders": (done["status"] == "cancelled").astype(int).to_numpy(),
    })  # fmt: skip
    running = _running_records(events, "product_id", list(PRODUCT_COUNTERS))
    running = running[running["t"] < _micros(orders["updated_at"]).max()]  # complete days only
    base = pd.DataFrame({"product_id": products["product_id"].to_numpy(), "t": 0, **dict.fromkeys(PRODUCT_COUNTERS, 0)})
    attributes = pd.DataFrame({
        "product_id": products["product_id"].to_numpy(), "category": products["category"].to_numpy(),
        "weight_kg": products["weight_kg"].astype("float64").to_numpy(),
        "is_fragile": products["is_fragile"].astype(int).to_numpy(),
    })  # fmt: skip
    records = pd.concat([running, base], ignore_index=True).merge(attributes, on="product_id", how="left")
    return _as_records(records, PRODUCT_HISTORY)


def entity_records(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Every feature group's records (group name -> frame) from the latest raw tables."""
    orders = orders_with_baskets(tables)
    return {
        CUSTOMER_HISTORY.name: customer_records(orders, tables["customers"]),
        PRODUCT_HISTORY.name: product_records(orders, tables["order_items"], tables["products"]),
    }


def point_in_time(
    probes: pd.DataFrame, records: pd.DataFrame, group: FeatureGroup, columns: tuple[str, ...]
) -> pd.DataFrame:
    """``probes`` (entity column and ``t``, micros) with ``columns`` of the entity's record with the latest event
    time strictly before ``t`` (NaN without one)."""
    entity = group.record_identifier
    recs = records[[entity, *columns]].assign(_t=(records[group.event_time] * 1_000_000.0).round().astype("int64"))
    left = probes.assign(t=probes["t"].astype("int64"), **{entity: probes[entity].astype("int64")}).sort_values("t")
    right = recs.assign(**{entity: recs[entity].astype("int64")}).sort_values("_t")
    return pd.merge_asof(left, right, left_on="t", right_on="_t", by=entity, allow_exact_matches=False).drop(
        columns="_t"
    )


def history_features(orders: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Customer history per order from the point-in-time customer records."""
    probes = pd.DataFrame({"order_id": orders["order_id"].to_numpy(), "customer_id": orders["customer_id"].to_numpy(),
                           "t": _micros(orders["order_ts"]).to_numpy()})  # fmt: skip
    seen = point_in_time(probes, records, CUSTOMER_HISTORY, CUSTOMER_COUNTERS)
    term = seen["terminal_orders"].fillna(0)
    smoothed = lambda outcome: smoothed_rate(  # noqa: E731
        seen[f"{outcome}_orders"].fillna(0), term, CUSTOMER_RATE_PRIOR[outcome], CUSTOMER_RATE_PRIOR_ORDERS
    )
    return pd.DataFrame(
        {
            "order_id": seen["order_id"],
            "prior_orders": seen["orders"].fillna(0).astype("int32"),
            "prior_spend": seen["spend"].fillna(0.0),
            "prior_terminal_orders": term.astype("int32"),
            "prior_return_rate": np.where(term > 0, seen["returned_orders"] / term.where(term > 0, 1), 0.0),
            "prior_cancel_rate": np.where(term > 0, seen["cancelled_orders"] / term.where(term > 0, 1), 0.0),
            "prior_return_rate_smoothed": smoothed("returned"),
            "prior_cancel_rate_smoothed": smoothed("cancelled"),
            "days_since_prev_order": (seen["t"] - seen["last_order_micros"]) / MICROS_PER_DAY,
        }
    )


def product_history_features(orders: pd.DataFrame, items: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Product history per order from the point-in-time product records."""
    pairs = items[["order_id", "product_id"]].drop_duplicates().merge(orders[["order_id", "order_ts"]], on="order_id")
    probes = pd.DataFrame({"order_id": pairs["order_id"].to_numpy(), "product_id": pairs["product_id"].to_numpy(),
                           "t": _micros(pairs["order_ts"]).to_numpy()})  # fmt: skip
    seen = point_in_time(probes, records, PRODUCT_HISTORY, PRODUCT_COUNTERS)
    prior = {c: seen[c].fillna(0) for c in PRODUCT_COUNTERS}
    rate = lambda outcome: smoothed_rate(  # noqa: E731
        prior[f"{outcome}_orders"], prior["terminal_orders"], PRODUCT_RATE_PRIOR[outcome], PRODUCT_RATE_PRIOR_ORDERS
    )
    seen = seen.assign(term=prior["terminal_orders"], ret_rate=rate("returned"), canc_rate=rate("cancelled"))
    return (
        seen.groupby("order_id")
        .agg(
            product_return_rate_max=("ret_rate", "max"),
            product_return_rate_mean=("ret_rate", "mean"),
            product_cancel_rate_mean=("canc_rate", "mean"),
            product_prior_terminal_min=("term", "min"),
        )
        .reset_index()
    )


def orders_with_baskets(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Latest orders with their basket aggregates (zeros / ``none`` without lines)."""
    baskets = basket_features(tables["order_items"], tables["products"])
    orders = tables["orders"].merge(baskets, on="order_id", how="left")
    for column in ("basket_lines", "basket_units", "distinct_categories", "fragile_units"):
        orders[column] = orders[column].fillna(0)
    zero_when_no_lines = ("basket_gross", "basket_value", "avg_unit_price", "max_unit_price", "basket_weight_kg")
    for column in (*zero_when_no_lines, "max_discount_pct", *(f"share_{c}" for c in SHARE_CATEGORIES)):
        orders[column] = orders[column].fillna(0.0)
    orders["top_category"] = orders["top_category"].fillna("none")
    return orders


def build_features(
    tables: dict[str, pd.DataFrame], sample_fraction: float = 1.0, records: dict[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """Latest-state raw frames (and the feature groups' records; computed from them when not given) -> the
    curated frame (same columns and rules as the Spark job)."""
    records = records or entity_records(tables)
    customers = tables["customers"].rename(columns={"country": "customer_country", "segment": "customer_segment"})
    orders = orders_with_baskets(tables)
    product_history = product_history_features(orders, tables["order_items"], records[PRODUCT_HISTORY.name])
    orders = orders.merge(product_history, on="order_id", how="left")
    orders = orders.fillna(
        {
            "product_return_rate_max": PRODUCT_RATE_PRIOR["returned"],
            "product_return_rate_mean": PRODUCT_RATE_PRIOR["returned"],
            "product_cancel_rate_mean": PRODUCT_RATE_PRIOR["cancelled"],
            "product_prior_terminal_min": 0,
        }
    )
    labelled = orders[orders["status"].isin(LABEL_CLASSES)]
    if sample_fraction < 1.0:
        keep = _hash_bucket(labelled["order_id"], 9) % 10_000 < round(sample_fraction * 10_000)
        labelled = labelled[keep]
    history = history_features(labelled, records[CUSTOMER_HISTORY.name])
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
