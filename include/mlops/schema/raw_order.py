"""A raw order, as a checkout knows it, turned into the curated feature row the model was trained on.

The request carries the source schema's order fields (:mod:`mlops.source.schema`: ``customer_id``,
``order_ts``, ``channel``, ``payment_method``, ``shipping_method``, ``ship_country``, ``promised_days``,
``shipping_fee``, ``discount_code``) and its ``lines`` (``product_id``, ``quantity``, ``unit_price``,
``discount_pct``). The customer's profile and history and each product's attributes and history come from
the online store (one BatchGetRecord, :mod:`mlops.schema.online_store` locally), and the order-level
features follow the features jobs' rules (:mod:`mlops.etl.build_features`): basket aggregates, category
shares, ``max_discount_pct``, calendar fields, and :func:`mlops.schema.feature_groups.customer_history_values`
/ :func:`~mlops.schema.feature_groups.product_history_values` for the entity features.

Standard library only: shipped in the model package next to ``inference.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from mlops.schema.curated import SHARE_CATEGORIES
from mlops.schema.feature_groups import (
    CUSTOMER_HISTORY,
    PRODUCT_HISTORY,
    customer_history_values,
    product_history_values,
    record_values,
)

ORDER_FIELDS = ("customer_id", "order_ts", "channel", "payment_method", "shipping_method", "ship_country",
                "promised_days", "shipping_fee")  # fmt: skip
LINE_FIELDS = ("product_id", "quantity", "unit_price")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RawOrderError(ValueError):
    """A raw order is malformed; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def is_raw_order(instance: Any) -> bool:
    """A raw order carries ``lines`` (a featurized row never does)."""
    return isinstance(instance, dict) and "lines" in instance


def order_time(text: Any, field: str) -> datetime:
    """The order time (ISO 8601; naive means UTC) as an aware UTC datetime."""
    try:
        ts = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise RawOrderError(field, f"must be an ISO 8601 time like 2026-01-31T12:00:00Z, got {text!r:.40}") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def micros(ts: datetime) -> int:
    """Microseconds since the epoch (exact)."""
    delta = ts - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def check_order(order: Mapping[str, Any], where: str) -> None:
    """RawOrderError naming the first missing field of the order or of one of its lines."""
    missing = [f for f in ORDER_FIELDS if order.get(f) is None]
    if missing:
        raise RawOrderError(f"{where}.{missing[0]}", f"missing; a raw order needs {', '.join(ORDER_FIELDS)} and lines")
    if not isinstance(order["lines"], list):
        raise RawOrderError(f"{where}.lines", "must be a list of {product_id, quantity, unit_price, discount_pct}")
    for i, line in enumerate(order["lines"]):
        absent = [f for f in LINE_FIELDS if not isinstance(line, dict) or line.get(f) is None]
        if absent:
            raise RawOrderError(
                f"{where}.lines[{i}].{absent[0]}", f"missing; every line needs {', '.join(LINE_FIELDS)}"
            )


