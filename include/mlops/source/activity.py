"""OLTP activity on the source DB, so change data capture has inserts, updates and deletes to carry.

Each step is one simulated day after the newest timestamp in the database, committed as one
transaction. In a step the shop takes new sign-ups and orders, moves open orders along
``placed -> shipped -> delivered | returned`` (or ``cancelled``) with the generator's outcome
model, lets customers change segment or email, reprices products, edits open baskets, purges
old cancelled orders and closes accounts that never ordered. Every update sets ``updated_at`` to
the step's time. The same database and seed give the same changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from time import perf_counter
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Table, bindparam, delete, func, select

from mlops.source.db import safe_url, table_counts
from mlops.source.generator import (
    DAY,
    CustomerPool,
    DriftSpec,
    OutcomeFeatures,
    basket_features,
    build_orders,
    check_seed,
    defective_product,
    encode,
    from_epoch,
    insert,
    latest_timestamp,
    load_customer_pool,
    load_product_pool,
    make_customers,
    next_ids,
    outcome_probabilities,
    stream,
)
from mlops.source.schema import (
    CATEGORIES,
    CHANNELS,
    PAYMENT_METHODS,
    SEGMENTS,
    TABLES,
    customers,
    order_items,
    orders,
    products,
)

MAX_STEPS = 365
RETENTION_DAYS = 30  # cancelled orders and order-less accounts older than this may be purged
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ActivityResult:
    """Rows inserted, updated and deleted per table, and the simulated time span covered."""

    inserts: dict[str, int]
    updates: dict[str, int]
    deletes: dict[str, int]
    start: datetime
    end: datetime
    steps: int
    seconds: float


@dataclass
class ChangeTally:
    """Running counts of rows inserted, updated and deleted per table."""

    inserts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    updates: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    deletes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))


def _count(rng: np.random.Generator, mean: float) -> int:
    """A Poisson count of at least one."""
    return max(1, int(rng.poisson(mean)))


def _update_rows(conn: Connection, table: Table, key: str, rows: Sequence[dict[str, Any]]) -> int:
    """Update rows by primary key; each row maps ``key`` and the changed columns to new values."""
    if not rows:
        return 0
    columns = [name for name in rows[0] if name != key]
    statement = (
        table.update()
        .where(table.c[key] == bindparam(f"b_{key}"))
        .values({name: bindparam(f"b_{name}") for name in columns})
    )
    conn.execute(statement, [{f"b_{name}": value for name, value in row.items()} for row in rows])
    return len(rows)


def _delete_rows(conn: Connection, table: Table, column: str, ids: Sequence[int]) -> int:
    """Delete the rows whose ``column`` is in ``ids``; returns rows deleted."""
    if not len(ids):
        return 0
    return conn.execute(delete(table).where(table.c[column].in_([int(i) for i in ids]))).rowcount


def daily_order_rate(conn: Connection, now: int) -> float:
    """Orders per day over the 30 days before the day that ends at ``now`` (at least 2)."""
    since = from_epoch(now - DAY - 30 * DAY)
    recent = conn.execute(select(func.count()).where(orders.c.order_ts >= since)).scalar_one()
    return max(recent / 30.0, 2.0)


def add_orders(
    conn: Connection, rng: np.random.Generator, now: int, rate: float, drift: DriftSpec, tally: ChangeTally
) -> int:
    """Insert the day's sign-ups and orders (statuses as of ``now``); returns the first new order id."""
    ids = next_ids(conn)
    signups = np.sort(rng.integers(now - DAY + 1, now, _count(rng, rate * 0.1)))
    tally.inserts["customers"] += insert(conn, "customers", make_customers(rng, ids["customers"], signups, drift))
    order_ts = np.sort(rng.integers(now - DAY + 1, now, _count(rng, rate)))
    customer_pool, product_pool = load_customer_pool(conn), load_product_pool(conn)
    order_cols, item_cols = build_orders(
        rng, ids["orders"], ids["order_items"], order_ts, customer_pool, product_pool, drift, now
    )
    tally.inserts["orders"] += insert(conn, "orders", order_cols)
    tally.inserts["order_items"] += insert(conn, "order_items", item_cols)
    return ids["orders"]


