"""The Great Expectations suite of the curated features table, as code.

:func:`expectation_specs` lists every expectation as plain data (type name + kwargs), built
from the curated-table contract in :mod:`mlops.schema.curated` and :class:`SuiteBounds`.
It covers schema (exact ordered columns), pandas dtypes, nulls, value ranges, allowed
categories (with a tolerance for unseen ones), a unique key, row-count bounds and per-class
label-share bounds. GX is imported only where the suite is built, never at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops.schema.curated import (
    CATEGORICAL_FEATURES,
    CURATED_COLUMNS,
    KEY,
    LABEL,
    LABEL_CLASSES,
    NULLABLE_COLUMNS,
    SHARE_FEATURES,
    SPLIT,
    SPLITS,
    curated_types,
)
from mlops.source.vocabulary import CATEGORIES, CHANNELS, COUNTRIES, PAYMENT_METHODS, SEGMENTS, SHIPPING_METHODS

SUITE_NAME = "curated_features"

# Spark/Hive type of the contract -> pandas dtype names accepted for it.
PANDAS_TYPES = {
    "bigint": ["int64", "Int64"],
    "int": ["int32", "Int32", "int64", "Int64"],
    "double": ["float64", "Float64"],
    "string": ["object", "string", "str", "category"],
    "timestamp": ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[ns, UTC]", "datetime64[us, UTC]"],
}

ALLOWED_CATEGORIES: dict[str, tuple[str, ...]] = {
    "channel": CHANNELS,
    "payment_method": PAYMENT_METHODS,
    "shipping_method": SHIPPING_METHODS,
    "ship_country": COUNTRIES,
    "customer_country": COUNTRIES,
    "customer_segment": SEGMENTS,
    "top_category": (*CATEGORIES, "unknown", "none"),
}

# column -> (min, max); None = unbounded on that side.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "promised_days": (0, 90),
    "shipping_fee": (0, 1_000),
    "has_discount_code": (0, 1),
    "cross_border": (0, 1),
    "marketing_opt_in": (0, 1),
    "customer_age": (0, 120),
    "customer_tenure_days": (0, 36_500),
    "basket_lines": (0, 500),
    "basket_units": (0, 10_000),
    "basket_gross": (0, 1_000_000),
    "basket_value": (0, 1_000_000),
    "avg_unit_price": (0, 100_000),
    "max_unit_price": (0, 100_000),
    "distinct_categories": (0, len(CATEGORIES) + 1),
    "fragile_units": (0, 10_000),
    "basket_weight_kg": (0, 100_000),
    "order_hour": (0, 23),
    "order_dow": (1, 7),
    "order_month": (1, 12),
    "is_weekend": (0, 1),
    "prior_orders": (0, None),
    "prior_spend": (0, None),
    "prior_terminal_orders": (0, None),
    "prior_return_rate": (0, 1),
    "prior_cancel_rate": (0, 1),
    "prior_return_rate_smoothed": (0, 1),
    "prior_cancel_rate_smoothed": (0, 1),
    "days_since_prev_order": (0, None),
    "max_discount_pct": (0, 100),
    **dict.fromkeys(SHARE_FEATURES, (0, 1)),
    "product_return_rate_max": (0, 1),
    "product_return_rate_mean": (0, 1),
    "product_cancel_rate_mean": (0, 1),
    "product_prior_terminal_min": (0, None),
}


@dataclass(frozen=True)
class SuiteBounds:
    """The tunable limits of the suite (DAG Params can override the row counts)."""

    min_rows: int = 100
    max_rows: int = 10_000_000
    # label -> (min share, max share) of rows
    label_shares: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {"delivered": (0.40, 0.98), "returned": (0.005, 0.40), "cancelled": (0.005, 0.40)}
    )
    # share of rows a categorical column may have outside its allowed set
    unseen_category_tolerance: float = 0.01
    # most rows a nullable column may have null
    max_null_share: dict[str, float] = field(
        default_factory=lambda: {"customer_age": 0.30, "days_since_prev_order": 0.95}
    )
    # share of rows allowed outside a column's range (customer_tenure_days, ...: source quirks)
    range_tolerance: float = 0.0


def expectation_specs(bounds: SuiteBounds | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Every expectation of the suite as ``(ExpectationClassName, kwargs)``; pure data."""
    b = bounds or SuiteBounds()
    specs: list[tuple[str, dict[str, Any]]] = [
        ("ExpectTableColumnsToMatchOrderedList", {"column_list": list(CURATED_COLUMNS)}),
        ("ExpectTableRowCountToBeBetween", {"min_value": b.min_rows, "max_value": b.max_rows}),
        ("ExpectColumnValuesToBeUnique", {"column": KEY}),
    ]
    for column, kind in curated_types().items():
        specs.append(("ExpectColumnValuesToBeInTypeList", {"column": column, "type_list": PANDAS_TYPES[kind]}))
    for column in CURATED_COLUMNS:
        if column in NULLABLE_COLUMNS:
            mostly = round(1.0 - b.max_null_share.get(column, 0.0), 6)
            specs.append(("ExpectColumnValuesToNotBeNull", {"column": column, "mostly": mostly}))
        else:
            specs.append(("ExpectColumnValuesToNotBeNull", {"column": column}))
    for column, (low, high) in RANGES.items():
        kwargs: dict[str, Any] = {"column": column, "min_value": low, "max_value": high}
        if b.range_tolerance:
            kwargs["mostly"] = 1.0 - b.range_tolerance
        specs.append(("ExpectColumnValuesToBeBetween", kwargs))
    for column in CATEGORICAL_FEATURES:
        specs.append(
            (
                "ExpectColumnValuesToBeInSet",
                {
                    "column": column,
                    "value_set": list(ALLOWED_CATEGORIES[column]),
                    "mostly": 1.0 - b.unseen_category_tolerance,
                },
            )
        )
    specs.append(("ExpectColumnValuesToBeInSet", {"column": LABEL, "value_set": list(LABEL_CLASSES)}))
    specs.append(("ExpectColumnValuesToBeInSet", {"column": SPLIT, "value_set": list(SPLITS)}))
    for label, (low, high) in b.label_shares.items():
        # share(label) >= low  <=>  at least `low` of the rows are in {label}
        specs.append(("ExpectColumnValuesToBeInSet", {"column": LABEL, "value_set": [label], "mostly": low}))
        # share(label) <= high <=>  at least `1 - high` of the rows are not in {label}
        specs.append(("ExpectColumnValuesToNotBeInSet", {"column": LABEL, "value_set": [label], "mostly": 1 - high}))
    return specs


def build_suite(bounds: SuiteBounds | None = None) -> Any:
    """The GX ExpectationSuite object of :func:`expectation_specs`."""
    import great_expectations as gx

    expectations = [getattr(gx.expectations, name)(**kwargs) for name, kwargs in expectation_specs(bounds)]
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations)  # add_expectation: quadratic duplicate check