def basket(lines: list[Mapping[str, Any]], products: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """The basket aggregates of the jobs' ``basket_features`` (zeros and ``none`` without lines)."""
    rows = []
    for line in lines:
        product = products.get(int(line["product_id"])) or {}
        qty, price = int(line["quantity"]), float(line["unit_price"])
        discount = float(line.get("discount_pct") or 0.0)
        weight = product.get("weight_kg")
        rows.append((qty, price, qty * price, qty * price * (1.0 - discount / 100.0),
                     product.get("category") or "unknown", qty * (weight if weight is not None else 0.0),
                     qty if product.get("is_fragile") else 0, discount))  # fmt: skip
    n = len(rows)
    out = {
        "basket_lines": n,
        "basket_units": sum(r[0] for r in rows),
        "basket_gross": math.fsum(r[2] for r in rows),
        "basket_value": math.fsum(r[3] for r in rows),
        "avg_unit_price": math.fsum(r[1] for r in rows) / n if n else 0.0,
        "max_unit_price": max((r[1] for r in rows), default=0.0),
        "distinct_categories": len({r[4] for r in rows}),
        "fragile_units": sum(r[6] for r in rows),
        "basket_weight_kg": math.fsum(r[5] for r in rows),
        "top_category": max(((r[3], r[4]) for r in rows), default=(0.0, "none"))[1],
        "max_discount_pct": max((r[7] for r in rows), default=0.0),
    }
    out.update({f"share_{c}": (sum(r[4] == c for r in rows) / n if n else 0.0) for c in SHARE_CATEGORIES})
    return out


def order_fields(order: Mapping[str, Any], ts: datetime, customer: Mapping[str, Any]) -> dict[str, Any]:
    """The order's own and calendar features, and those from the customer's profile."""
    birth, signup = customer.get("birth_year"), customer.get("signup_micros")
    dow = ts.isoweekday()
    return {
        "channel": order["channel"], "payment_method": order["payment_method"],
        "shipping_method": order["shipping_method"], "ship_country": order["ship_country"],
        "customer_country": customer.get("country"), "customer_segment": customer.get("segment"),
        "promised_days": int(order["promised_days"]), "shipping_fee": float(order["shipping_fee"]),
        "has_discount_code": int(order.get("discount_code") is not None),
        "cross_border": int(order["ship_country"] != customer.get("country")),
        "marketing_opt_in": int(customer.get("marketing_opt_in") or 0),
        "customer_age": None if birth is None else ts.year - float(birth),
        "customer_tenure_days": None if signup is None else (micros(ts) // 10**6 - int(signup) // 10**6) / 86400.0,
        "order_hour": ts.hour, "order_dow": dow, "order_month": ts.month, "is_weekend": int(dow >= 6),
    }  # fmt: skip


def lookup(order: Mapping[str, Any], batch_get_record: Callable[..., dict], prefix: str) -> tuple[dict, dict]:
    """The customer's record and each of the order's products' records (product id -> values), one BatchGetRecord."""
    customer_group, product_group = f"{prefix}-{CUSTOMER_HISTORY.name}", f"{prefix}-{PRODUCT_HISTORY.name}"
    product_ids = list(dict.fromkeys(str(int(line["product_id"])) for line in order["lines"]))
    identifiers = [
        {"FeatureGroupName": customer_group, "RecordIdentifiersValueAsString": [str(int(order["customer_id"]))]}
    ]
    if product_ids:
        identifiers.append({"FeatureGroupName": product_group, "RecordIdentifiersValueAsString": product_ids})
    customer, products = None, {}
    for found in batch_get_record(Identifiers=identifiers).get("Records", []):
        if found["FeatureGroupName"] == customer_group:
            customer = record_values(CUSTOMER_HISTORY, found["Record"])
        else:
            values = record_values(PRODUCT_HISTORY, found["Record"])
            products[values["product_id"]] = values
    return customer, products


def featurize(
    order: Mapping[str, Any], batch_get_record: Callable[..., dict], prefix: str, where: str = "instance"
) -> dict:
    """The curated feature row of a raw order (see the module docstring); RawOrderError for a bad order or an
    unknown customer (the jobs leave orders of unknown customers out of training too)."""
    check_order(order, where)
    ts = order_time(order["order_ts"], f"{where}.order_ts")
    customer, products = lookup(order, batch_get_record, prefix)
    if customer is None:
        raise RawOrderError(f"{where}.customer_id", f"customer {order['customer_id']} is not in the online store")
    distinct = list(dict.fromkeys(int(line["product_id"]) for line in order["lines"]))
    return {
        **order_fields(order, ts, customer),
        **basket(order["lines"], products),
        **customer_history_values(customer, micros(ts)),
        **product_history_values([products.get(p) for p in distinct]),
    }
