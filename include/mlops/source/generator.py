"""The deterministic generator of the e-commerce source data, and its drift knob.

Every table is built with numpy, one vectorised batch at a time, from random streams keyed by
``(seed, first new order id, stage, chunk)``: the same seed and size give identical rows, on
SQLite and PostgreSQL alike. Each order's terminal status is drawn from a multinomial logit of
facts known when the order is placed (channel, payment, promised days, customer tenure and
segment, basket mix, fragile items, discounts) plus hidden customer and product traits that show
up in the history (serial returners, cancellers, defective products). A :class:`DriftSpec`
shifts the feature distributions (covariate) and the feature-to-outcome mapping (concept).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from time import perf_counter

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, ColumnElement, Connection, Engine, cast, func, select

from mlops.source.db import create_schema, insert_columns, safe_url
from mlops.source.schema import (
    CATEGORIES,
    CHANNELS,
    COUNTRIES,
    ORDER_STATUSES,
    PAYMENT_METHODS,
    SEGMENTS,
    SHIPPING_METHODS,
    TABLES,
    customers,
    orders,
    products,
)

MIN_ORDERS, MAX_ORDERS = 100, 5_000_000
MAX_DAYS = 3650
CHUNK_ORDERS = 200_000
DAY = 86_400
EPOCH = datetime(1970, 1, 1)
Progress = Callable[[int, int], None]

_COUNTRY_P = np.array([0.22, 0.15, 0.10, 0.10, 0.07, 0.07, 0.04, 0.10, 0.10, 0.05])
_COUNTRY_P_DRIFT = np.array([0.12, 0.10, 0.08, 0.08, 0.05, 0.07, 0.03, 0.12, 0.20, 0.15])
_COD_COUNTRIES = np.isin(np.array(COUNTRIES), ("ES", "IT", "PL", "BR"))
_SEGMENT_P = np.array([0.85, 0.12, 0.03])
_CHANNEL_P = np.array([0.45, 0.30, 0.15, 0.10])
_CHANNEL_P_DRIFT = np.array([0.25, 0.38, 0.32, 0.05])
_PAYMENT_P = np.array(  # rows: default, cash-on-delivery country, business customer
    [[0.57, 0.25, 0.08, 0.10], [0.42, 0.20, 0.08, 0.30], [0.45, 0.10, 0.40, 0.05]]
)
_SHIPPING_P = np.array([[0.68, 0.22, 0.10], [0.80, 0.20, 0.00]])  # rows: default, marketplace
_LINES_P = np.array([0.42, 0.25, 0.15, 0.09, 0.06, 0.03])
_LINES_P_DRIFT = np.array([0.20, 0.22, 0.20, 0.16, 0.12, 0.10])
_CATEGORY_P = np.array([0.14, 0.22, 0.16, 0.10, 0.10, 0.09, 0.11, 0.08])
_CATEGORY_PRICE = np.array([180.0, 40.0, 55.0, 22.0, 50.0, 28.0, 15.0, 8.0])
_CATEGORY_WEIGHT = np.array([1.2, 0.5, 2.5, 0.3, 1.5, 0.8, 0.6, 1.0])
_CATEGORY_FRAGILE = np.array([0.35, 0.02, 0.30, 0.20, 0.05, 0.08, 0.01, 0.10])
_DISCOUNT_CODES = np.array(["WELCOME10", "SPRING15", "SUMMER20", "VIP25", "FLASH30", "BLACKFRI40"], dtype=object)
_DISCOUNT_CODE_PCT = np.array([10.0, 15.0, 20.0, 25.0, 30.0, 40.0])
_LINE_DISCOUNTS = np.array([5.0, 10.0, 15.0, 20.0])
_HOUR_P = np.array([1, 1, 1, 1, 1, 2, 3, 5, 6, 7, 7, 7, 8, 7, 6, 6, 6, 7, 8, 9, 9, 7, 4, 2], dtype=float)
_WEEKDAY_FACTOR = np.array([1.0, 0.95, 0.95, 1.0, 1.1, 1.25, 1.2])  # Monday first
_EMAIL_DOMAINS = np.array(["example.com", "mail.example", "shop.example", "post.example"], dtype=object)

# Multinomial logit of the terminal status (against "delivered"): intercepts and weights.
_RETURN_BASE, _CANCEL_BASE = -3.1, -3.3
_CAT = {name: i for i, name in enumerate(CATEGORIES)}
_CH = {name: i for i, name in enumerate(CHANNELS)}
_PAY = {name: i for i, name in enumerate(PAYMENT_METHODS)}
_SEG = {name: i for i, name in enumerate(SEGMENTS)}
_SHIP = {name: i for i, name in enumerate(SHIPPING_METHODS)}
_STATUS = {name: i for i, name in enumerate(ORDER_STATUSES)}
_OUTCOME_CODES = np.array([_STATUS["delivered"], _STATUS["returned"], _STATUS["cancelled"]])
_ORDER_HEADER_COLUMNS = (
    "customer_id", "channel", "payment_method", "shipping_method", "ship_country", "promised_days", "discount_code",
)  # fmt: skip


@dataclass(frozen=True)
class DriftSpec:
    """How far a batch drifts from the reference process; each knob is 0 (none) to 1 (strong).

    ``covariate`` moves the feature distributions: channel mix toward marketplace and app, higher
    price levels, larger baskets, more discount codes, more US/BR and cross-border orders.
    ``concept`` changes how features map to the outcome: electronics and home returns climb,
    app-channel cancellations climb, and cash on delivery matters less.
    """

    covariate: float = 0.0
    concept: float = 0.0

    def __post_init__(self) -> None:
        for name in ("covariate", "concept"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"drift {name} must be a number from 0 to 1, got {value!r}; e.g. DriftSpec(0.5, 0.3)")


@dataclass(frozen=True)
class GenerationResult:
    """What one `generate` call wrote: rows per table, wall time and the order time range."""

    counts: dict[str, int]
    seconds: float
    start: datetime
    end: datetime
    first_order_id: int
    last_order_id: int


@dataclass(frozen=True)
class CustomerPool:
    """Customers orders can be assigned to, sorted by signup time (codes index the schema tuples)."""

    customer_id: np.ndarray
    signup_ts: np.ndarray
    country: np.ndarray
    segment: np.ndarray


@dataclass(frozen=True)
class ProductPool:
    """The catalogue orders draw from, with each product's popularity."""

    product_id: np.ndarray
    category: np.ndarray
    unit_price: np.ndarray
    is_fragile: np.ndarray
    popularity: np.ndarray


