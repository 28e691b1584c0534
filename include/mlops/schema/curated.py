"""The curated features table: its columns, their types and meaning. The contract between the jobs.

The Glue ETL job (:mod:`mlops.etl.build_features`) writes this table; the validation job's suite
(:mod:`mlops.validation.features_suite`), the Glue Data Catalog tables
(:mod:`mlops.aws.glue_requests`), the EDA and training read it. Standard library only: the Glue jobs
get this package in their ``--extra-py-files`` bundle (:mod:`mlops.etl.bundle`).

Curated table schema (the contract with training)
--------------------------------------------------
Key ``order_id``; label ``label``; split ``split`` (Hive partition ``split=train|validation|test``).

==========================  ==========  =====================================================
column                      type        meaning
==========================  ==========  =====================================================
order_id                    bigint      key (unique)
customer_id                 bigint      identifier, not a feature
order_ts                    timestamp   order time (UTC), not a feature
channel                     string      categorical: web, app, marketplace, phone
payment_method              string      categorical: card, paypal, bank_transfer, cash_on_delivery
shipping_method             string      categorical: standard, express, pickup
ship_country                string      categorical: 2-letter country
customer_country            string      categorical: 2-letter country
customer_segment            string      categorical: consumer, business, vip
top_category                string      categorical: category of the highest-value line;
                                        ``unknown`` (product gone) or ``none`` (no lines)
promised_days               int         promised delivery days
shipping_fee                double      shipping fee
has_discount_code           int         1 if a discount code was used
cross_border                int         1 if ship_country != customer_country
marketing_opt_in            int         1 if the customer opted in
customer_age                double      order year - birth year; NULL if birth year unknown
customer_tenure_days        double      days from signup to order
basket_lines                int         number of order lines
basket_units                int         sum of quantities
basket_gross                double      sum(quantity * unit_price)
basket_value                double      sum(quantity * unit_price * (1 - discount_pct/100))
avg_unit_price              double      mean line unit price (0 with no lines)
max_unit_price              double      max line unit price (0 with no lines)
distinct_categories         int         distinct product categories
fragile_units               int         units of fragile products
basket_weight_kg            double      sum(quantity * weight_kg); unknown weights count 0
max_discount_pct            double      largest line discount_pct (0 without discounts or lines)
share_<category>            double      share of the order's lines in that product category, one
                                        column per ``SHARE_CATEGORIES`` (0 with no lines)
order_hour                  int         0..23
order_dow                   int         ISO day of week, 1 = Monday .. 7 = Sunday
order_month                 int         1..12
is_weekend                  int         1 on Saturday/Sunday
prior_orders                int         customer's orders strictly before this one
prior_spend                 double      their summed basket_value
prior_terminal_orders       int         prior orders whose outcome was known before this one
prior_return_rate           double      returned / prior_terminal_orders (0 if none)
prior_cancel_rate           double      cancelled / prior_terminal_orders (0 if none)
prior_return_rate_smoothed  double      the customer's returned count shrunk to the prior:
                                        ``(returned + CUSTOMER_RATE_PRIOR_ORDERS * prior) /
                                        (prior_terminal_orders + CUSTOMER_RATE_PRIOR_ORDERS)`` with the
                                        ``CUSTOMER_RATE_PRIOR`` of the outcome (the prior with no history)
prior_cancel_rate_smoothed  double      the same for cancelled orders
days_since_prev_order       double      days since the previous order; NULL for a first order
product_return_rate_max     double      over the order's products, the largest smoothed return rate
                                        of the product's prior orders whose outcome was known before
                                        this order (see ``smoothed rate`` below)
product_return_rate_mean    double      the mean of the same over the order's lines
product_cancel_rate_mean    double      mean over the lines of the product's smoothed cancel rate
product_prior_terminal_min  int         fewest prior known outcomes of any of the order's products
                                        (0 with no lines)
label                       string      delivered | returned | cancelled
split                       string      train | validation | test (partition column)
==========================  ==========  =====================================================

Product history (an entity feature keyed by ``product_id`` with the order time as event time, as a
Feature Store feature group would hold it): for each distinct product of an order placed at ``t``,
the product's orders that were terminal with ``updated_at < t`` (each order counted once per
product), with their returned and cancelled counts. The smoothed rate is
``(count + PRODUCT_RATE_PRIOR_ORDERS * prior) / (terminal + PRODUCT_RATE_PRIOR_ORDERS)`` with the
``PRODUCT_RATE_PRIOR`` of that outcome, so a product with few known outcomes sits near the prior
instead of at 0 or 1 and does not dominate the max. An order with no lines gets the priors.

Feature columns for a model: ``CATEGORICAL_FEATURES + NUMERIC_FEATURES`` below. The raw DMS tables
the job reads are ``RAW_TABLES`` (table -> key), each with the ``DMS_COLUMNS`` DMS adds.
"""

