"""The OLTP schema of the source database, in SQLAlchemy Core (SQLite and PostgreSQL alike).

Orders move through ``placed -> shipped -> delivered | returned`` or end ``cancelled``.
The terminal status is the outcome the pipeline learns; it is imbalanced (most orders are
delivered) and depends on the order, its customer, its items and their products.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
)

from mlops.source.vocabulary import (  # noqa: F401 - re-exported: the schema's value sets
    CATEGORIES,
    CHANNELS,
    COUNTRIES,
    ORDER_STATUSES,
    PAYMENT_METHODS,
    SEGMENTS,
    SHIPPING_METHODS,
    TERMINAL_STATUSES,
)

metadata = MetaData()

customers = Table(
    "customers",
    metadata,
    Column("customer_id", Integer, primary_key=True, autoincrement=False),
    Column("email", String(120), nullable=False, unique=True),
    Column("country", String(2), nullable=False),
    Column("segment", String(16), nullable=False),
    Column("birth_year", SmallInteger, nullable=True),  # null: not given at signup
    Column("marketing_opt_in", Boolean, nullable=False),
    Column("signup_ts", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("product_id", Integer, primary_key=True, autoincrement=False),
    Column("sku", String(32), nullable=False, unique=True),
    Column("category", String(24), nullable=False),
    Column("unit_price", Numeric(10, 2), nullable=False),
    Column("weight_kg", Numeric(8, 3), nullable=True),  # null: not measured
    Column("is_fragile", Boolean, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.customer_id"), nullable=False, index=True),
    Column("order_ts", DateTime, nullable=False, index=True),
    Column("channel", String(16), nullable=False),
    Column("payment_method", String(24), nullable=False),
    Column("shipping_method", String(16), nullable=False),
    Column("ship_country", String(2), nullable=False),
    Column("promised_days", SmallInteger, nullable=False),
    Column("shipping_fee", Numeric(8, 2), nullable=False),
    Column("discount_code", String(16), nullable=True),  # null: no discount code used
    Column("status", String(16), nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

order_items = Table(
    "order_items",
    metadata,
    Column("order_item_id", Integer, primary_key=True, autoincrement=False),
    Column("order_id", Integer, ForeignKey("orders.order_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("product_id", Integer, ForeignKey("products.product_id"), nullable=False),
    Column("quantity", SmallInteger, nullable=False),
    Column("unit_price", Numeric(10, 2), nullable=False),
    Column("discount_pct", Numeric(5, 2), nullable=True),  # null: no line discount
    Column("updated_at", DateTime, nullable=False),
)

TABLES: dict[str, Table] = {t.name: t for t in (customers, products, orders, order_items)}


def primary_key(table_name: str) -> str:
    """The single-column primary key of a source table."""
    (column,) = TABLES[table_name].primary_key.columns
    return column.name