def open_order_features(conn: Connection, below_id: int) -> tuple[pd.DataFrame, OutcomeFeatures]:
    """Placed or shipped orders with ids below ``below_id``, and their outcome-model features."""
    open_filter = orders.c.status.in_(("placed", "shipped")) & (orders.c.order_id < below_id)
    order_query = (
        select(orders, customers.c.segment, customers.c.signup_ts, customers.c.country)
        .join(customers, customers.c.customer_id == orders.c.customer_id)
        .where(open_filter)
        .order_by(orders.c.order_id)
    )
    frame = pd.read_sql(order_query, conn)
    item_query = (
        select(order_items, products.c.category, products.c.is_fragile)
        .join(products, products.c.product_id == order_items.c.product_id)
        .join(orders, orders.c.order_id == order_items.c.order_id)
        .where(open_filter)
        .order_by(order_items.c.order_item_id)
    )
    items = pd.read_sql(item_query, conn)
    pos = np.searchsorted(frame["order_id"].to_numpy(), items["order_id"].to_numpy())
    basket = basket_features(
        pos,
        len(frame),
        encode(items["category"], CATEGORIES),
        items["is_fragile"].to_numpy(bool),
        defective_product(items["product_id"].to_numpy(np.int64)),
        items["discount_pct"].to_numpy(float),
        items["quantity"].to_numpy(float),
        items["unit_price"].to_numpy(float),
    )
    order_ts = pd.to_datetime(frame["order_ts"])
    features = OutcomeFeatures(
        customer_id=frame["customer_id"].to_numpy(np.int64),
        channel=encode(frame["channel"], CHANNELS),
        payment=encode(frame["payment_method"], PAYMENT_METHODS),
        segment=encode(frame["segment"], SEGMENTS),
        promised_days=frame["promised_days"].to_numpy(float),
        cross_border=(frame["ship_country"] != frame["country"]).to_numpy(),
        tenure_days=((order_ts - pd.to_datetime(frame["signup_ts"])).dt.total_seconds() / DAY).to_numpy(),
        **basket,
    )
    return frame, features


def progress_orders(
    conn: Connection, rng: np.random.Generator, now: int, below_id: int, drift: DriftSpec, tally: ChangeTally
) -> None:
    """Move open orders one state along: placed ones ship or cancel, shipped ones due by their
    promised days end delivered or returned, each with the outcome model's odds."""
    frame, features = open_order_features(conn, below_id)
    if frame.empty:
        return
    probs = outcome_probabilities(features, drift)
    placed = (frame["status"] == "placed").to_numpy()
    age_days = (now - pd.to_datetime(frame["order_ts"]).to_numpy("datetime64[s]").astype(np.int64)) / DAY
    moves = rng.random(len(frame)) < 0.8
    cancel = rng.random(len(frame)) < probs[:, 2]
    returned = rng.random(len(frame)) < probs[:, 1] / (probs[:, 0] + probs[:, 1])
    due = age_days >= features.promised_days
    new_status = np.select(
        [placed & moves & cancel, placed & moves, ~placed & due & returned, ~placed & due],
        ["cancelled", "shipped", "returned", "delivered"],
        "",
    )
    changed = new_status != ""
    stamp = from_epoch(now)
    rows = [
        {"order_id": int(i), "status": str(s), "updated_at": stamp}
        for i, s in zip(frame["order_id"].to_numpy()[changed], new_status[changed], strict=True)
    ]
    tally.updates["orders"] += _update_rows(conn, orders, "order_id", rows)


def update_customers(conn: Connection, rng: np.random.Generator, now: int, rate: float, tally: ChangeTally) -> None:
    """Some customers move to another segment, others change their email address."""
    pool: CustomerPool = load_customer_pool(conn)
    chosen = np.sort(rng.choice(len(pool.customer_id), min(_count(rng, rate * 0.05), len(pool.customer_id)), False))
    stamp = from_epoch(now)
    rows_segment, rows_email = [], []
    for index, switch_segment, shift in zip(
        chosen.tolist(),
        (rng.random(len(chosen)) < 0.5).tolist(),
        rng.integers(1, len(SEGMENTS), len(chosen)).tolist(),
        strict=True,
    ):
        customer_id = int(pool.customer_id[index])
        if switch_segment:
            segment = SEGMENTS[(int(pool.segment[index]) + shift) % len(SEGMENTS)]
            rows_segment.append({"customer_id": customer_id, "segment": segment, "updated_at": stamp})
        else:
            email = f"user{customer_id}.{now}@mail.example"
            rows_email.append({"customer_id": customer_id, "email": email, "updated_at": stamp})
    tally.updates["customers"] += _update_rows(conn, customers, "customer_id", rows_segment)
    tally.updates["customers"] += _update_rows(conn, customers, "customer_id", rows_email)


def reprice_products(conn: Connection, rng: np.random.Generator, now: int, tally: ChangeTally) -> None:
    """About 0.5% of the catalogue changes price by -15% to +15%."""
    frame = pd.read_sql(select(products.c.product_id, products.c.unit_price).order_by(products.c.product_id), conn)
    chosen = np.sort(rng.choice(len(frame), min(_count(rng, len(frame) * 0.005), len(frame)), replace=False))
    prices = np.maximum(0.99, frame["unit_price"].to_numpy(float)[chosen] * rng.uniform(0.85, 1.15, len(chosen)))
    stamp = from_epoch(now)
    rows = [
        {"product_id": int(pid), "unit_price": Decimal(f"{price:.2f}"), "updated_at": stamp}
        for pid, price in zip(frame["product_id"].to_numpy()[chosen], prices, strict=True)
    ]
    tally.updates["products"] += _update_rows(conn, products, "product_id", rows)