@dataclass(frozen=True)
class OutcomeFeatures:
    """Per-order facts the terminal status depends on, all known when the order is placed."""

    customer_id: np.ndarray
    channel: np.ndarray
    payment: np.ndarray
    segment: np.ndarray
    promised_days: np.ndarray
    cross_border: np.ndarray
    tenure_days: np.ndarray
    category_share: np.ndarray  # (orders, categories) share of lines per category
    n_lines: np.ndarray
    any_fragile: np.ndarray
    any_defective: np.ndarray
    max_discount: np.ndarray
    basket_value: np.ndarray


def to_epoch(value: datetime) -> int:
    """Seconds since 1970 of a naive UTC datetime."""
    return int((value - EPOCH).total_seconds())


def from_epoch(seconds: int) -> datetime:
    """The naive UTC datetime of epoch seconds."""
    return EPOCH + timedelta(seconds=int(seconds))


def stream(*key: int) -> np.random.Generator:
    """An independent random stream for a key of non-negative integers."""
    return np.random.default_rng([int(k) for k in key])


def unit_hash(ids: np.ndarray, salt: int) -> np.ndarray:
    """A fixed pseudo-random number in [0, 1) per id (splitmix64), the same in every run."""
    with np.errstate(over="ignore"):
        z = np.asarray(ids, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def serial_returner(customer_ids: np.ndarray) -> np.ndarray:
    """Hidden trait: about 10% of customers return far more often (visible in their history)."""
    return unit_hash(customer_ids, 1) < 0.10


def frequent_canceller(customer_ids: np.ndarray) -> np.ndarray:
    """Hidden trait: about 8% of customers cancel far more often (visible in their history)."""
    return unit_hash(customer_ids, 2) < 0.08


def defective_product(product_ids: np.ndarray) -> np.ndarray:
    """Hidden trait: about 5% of products come back far more often."""
    return unit_hash(product_ids, 3) < 0.05


def product_popularity(product_ids: np.ndarray) -> np.ndarray:
    """Zipf-like order probabilities over products, fixed per product id."""
    rank = np.argsort(np.argsort(unit_hash(product_ids, 4)))
    weights = 1.0 / (1.0 + rank) ** 0.6
    return weights / weights.sum()


def _mix(base: np.ndarray, drifted: np.ndarray, amount: float) -> np.ndarray:
    """Probabilities moved ``amount`` of the way from ``base`` to ``drifted``."""
    p = (1.0 - amount) * base + amount * drifted
    return p / p.sum(axis=-1, keepdims=True)


def choose_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (n, k) probability matrix."""
    cumulative = probs.cumsum(axis=1)
    draws = rng.random(len(probs))[:, None] * cumulative[:, -1:]
    return np.minimum((draws >= cumulative).sum(axis=1), probs.shape[1] - 1)


def check_size(orders_count: int, days: int) -> None:
    """Raise ValueError unless the batch size and time span are in range."""
    if not isinstance(orders_count, int) or not MIN_ORDERS <= orders_count <= MAX_ORDERS:
        raise ValueError(f"orders must be an integer from {MIN_ORDERS} to {MAX_ORDERS:,}, got {orders_count!r}")
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be an integer from 1 to {MAX_DAYS}, got {days!r}")


def parse_start(start_date: date | datetime | str) -> int:
    """Epoch seconds of a start date given as a date, naive UTC datetime or ``YYYY-MM-DD`` string."""
    if isinstance(start_date, str):
        try:
            start_date = datetime.fromisoformat(start_date)
        except ValueError:
            raise ValueError(f"start_date must look like 2025-01-01, got {start_date!r}") from None
    if not isinstance(start_date, datetime):
        start_date = datetime(start_date.year, start_date.month, start_date.day)
    if start_date.tzinfo is not None:
        raise ValueError(f"start_date must be naive UTC, got {start_date!r} with a time zone")
    return to_epoch(start_date)


def make_customers(rng: np.random.Generator, first_id: int, signup_ts: np.ndarray, drift: DriftSpec) -> dict:
    """Customer columns for the given sorted signup times; ids count up from ``first_id``."""
    n = len(signup_ts)
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    birth_year = np.round(2007 - np.clip(rng.normal(38, 13, n), 18, 85))
    domains = _EMAIL_DOMAINS[rng.integers(0, len(_EMAIL_DOMAINS), n)]
    return {
        "customer_id": ids,
        "email": np.array([f"user{i}@{d}" for i, d in zip(ids.tolist(), domains.tolist(), strict=True)], dtype=object),
        "country": rng.choice(len(COUNTRIES), n, p=_mix(_COUNTRY_P, _COUNTRY_P_DRIFT, drift.covariate)),
        "segment": rng.choice(len(SEGMENTS), n, p=_SEGMENT_P),
        "birth_year": np.where(rng.random(n) < 0.22, np.nan, birth_year),
        "marketing_opt_in": rng.random(n) < 0.42,
        "signup_ts": signup_ts,
        "updated_at": signup_ts,
    }


def make_products(rng: np.random.Generator, first_id: int, n: int, listed_before: int) -> dict:
    """Product columns: category-dependent prices, weights (10% unmeasured) and fragility."""
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    category = rng.choice(len(CATEGORIES), n, p=_CATEGORY_P)
    price = np.maximum(0.99, _CATEGORY_PRICE[category] * rng.lognormal(0.0, 0.6, n))
    weight = _CATEGORY_WEIGHT[category] * rng.lognormal(0.0, 0.5, n)
    sku = [f"{CATEGORIES[c][:3].upper()}-{i:07d}" for c, i in zip(category.tolist(), ids.tolist(), strict=True)]
    return {
        "product_id": ids,
        "sku": np.array(sku, dtype=object),
        "category": category,
        "unit_price": np.round(price, 2),
        "weight_kg": np.where(rng.random(n) < 0.10, np.nan, np.round(weight, 3)),
        "is_fragile": rng.random(n) < _CATEGORY_FRAGILE[category],
        "updated_at": listed_before - rng.integers(DAY, 365 * DAY, n),
    }


def order_times(rng: np.random.Generator, n: int, start: int, days: int) -> np.ndarray:
    """Sorted order timestamps over ``days`` from ``start``: growth, weekly and year-end peaks, busy evenings."""
    day = np.arange(days)
    weekday = (start // DAY + 3 + day) % 7  # 1970-01-01 was a Thursday
    day_of_year = ((start // DAY + day) % 365.25).astype(float)
    weights = (1.0 + 0.5 * day / max(days, 1)) * _WEEKDAY_FACTOR[weekday]
    weights *= 1.0 + 0.4 * np.exp(-(((day_of_year - 330.0) / 20.0) ** 2))
    chosen_day = rng.choice(days, n, p=weights / weights.sum())
    hour = rng.choice(24, n, p=_HOUR_P / _HOUR_P.sum())
    return np.sort(start + chosen_day * DAY + hour * 3600 + rng.integers(0, 3600, n))


def assign_customers(rng: np.random.Generator, order_ts: np.ndarray, pool: CustomerPool) -> np.ndarray:
    """Pool index of each order's customer: a signed-up one, loyal early customers and recent sign-ups favoured."""
    signed_up = np.maximum(np.searchsorted(pool.signup_ts, order_ts, side="right"), 1)
    recent = signed_up - np.searchsorted(pool.signup_ts, order_ts - 30 * DAY, side="right")
    loyal = np.floor(signed_up * rng.random(len(order_ts)) ** 1.6).astype(np.int64)
    newcomer = signed_up - 1 - np.floor(np.maximum(recent, 1) * rng.random(len(order_ts))).astype(np.int64)
    pick_new = (rng.random(len(order_ts)) < 0.22) & (recent > 0)
    return np.where(pick_new, newcomer, loyal)


def basket_features(
    order_pos: np.ndarray,
    n_orders: int,
    category: np.ndarray,
    fragile: np.ndarray,
    defective: np.ndarray,
    discount_pct: np.ndarray,
    quantity: np.ndarray,
    unit_price: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per-order aggregates of item lines (``order_pos`` maps each line to its order's position)."""
    n_lines = np.bincount(order_pos, minlength=n_orders)
    counts = np.bincount(order_pos * len(CATEGORIES) + category, minlength=n_orders * len(CATEGORIES))
    max_discount = np.zeros(n_orders)
    np.maximum.at(max_discount, order_pos, np.nan_to_num(discount_pct))
    return {
        "n_lines": n_lines,
        "category_share": counts.reshape(n_orders, len(CATEGORIES)) / np.maximum(n_lines, 1)[:, None],
        "any_fragile": np.bincount(order_pos, weights=fragile, minlength=n_orders) > 0,
        "any_defective": np.bincount(order_pos, weights=defective, minlength=n_orders) > 0,
        "max_discount": max_discount,
        "basket_value": np.bincount(order_pos, weights=quantity * unit_price, minlength=n_orders),
    }


def outcome_probabilities(f: OutcomeFeatures, drift: DriftSpec) -> np.ndarray:
    """(orders, 3) probabilities of delivered, returned, cancelled under the (drifted) outcome model."""
    share = f.category_share
    cod = f.payment == _PAY["cash_on_delivery"]
    cancel = (
        _CANCEL_BASE
        + (1.5 - 0.8 * drift.concept) * cod
        + 0.9 * (f.channel == _CH["marketplace"])
        + 0.35 * (f.channel == _CH["phone"])
        + 0.5 * (f.payment == _PAY["bank_transfer"])
        + 0.14 * (f.promised_days - 4)
        + 1.0 * (f.tenure_days < 7)
        + 1.6 * frequent_canceller(f.customer_id)
        - 0.7 * (f.segment == _SEG["vip"])
        + 0.4 * f.cross_border
        + 0.2 * np.log1p(f.basket_value / 100.0)
        + 1.4 * drift.concept * (f.channel == _CH["app"])
    )
    returned = (
        _RETURN_BASE
        + 1.3 * share[:, _CAT["apparel"]]
        + 0.9 * share[:, _CAT["electronics"]]
        - 0.9 * share[:, _CAT["grocery"]]
        - 0.6 * share[:, _CAT["books"]]
        + 0.5 * f.any_fragile
        + 0.035 * f.max_discount
        + 0.2 * (f.n_lines - 1)
        + 1.8 * serial_returner(f.customer_id)
        + 1.0 * f.any_defective
        - 0.5 * (f.segment == _SEG["business"])
        + drift.concept * (2.0 * share[:, _CAT["electronics"]] + 1.2 * share[:, _CAT["home"]])
    )
    logits = np.column_stack([np.zeros(len(cancel)), returned, cancel])
    expo = np.exp(logits - logits.max(axis=1, keepdims=True))
    return expo / expo.sum(axis=1, keepdims=True)


def order_status(
    rng: np.random.Generator, outcome: np.ndarray, order_ts: np.ndarray, promised_days: np.ndarray, now: int
) -> tuple[np.ndarray, np.ndarray]:
    """Status codes and last-change times as of ``now``, given each order's terminal outcome code."""
    n = len(order_ts)
    shipped_at = order_ts + (2 * 3600 + rng.gamma(2.0, 10 * 3600, n)).astype(np.int64)
    cancelled_at = order_ts + ((shipped_at - order_ts) * rng.uniform(0.2, 0.9, n)).astype(np.int64)
    delivered_at = shipped_at + (promised_days * DAY * rng.uniform(0.6, 1.2, n)).astype(np.int64)
    returned_at = delivered_at + rng.integers(3 * DAY, 21 * DAY, n)
    outcome_at = np.select(
        [outcome == _STATUS["cancelled"], outcome == _STATUS["returned"]], [cancelled_at, returned_at], delivered_at
    )
    done = outcome_at <= now
    shipped = ~done & (outcome != _STATUS["cancelled"]) & (shipped_at <= now)
    status = np.where(done, outcome, np.where(shipped, _STATUS["shipped"], _STATUS["placed"]))
    updated_at = np.where(done, outcome_at, np.where(shipped, shipped_at, order_ts))
    return status, updated_at


def order_headers(
    rng: np.random.Generator, order_ts: np.ndarray, customer_pool: CustomerPool, drift: DriftSpec
) -> dict[str, np.ndarray]:
    """Order-level choices (codes): customer, channel, payment, shipping, destination, promise, discount code."""
    n = len(order_ts)
    cust = assign_customers(rng, order_ts, customer_pool)
    country, segment = customer_pool.country[cust], customer_pool.segment[cust]
    channel = rng.choice(len(CHANNELS), n, p=_mix(_CHANNEL_P, _CHANNEL_P_DRIFT, drift.covariate))
    marketplace = channel == _CH["marketplace"]
    payment_row = np.where(segment == _SEG["business"], 2, _COD_COUNTRIES[country].astype(int))
    shipping = choose_rows(rng, _SHIPPING_P[marketplace.astype(int)])
    cross_border = rng.random(n) < 0.04 + 0.10 * drift.covariate
    promised = np.select(
        [shipping == _SHIP["express"], shipping == _SHIP["pickup"]],
        [rng.integers(1, 3, n), rng.integers(2, 5, n)],
        rng.integers(3, 7, n),
    )
    tenure_days = (order_ts - customer_pool.signup_ts[cust]) / DAY
    newcomer = tenure_days < 7
    uses_code = rng.random(n) < np.where(newcomer, 0.35, 0.15 + 0.15 * drift.covariate)
    return {
        "customer_id": customer_pool.customer_id[cust],
        "segment": segment,
        "tenure_days": tenure_days,
        "channel": channel,
        "payment_method": choose_rows(rng, _PAYMENT_P[payment_row]),
        "shipping_method": shipping,
        "cross_border": cross_border,
        "ship_country": np.where(
            cross_border, (country + rng.integers(1, len(COUNTRIES), n)) % len(COUNTRIES), country
        ),
        "promised_days": promised + 3 * cross_border + marketplace * rng.integers(0, 8, n) * (rng.random(n) < 0.5),
        "discount_code": np.where(uses_code, np.where(newcomer, 0, rng.integers(1, len(_DISCOUNT_CODES), n)), -1),
    }


def order_lines(
    rng: np.random.Generator, discount_code: np.ndarray, product_pool: ProductPool, drift: DriftSpec
) -> dict[str, np.ndarray]:
    """Item lines (1 to 6 per order) with ``order_pos``, the position of each line's order in the batch."""
    n_lines = rng.choice(6, len(discount_code), p=_mix(_LINES_P, _LINES_P_DRIFT, drift.covariate)) + 1
    pos = np.repeat(np.arange(len(discount_code)), n_lines)
    prod = rng.choice(len(product_pool.product_id), len(pos), p=product_pool.popularity)
    category = product_pool.category[prod]
    grocery_extra = (category == _CAT["grocery"]) * rng.binomial(2, 0.3, len(pos))
    code_pct = np.where(discount_code >= 0, _DISCOUNT_CODE_PCT[np.maximum(discount_code, 0)], np.nan)[pos]
    line_draw = rng.random(len(pos))
    own_discount = _LINE_DISCOUNTS[rng.integers(0, len(_LINE_DISCOUNTS), len(pos))]
    return {
        "order_pos": pos,
        "product_id": product_pool.product_id[prod],
        "category": category,
        "is_fragile": product_pool.is_fragile[prod],
        "quantity": 1 + rng.binomial(3, 0.08, len(pos)) + grocery_extra,
        "unit_price": np.round(product_pool.unit_price[prod] * (1.0 + 0.3 * drift.covariate), 2),
        "discount_pct": np.where(
            np.isnan(code_pct),
            np.where(line_draw < 0.08, own_discount, np.nan),
            np.where(line_draw < 0.8, code_pct, np.nan),
        ),
    }


def build_orders(
    rng: np.random.Generator,
    first_order_id: int,
    first_item_id: int,
    order_ts: np.ndarray,
    customer_pool: CustomerPool,
    product_pool: ProductPool,
    drift: DriftSpec,
    now: int,
) -> tuple[dict, dict]:
    """Order and order-item columns for sorted ``order_ts``, with statuses as of ``now``."""
    head = order_headers(rng, order_ts, customer_pool, drift)
    lines = order_lines(rng, head["discount_code"], product_pool, drift)
    pos = lines["order_pos"]
    basket = basket_features(
        pos, len(order_ts), lines["category"], lines["is_fragile"], defective_product(lines["product_id"]),
        lines["discount_pct"], lines["quantity"], lines["unit_price"],
    )  # fmt: skip
    features = OutcomeFeatures(
        customer_id=head["customer_id"], channel=head["channel"], payment=head["payment_method"],
        segment=head["segment"], promised_days=head["promised_days"], cross_border=head["cross_border"],
        tenure_days=head["tenure_days"], **basket,
    )  # fmt: skip
    outcome = _OUTCOME_CODES[choose_rows(rng, outcome_probabilities(features, drift))]
    status, updated_at = order_status(rng, outcome, order_ts, head["promised_days"], now)
    standard_fee = np.where(basket["basket_value"] < 50, 4.99, 0.0)
    fee = np.select([head["shipping_method"] == _SHIP["standard"], head["shipping_method"] == _SHIP["express"]],
                    [standard_fee, 9.99], 0.0)  # fmt: skip
    order_ids = np.arange(first_order_id, first_order_id + len(order_ts), dtype=np.int64)
    order_cols = {
        "order_id": order_ids,
        "order_ts": order_ts,
        **{name: head[name] for name in _ORDER_HEADER_COLUMNS},
        "shipping_fee": fee + 7.5 * head["cross_border"],
        "status": status,
        "updated_at": updated_at,
    }
    item_cols = {
        "order_item_id": np.arange(first_item_id, first_item_id + len(pos), dtype=np.int64),
        "order_id": order_ids[pos],
        **{name: lines[name] for name in ("product_id", "quantity", "unit_price", "discount_pct")},
        "updated_at": order_ts[pos],
    }
    return order_cols, item_cols


_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "country": COUNTRIES,
    "ship_country": COUNTRIES,
    "segment": SEGMENTS,
    "category": CATEGORIES,
    "channel": CHANNELS,
    "payment_method": PAYMENT_METHODS,
    "shipping_method": SHIPPING_METHODS,
    "status": ORDER_STATUSES,
    "discount_code": tuple(_DISCOUNT_CODES),
}


def decode(columns: dict) -> dict:
    """Replace categorical codes by their strings (code -1 becomes NULL)."""
    out = dict(columns)
    for name, vocabulary in _VOCABULARIES.items():
        if name in out:
            codes = np.asarray(out[name])
            values = np.array((*vocabulary, None), dtype=object)[np.where(codes < 0, len(vocabulary), codes)]
            out[name] = values
    return out


def encode(values: pd.Series, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Categorical codes of string values (NULL or unknown become -1)."""
    return pd.Categorical(values, categories=list(vocabulary)).codes.astype(np.int64)


def insert(conn: Connection, table_name: str, columns: dict) -> int:
    """Decode categoricals and insert a batch of columns; returns rows written."""
    return insert_columns(conn, table_name, decode(columns))


def sql_epoch(conn: Connection, column: ColumnElement) -> ColumnElement:
    """A SQL expression for a timestamp column's epoch seconds (avoids building datetime objects)."""
    if conn.dialect.name == "postgresql":
        return cast(func.extract("epoch", column), BigInteger)
    return cast(func.strftime("%s", column), BigInteger)


def load_customer_pool(conn: Connection) -> CustomerPool:
    """The customers in the database, sorted by signup time."""
    signup = sql_epoch(conn, customers.c.signup_ts).label("signup_epoch")
    query = select(customers.c.customer_id, signup, customers.c.country, customers.c.segment)
    frame = pd.read_sql(query.order_by(customers.c.signup_ts, customers.c.customer_id), conn)
    return CustomerPool(
        customer_id=frame["customer_id"].to_numpy(np.int64),
        signup_ts=frame["signup_epoch"].to_numpy(np.int64),
        country=encode(frame["country"], COUNTRIES),
        segment=encode(frame["segment"], SEGMENTS),
    )


def load_product_pool(conn: Connection) -> ProductPool:
    """The products in the database, in id order, with their popularity."""
    query = select(products.c.product_id, products.c.category, products.c.unit_price, products.c.is_fragile)
    frame = pd.read_sql(query.order_by(products.c.product_id), conn)
    ids = frame["product_id"].to_numpy(np.int64)
    return ProductPool(
        product_id=ids,
        category=encode(frame["category"], CATEGORIES),
        unit_price=frame["unit_price"].to_numpy(float),
        is_fragile=frame["is_fragile"].to_numpy(bool),
        popularity=product_popularity(ids),
    )


def next_ids(conn: Connection) -> dict[str, int]:
    """The next free primary key of every source table."""
    return {
        name: int(conn.execute(select(func.coalesce(func.max(table.primary_key.columns[0]), 0))).scalar_one()) + 1
        for name, table in TABLES.items()
    }


def latest_timestamp(conn: Connection) -> int | None:
    """Epoch seconds of the newest timestamp anywhere in the source tables (None when all are empty)."""
    latest = [
        conn.execute(select(func.max(column))).scalar_one()
        for column in (customers.c.updated_at, products.c.updated_at, orders.c.order_ts, orders.c.updated_at)
    ]
    known = [to_epoch(value) for value in latest if value is not None]
    return max(known) if known else None


def new_customer_rows(
    rng: np.random.Generator, n_orders: int, start: int, end: int, first_id: int, drift: DriftSpec
) -> dict:
    """Customers for a batch of ``n_orders``: a fresh shop gets a base that signed up in the two years
    before ``start`` plus sign-ups during the span; a shop that has customers only gets new sign-ups."""
    if first_id == 1:
        n = max(n_orders // 5, 20)
        n_before = max(int(n * 0.4), 1)
        signup = np.concatenate(
            [rng.integers(start - 730 * DAY, start, n_before), rng.integers(start, end, n - n_before)]
        )
    else:
        signup = rng.integers(start, end, max(n_orders // 12, 1))
    return make_customers(rng, first_id, np.sort(signup), drift)


def catalogue_size(n_orders: int) -> int:
    """How many products a fresh shop of ``n_orders`` orders lists (300 to 4,000)."""
    return int(np.clip(3 * math.sqrt(n_orders), 300, 4000))


def check_seed(seed: int) -> None:
    """Raise ValueError unless ``seed`` is a non-negative integer."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def generate(
    engine: Engine,
    orders: int,
    seed: int,
    start_date: date | datetime | str = "2025-01-01",
    days: int = 540,
    drift: DriftSpec | None = None,
    progress: Progress | None = None,
    append: bool = False,
) -> GenerationResult:
    """Write ``orders`` orders (with their customers, products and items) into the source DB.

    A fresh run needs empty tables and spans ``days`` from ``start_date``. With ``append=True``
    the batch continues ids and time after the newest row already there (``start_date`` is then
    ignored), reusing existing customers and products. Everything is written in one transaction;
    ``progress(done_orders, total_orders)`` is called after every chunk.
    """
    check_size(orders, days)
    check_seed(seed)
    drift = drift or DriftSpec()
    began = perf_counter()
    create_schema(engine)
    with engine.begin() as conn:
        ids = next_ids(conn)
        latest = latest_timestamp(conn)
        if latest is not None and not append:
            raise ValueError(
                f"source DB {safe_url(engine.url)} already holds data; pass append=True to add a batch after it, "
                "or call reset_schema(engine) (or delete the SQLite file) to start over"
            )
        start = latest + 1 if latest is not None else parse_start(start_date)
        end = start + days * DAY
        key = (seed, ids["orders"])
        counts = _insert_entities(conn, key, ids, orders, start, end, drift)
        pools = (load_customer_pool(conn), load_product_pool(conn))
        order_counts = _insert_orders(conn, key, ids, orders, (start, end, days), pools, drift, progress)
        counts.update(order_counts)
    return GenerationResult(
        counts=counts,
        seconds=round(perf_counter() - began, 3),
        start=from_epoch(start),
        end=from_epoch(end),
        first_order_id=ids["orders"],
        last_order_id=ids["orders"] + orders - 1,
    )


def _insert_entities(
    conn: Connection, key: tuple[int, int], ids: dict[str, int], orders: int, start: int, end: int, drift: DriftSpec
) -> dict[str, int]:
    """The batch's new customers, and the product catalogue on a fresh DB; rows written per table."""
    counts = dict.fromkeys(TABLES, 0)
    counts["customers"] = insert(
        conn, "customers", new_customer_rows(stream(*key, 0), orders, start, end, ids["customers"], drift)
    )
    if ids["products"] == 1:
        counts["products"] = insert(conn, "products", make_products(stream(*key, 1), 1, catalogue_size(orders), start))
    return counts


def _insert_orders(
    conn: Connection,
    key: tuple[int, int],
    ids: dict[str, int],
    orders: int,
    span: tuple[int, int, int],
    pools: tuple[CustomerPool, ProductPool],
    drift: DriftSpec,
    progress: Progress | None,
) -> dict[str, int]:
    """Orders and their items in chunks of CHUNK_ORDERS, reporting progress; rows written per table."""
    start, end, days = span
    order_ts = order_times(stream(*key, 2), orders, start, days)
    next_item, counts = ids["order_items"], {"orders": 0, "order_items": 0}
    if progress:
        progress(0, orders)
    for chunk, low in enumerate(range(0, orders, CHUNK_ORDERS)):
        batch_ts = order_ts[low : low + CHUNK_ORDERS]
        order_cols, item_cols = build_orders(
            stream(*key, 3, chunk), ids["orders"] + low, next_item, batch_ts, *pools, drift, end
        )
        counts["orders"] += insert(conn, "orders", order_cols)
        counts["order_items"] += insert(conn, "order_items", item_cols)
        next_item += len(item_cols["order_item_id"])
        if progress:
            progress(low + len(batch_ts), orders)
    return counts