from __future__ import annotations

from typing import Any

KEY = "order_id"
LABEL = "label"
SPLIT = "split"
LABEL_CLASSES = ("delivered", "returned", "cancelled")
SPLITS = ("train", "validation", "test")
SPLIT_BOUNDS = (80, 90)  # hash bucket (0..99) < 80 -> train, < 90 -> validation, else test
RAW_TABLES = {
    "customers": "customer_id",
    "products": "product_id",
    "orders": "order_id",
    "order_items": "order_item_id",
}
DMS_COLUMNS = ("Op", "dms_commit_ts", "dms_change_seq")
#: DMS writes its ``TimestampColumnName`` column as text in this (strptime) format, UTC; readers cast it.
DMS_COMMIT_TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

ID_COLUMNS = ("order_id", "customer_id", "order_ts")
CATEGORICAL_FEATURES = (
    "channel",
    "payment_method",
    "shipping_method",
    "ship_country",
    "customer_country",
    "customer_segment",
    "top_category",
)
SHARE_CATEGORIES = ("electronics", "apparel", "home", "beauty", "sports", "toys", "books", "grocery")
SHARE_FEATURES = tuple(f"share_{category}" for category in SHARE_CATEGORIES)
BASKET_FEATURES = (
    "basket_lines",
    "basket_units",
    "basket_gross",
    "basket_value",
    "avg_unit_price",
    "max_unit_price",
    "distinct_categories",
    "fragile_units",
    "basket_weight_kg",
    "max_discount_pct",
    *SHARE_FEATURES,
)
PRODUCT_RATE_PRIOR_ORDERS = 10.0
# The customer's smoothed rates: a customer with a few known outcomes is evidence, not a verdict. Their value
# to the model equals that of the exact hidden-trait posteriors (bench/bench_model_gap.py, BENCHMARKS.md);
# the priors are about the outcomes' shares in the demo data.
CUSTOMER_RATE_PRIOR_ORDERS = 10.0
CUSTOMER_RATE_PRIOR = {"returned": 0.14, "cancelled": 0.09}
PRODUCT_RATE_PRIOR = {"returned": 0.10, "cancelled": 0.05}
PRODUCT_HISTORY_FEATURES = (
    "product_return_rate_max",
    "product_return_rate_mean",
    "product_cancel_rate_mean",
    "product_prior_terminal_min",
)
HISTORY_FEATURES = (
    "prior_orders",
    "prior_spend",
    "prior_terminal_orders",
    "prior_return_rate",
    "prior_cancel_rate",
    "prior_return_rate_smoothed",
    "prior_cancel_rate_smoothed",
    "days_since_prev_order",
)
NUMERIC_FEATURES = (
    "promised_days",
    "shipping_fee",
    "has_discount_code",
    "cross_border",
    "marketing_opt_in",
    "customer_age",
    "customer_tenure_days",
    *BASKET_FEATURES,
    "order_hour",
    "order_dow",
    "order_month",
    "is_weekend",
    *HISTORY_FEATURES,
    *PRODUCT_HISTORY_FEATURES,
)
INT_COLUMNS = (
    "promised_days",
    "has_discount_code",
    "cross_border",
    "marketing_opt_in",
    "basket_lines",
    "basket_units",
    "distinct_categories",
    "fragile_units",
    "order_hour",
    "order_dow",
    "order_month",
    "is_weekend",
    "prior_orders",
    "prior_terminal_orders",
    "product_prior_terminal_min",
)
NULLABLE_COLUMNS = ("customer_age", "days_since_prev_order")


def smoothed_rate(count: Any, terminal: Any, prior: float, prior_orders: float) -> Any:
    """An entity's outcome rate shrunk to ``prior``: ``(count + prior_orders * prior) / (terminal + prior_orders)``
    (the ``smoothed rate`` above). Plain arithmetic, so the one definition serves the Spark job (Columns), the
    pandas job (Series) and serving (numbers)."""
    return (count + prior_orders * prior) / (terminal + prior_orders)


CURATED_COLUMNS = (*ID_COLUMNS, *CATEGORICAL_FEATURES, *NUMERIC_FEATURES, LABEL, SPLIT)


def curated_types() -> dict[str, str]:
    """Column -> SQL type of the curated table (Spark/Hive names: bigint, int, double, string, timestamp)."""
    types: dict[str, str] = {"order_id": "bigint", "customer_id": "bigint", "order_ts": "timestamp"}
    for column in CURATED_COLUMNS:
        if column not in types:
            is_string = column in CATEGORICAL_FEATURES or column in (LABEL, SPLIT)
            types[column] = "string" if is_string else "int" if column in INT_COLUMNS else "double"
    return types
