"""Athena EDA of the curated features: Trino-dialect SQL files, their local DuckDB runner, the HTML report.

``EDA_QUERIES`` names the files in ``sql/`` (DAGs map one task per query over it); importing
this package is cheap (no DuckDB, pandas or matplotlib).
"""

EDA_QUERIES: tuple[str, ...] = (
    "class_balance",
    "null_rates",
    "numeric_distributions",
    "top_categories",
    "label_rate_by_segment",
    "change_since_previous",
)
