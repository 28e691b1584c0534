"""A learnable synthetic stand-in for the curated feature table (tests and benchmarks).

Same contract as the real table: ``order_id``, ``label`` (delivered/returned/cancelled,
about 84/10/6 %), ``split`` (train/validation/test), numeric (int, float, decimal, bool) and
low-cardinality string features, with some missing values.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd


def curated_features(rows: int, seed: int = 0, *, decimals: bool = True) -> pd.DataFrame:
    """``rows`` orders whose outcome depends on payment, shipping, history and basket."""
    rng = np.random.default_rng(seed)
    channel = rng.choice(["web", "app", "marketplace", "phone"], rows, p=[0.45, 0.3, 0.2, 0.05])
    payment = rng.choice(["card", "paypal", "bank_transfer", "cash_on_delivery"], rows, p=[0.5, 0.25, 0.15, 0.1])
    shipping = rng.choice(["standard", "express", "pickup"], rows, p=[0.7, 0.2, 0.1])
    country = rng.choice(["DE", "FR", "ES", "IT", "NL", "PL", "GB", "US"], rows)
    category = rng.choice(["electronics", "apparel", "home", "beauty", "toys"], rows)
    basket_value = np.round(rng.lognormal(4.0, 0.8, rows), 2)
    units = rng.integers(1, 8, rows)
    prior_returns = rng.poisson(0.4, rows)
    prior_orders = prior_returns + rng.poisson(3, rows)
    days_since = np.where(rng.random(rows) < 0.1, np.nan, np.round(rng.exponential(40, rows), 3))
    fragile = rng.random(rows) < 0.2
    returned_logit = (
        -3.6
        + 2.8 * (category == "apparel")
        + 1.0 * prior_returns
        + 0.006 * basket_value
        - 0.2 * units
        + 0.8 * (channel == "marketplace")
    )
    cancelled_logit = (
        -4.2
        + 3.6 * (payment == "cash_on_delivery")
        + 1.8 * (payment == "bank_transfer")
        + 1.0 * (shipping == "pickup")
        + 0.015 * np.nan_to_num(days_since, nan=60.0)
        - 0.2 * np.minimum(prior_orders, 6)
    )
    logits = np.stack([np.zeros(rows), returned_logit, cancelled_logit], axis=1)
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    outcome = (proba.cumsum(axis=1) > rng.random((rows, 1))).argmax(axis=1)
    frame = pd.DataFrame(
        {
            "order_id": np.arange(1, rows + 1, dtype=np.int64),
            "channel": channel,
            "payment_method": payment,
            "shipping_method": shipping,
            "country": np.where(rng.random(rows) < 0.02, None, country),
            "top_category": category,
            "basket_value": basket_value,
            "basket_units": units.astype(np.int32),
            "prior_orders": prior_orders.astype(np.int32),
            "prior_returns": prior_returns.astype(np.int32),
            "days_since_prev_order": days_since,
            "has_fragile": fragile,
            "label": np.array(["delivered", "returned", "cancelled"])[outcome],
            "split": rng.choice(["train", "validation", "test"], rows, p=[0.7, 0.15, 0.15]),
        }
    )
    if decimals:
        frame["shipping_fee"] = [Decimal(f"{v:.2f}") for v in rng.choice([0.0, 4.99, 9.99], rows)]
    return frame


def write_dataset(frame: pd.DataFrame, root: Path, *, partition_by_split: bool = True) -> Path:
    """Write Parquet the way the curated table is laid out (``split=<name>/part-0.parquet``)."""
    root.mkdir(parents=True, exist_ok=True)
    if not partition_by_split:
        frame.to_parquet(root / "part-0.parquet", index=False)
        return root
    for split, rows in frame.groupby("split"):
        folder = root / f"split={split}"
        folder.mkdir(exist_ok=True)
        rows.drop(columns="split").to_parquet(folder / "part-0.parquet", index=False)
    return root
