"""The value sets of the source's categorical columns, as plain tuples (standard library only).

The SQLAlchemy schema (:mod:`mlops.source.schema`), the generator, the features validation
suite and the synthetic raw data all use these. Job code that runs on Glue imports this module,
never the schema (Glue has no SQLAlchemy).
"""

from __future__ import annotations

COUNTRIES = ("DE", "FR", "ES", "IT", "NL", "PL", "SE", "GB", "US", "BR")
SEGMENTS = ("consumer", "business", "vip")
CATEGORIES = ("electronics", "apparel", "home", "beauty", "sports", "toys", "books", "grocery")
CHANNELS = ("web", "app", "marketplace", "phone")
PAYMENT_METHODS = ("card", "paypal", "bank_transfer", "cash_on_delivery")
SHIPPING_METHODS = ("standard", "express", "pickup")
ORDER_STATUSES = ("placed", "shipped", "delivered", "returned", "cancelled")
TERMINAL_STATUSES = ("delivered", "returned", "cancelled")