def edit_baskets(conn: Connection, rng: np.random.Generator, now: int, rate: float, tally: ChangeTally) -> None:
    """In placed orders with several lines, customers drop a line or raise a quantity."""
    query = (
        select(order_items.c.order_item_id, order_items.c.order_id, order_items.c.quantity)
        .join(orders, orders.c.order_id == order_items.c.order_id)
        .where(orders.c.status == "placed")
        .order_by(order_items.c.order_item_id)
    )
    lines = pd.read_sql(query, conn)
    lines = lines[lines.groupby("order_id")["order_id"].transform("size") > 1]
    if lines.empty:
        return
    last_lines = lines.drop_duplicates("order_id", keep="last")
    picked = rng.permutation(len(last_lines))[: max(2, _count(rng, rate * 0.05))]
    raise_quantity, drop = np.sort(picked[0::2]), np.sort(picked[1::2])  # one of each whenever two orders qualify
    tally.deletes["order_items"] += _delete_rows(
        conn, order_items, "order_item_id", last_lines["order_item_id"].to_numpy()[drop].tolist()
    )
    stamp = from_epoch(now)
    rows = [
        {"order_item_id": int(item_id), "quantity": int(quantity) + 1, "updated_at": stamp}
        for item_id, quantity in last_lines[["order_item_id", "quantity"]].to_numpy()[raise_quantity].tolist()
    ]
    tally.updates["order_items"] += _update_rows(conn, order_items, "order_item_id", rows)


def purge_stale(conn: Connection, rng: np.random.Generator, now: int, rate: float, tally: ChangeTally) -> None:
    """Purge the oldest cancelled orders (items first) and close accounts that never ordered."""
    cutoff = from_epoch(now - RETENTION_DAYS * DAY)
    cancelled = (
        conn.execute(
            select(orders.c.order_id)
            .where((orders.c.status == "cancelled") & (orders.c.updated_at < cutoff))
            .order_by(orders.c.updated_at, orders.c.order_id)
            .limit(_count(rng, rate * 0.05))
        )
        .scalars()
        .all()
    )
    tally.deletes["order_items"] += _delete_rows(conn, order_items, "order_id", cancelled)
    tally.deletes["orders"] += _delete_rows(conn, orders, "order_id", cancelled)
    has_orders = select(orders.c.customer_id).where(orders.c.customer_id == customers.c.customer_id).exists()
    idle = (
        conn.execute(
            select(customers.c.customer_id)
            .where(~has_orders & (customers.c.signup_ts < cutoff))
            .order_by(customers.c.customer_id)
        )
        .scalars()
        .all()
    )
    if idle:
        chosen = np.sort(rng.choice(len(idle), min(_count(rng, rate * 0.02), len(idle)), replace=False))
        tally.deletes["customers"] += _delete_rows(conn, customers, "customer_id", [idle[i] for i in chosen])


def _check_inputs(engine: Engine, seed: int, steps: int) -> None:
    if not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer from 1 to {MAX_STEPS} (one simulated day each), got {steps!r}")
    check_seed(seed)
    if table_counts(engine)["orders"] == 0:
        raise ValueError(f"source DB {safe_url(engine.url)} has no orders; run the generator first (mlops generate)")


def simulate_activity(
    engine: Engine,
    seed: int,
    steps: int,
    progress: Progress | None = None,
    drift: DriftSpec | None = None,
) -> ActivityResult:
    """Simulate ``steps`` days of shop activity after the newest row, one transaction per day.

    Returns rows inserted, updated and deleted per table. ``progress(done_steps, steps)`` is called
    after each day. ``drift`` shapes the new orders as in the generator.
    """
    _check_inputs(engine, seed, steps)
    drift = drift or DriftSpec()
    began, tally = perf_counter(), ChangeTally()
    with engine.connect() as conn:
        clock = latest_timestamp(conn)
    for step in range(steps):
        now = clock + (step + 1) * DAY
        rng = stream(seed, clock, step)
        with engine.begin() as conn:
            rate = daily_order_rate(conn, now)
            first_new = add_orders(conn, rng, now, rate, drift, tally)
            progress_orders(conn, rng, now, first_new, drift, tally)
            update_customers(conn, rng, now, rate, tally)
            reprice_products(conn, rng, now, tally)
            edit_baskets(conn, rng, now, rate, tally)
            purge_stale(conn, rng, now, rate, tally)
        if progress:
            progress(step + 1, steps)
    return ActivityResult(
        inserts=tally.inserts,
        updates=tally.updates,
        deletes=tally.deletes,
        start=from_epoch(clock),
        end=from_epoch(clock + steps * DAY),
        steps=steps,
        seconds=round(perf_counter() - began, 3),
    )
