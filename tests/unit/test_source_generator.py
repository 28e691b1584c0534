"""The source data generator: determinism, sizes, imbalance, learnability, nulls, drift, append."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, balanced_accuracy_score
from sklearn.preprocessing import StandardScaler, label_binarize
from sqlalchemy import Engine, select

from mlops.source.db import make_engine
from mlops.source.generator import DriftSpec, GenerationResult, catalogue_size, generate
from mlops.source.schema import TABLES, TERMINAL_STATUSES, primary_key

ORDERS = 2_000


def raw_rows(engine: Engine) -> dict[str, list[tuple]]:
    """Every table's rows as the driver returns them, in primary-key order."""
    with engine.connect() as conn:
        return {
            name: conn.exec_driver_sql(f"SELECT * FROM {name} ORDER BY {primary_key(name)}").all() for name in TABLES
        }


def typed_rows(engine: Engine) -> dict[str, list[tuple]]:
    """Every table's rows as SQLAlchemy types them (Decimal, datetime, bool), in primary-key order."""
    with engine.connect() as conn:
        return {
            name: [tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key.columns))]
            for name, table in TABLES.items()
        }


def frame(engine: Engine, sql: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sql, conn)


def fresh(tmp_path: Path, name: str, orders: int = ORDERS, seed: int = 11, **kwargs) -> tuple[Engine, GenerationResult]:
    engine = make_engine(f"sqlite:///{tmp_path / name}.db")
    return engine, generate(engine, orders=orders, seed=seed, **kwargs)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, GenerationResult]:
    """One 5k-order shop shared by the read-only tests."""
    return fresh(tmp_path_factory.mktemp("shop"), "shop", orders=5_000)


def test_same_seed_gives_identical_rows_and_other_seed_differs(tmp_path: Path) -> None:
    first, _ = fresh(tmp_path, "a")
    second, _ = fresh(tmp_path, "b")
    third, _ = fresh(tmp_path, "c", seed=12)
    assert raw_rows(first) == raw_rows(second)
    assert raw_rows(first)["orders"] != raw_rows(third)["orders"]
    assert raw_rows(first)["order_items"] != raw_rows(third)["order_items"]


def test_sizes(shop: tuple[Engine, GenerationResult]) -> None:
    engine, result = shop
    assert result.counts["orders"] == 5_000
    assert result.counts["customers"] == 1_000
    assert result.counts["products"] == catalogue_size(5_000) == 300
    lines = frame(engine, "SELECT order_id, COUNT(*) AS n FROM order_items GROUP BY order_id")["n"]
    assert len(lines) == 5_000 and lines.min() == 1 and lines.max() == 6
    assert 1.8 < result.counts["order_items"] / 5_000 < 2.8
    assert (result.first_order_id, result.last_order_id) == (1, 5_000)


def test_status_is_imbalanced_and_recent_orders_may_be_open(shop: tuple[Engine, GenerationResult]) -> None:
    engine, result = shop
    orders = frame(engine, "SELECT status, order_ts FROM orders")
    terminal = orders[orders["status"].isin(TERMINAL_STATUSES)]["status"].value_counts(normalize=True)
    assert 0.72 <= terminal["delivered"] <= 0.82
    assert 0.10 <= terminal["returned"] <= 0.18
    assert 0.06 <= terminal["cancelled"] <= 0.13
    open_orders = orders[~orders["status"].isin(TERMINAL_STATUSES)]
    assert 0 < len(open_orders) <= 0.04 * len(orders)
    span = result.end - result.start
    assert pd.to_datetime(open_orders["order_ts"]).min() > result.start + 0.9 * span


def _order_time_features(engine: Engine) -> tuple[pd.DataFrame, np.ndarray]:
    """Simple features known when an order is placed, including the customer's earlier outcomes."""
    orders = frame(
        engine,
        "SELECT o.*, c.segment, c.signup_ts FROM orders o JOIN customers c USING (customer_id) ORDER BY order_id",
    )
    items = frame(
        engine,
        "SELECT i.order_id, i.quantity, i.unit_price, COALESCE(i.discount_pct, 0) AS discount, p.category, "
        "p.is_fragile FROM order_items i JOIN products p USING (product_id)",
    )
    for category in ("apparel", "electronics", "grocery", "books"):
        items[category] = items["category"] == category
    basket = items.groupby("order_id").agg(
        lines=("quantity", "size"),
        fragile=("is_fragile", "max"),
        discount=("discount", "max"),
        apparel=("apparel", "mean"),
        electronics=("electronics", "mean"),
        grocery=("grocery", "mean"),
        books=("books", "mean"),
    )
    data = orders.join(basket, on="order_id")
    for outcome in ("returned", "cancelled"):
        hit = (data["status"] == outcome).astype(int)
        data[f"prior_{outcome}"] = hit.groupby(data["customer_id"]).cumsum() - hit
    data["prior_orders"] = data.groupby("customer_id").cumcount()
    tenure = pd.to_datetime(data["order_ts"]) - pd.to_datetime(data["signup_ts"])
    data["new_customer"] = tenure < pd.Timedelta(days=7)
    data["has_code"] = data["discount_code"].notna()
    data = data[data["status"].isin(TERMINAL_STATUSES)]
    numeric = [
        "promised_days",
        "lines",
        "fragile",
        "discount",
        "apparel",
        "electronics",
        "grocery",
        "books",
        "prior_returned",
        "prior_cancelled",
        "prior_orders",
        "new_customer",
        "has_code",
    ]
    categorical = ["channel", "payment_method", "shipping_method", "segment"]
    features = pd.concat([data[numeric].astype(float), pd.get_dummies(data[categorical]).astype(float)], axis=1)
    return features, data["status"].to_numpy()


def test_outcome_is_learnable_from_order_time_features(shop: tuple[Engine, GenerationResult]) -> None:
    features, labels = _order_time_features(shop[0])
    cut = int(len(labels) * 0.7)
    scaler = StandardScaler().fit(features[:cut])
    model = LogisticRegression(max_iter=2_000, class_weight="balanced")
    model.fit(scaler.transform(features[:cut]), labels[:cut])
    probs = model.predict_proba(scaler.transform(features[cut:]))
    truth = label_binarize(labels[cut:], classes=model.classes_)
    macro_ap = average_precision_score(truth, probs, average="macro")
    baseline_ap = truth.mean(axis=0).mean()  # a constant score's AP is the class prevalence
    assert balanced_accuracy_score(labels[cut:], model.classes_[probs.argmax(axis=1)]) > 0.42
    assert macro_ap > baseline_ap + 0.08


def test_nullable_columns_hold_nulls_and_values(shop: tuple[Engine, GenerationResult]) -> None:
    shares = frame(
        shop[0],
        "SELECT (SELECT AVG(birth_year IS NULL) FROM customers) AS birth_year, "
        "(SELECT AVG(weight_kg IS NULL) FROM products) AS weight_kg, "
        "(SELECT AVG(discount_code IS NULL) FROM orders) AS discount_code, "
        "(SELECT AVG(discount_pct IS NULL) FROM order_items) AS discount_pct",
    ).iloc[0]
    for column, share in shares.items():
        assert 0.03 < share < 0.95, column


def test_rows_are_consistent_in_time_and_keys(shop: tuple[Engine, GenerationResult]) -> None:
    engine, result = shop
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    checks = frame(
        engine,
        "SELECT MIN(o.order_ts) AS first, MAX(o.updated_at) AS last, "
        "SUM(c.signup_ts > o.order_ts) AS before_signup, SUM(o.updated_at < o.order_ts) AS backwards "
        "FROM orders o JOIN customers c USING (customer_id)",
    ).iloc[0]
    assert datetime.fromisoformat(checks["first"]) >= result.start
    assert datetime.fromisoformat(checks["last"]) <= result.end
    assert checks["before_signup"] == 0 and checks["backwards"] == 0


def test_covariate_drift_moves_feature_distributions(tmp_path: Path) -> None:
    base, _ = fresh(tmp_path, "base")
    drifted, _ = fresh(tmp_path, "drifted", drift=DriftSpec(covariate=1.0))
    sql = (
        "SELECT AVG(channel = 'marketplace') AS marketplace, AVG(ship_country <> c.country) AS cross_border, "
        "(SELECT COUNT(*) FROM order_items) * 1.0 / COUNT(*) AS lines, "
        "(SELECT AVG(unit_price) FROM order_items) AS price FROM orders JOIN customers c USING (customer_id)"
    )
    before, after = frame(base, sql).iloc[0], frame(drifted, sql).iloc[0]
    assert after["marketplace"] > before["marketplace"] + 0.10
    assert after["cross_border"] > before["cross_border"] + 0.05
    assert after["lines"] > before["lines"] + 0.5
    assert after["price"] > before["price"] * 1.15


def test_concept_drift_changes_outcomes_not_features(tmp_path: Path) -> None:
    base, _ = fresh(tmp_path, "base")
    drifted, _ = fresh(tmp_path, "drifted", drift=DriftSpec(concept=1.0))
    features = "SELECT order_id, customer_id, channel, payment_method, promised_days FROM orders ORDER BY order_id"
    pd.testing.assert_frame_equal(frame(base, features), frame(drifted, features))
    electronics_returns = (
        "SELECT AVG(status = 'returned') AS rate FROM orders WHERE order_id IN (SELECT order_id FROM order_items "
        "JOIN products USING (product_id) WHERE category = 'electronics')"
    )
    assert frame(drifted, electronics_returns)["rate"][0] > frame(base, electronics_returns)["rate"][0] + 0.08


def test_append_continues_ids_and_time_after_existing_rows(tmp_path: Path) -> None:
    engine, first = fresh(tmp_path, "shop", orders=1_000)
    before = frame(
        engine, "SELECT MAX(updated_at) AS latest, (SELECT MAX(customer_id) FROM customers) AS c FROM orders"
    )
    second = generate(engine, orders=500, seed=11, days=30, drift=DriftSpec(covariate=0.5, concept=0.5), append=True)
    assert (second.first_order_id, second.last_order_id) == (1_001, 1_500)
    assert second.counts["products"] == 0 and second.counts["customers"] > 0
    assert second.start > datetime.fromisoformat(before["latest"][0]) >= first.start
    new = frame(engine, "SELECT MIN(order_ts) AS first, MIN(customer_id) AS c FROM orders WHERE order_id > 1000")
    assert datetime.fromisoformat(new["first"][0]) >= second.start
    new_customers = frame(engine, f"SELECT MIN(customer_id) AS c FROM customers WHERE customer_id > {before['c'][0]}")
    assert new_customers["c"][0] == before["c"][0] + 1
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []


def test_fresh_generation_refuses_a_filled_database(tmp_path: Path) -> None:
    engine, _ = fresh(tmp_path, "shop", orders=200)
    with pytest.raises(ValueError, match="append=True"):
        generate(engine, orders=200, seed=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"orders": 10}, "orders must be an integer from 100"),
        ({"orders": 6_000_000}, "orders must be an integer from 100"),
        ({"days": 0}, "days must be an integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"start_date": "01/02/2025"}, "start_date must look like 2025-01-01"),
    ],
)
def test_bad_inputs_are_rejected(sqlite_url: str, kwargs: dict, message: str) -> None:
    arguments = {"orders": 200, "seed": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        generate(make_engine(sqlite_url), **arguments)


@pytest.mark.parametrize("drift", [(-0.1, 0.0), (0.0, 1.5), ("high", 0.0)])
def test_drift_must_be_between_zero_and_one(drift: tuple) -> None:
    with pytest.raises(ValueError, match="must be a number from 0 to 1"):
        DriftSpec(*drift)


def test_progress_reports_orders_done(sqlite_url: str) -> None:
    calls: list[tuple[int, int]] = []
    generate(make_engine(sqlite_url), orders=300, seed=1, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 300) and calls[-1] == (300, 300)


@pytest.mark.postgres
def test_postgres_gets_the_same_rows_as_sqlite(tmp_path: Path, postgres_db_url: str) -> None:
    sqlite_engine, sqlite_result = fresh(tmp_path, "shop")
    pg_engine = make_engine(postgres_db_url)
    pg_result = generate(pg_engine, orders=ORDERS, seed=11)
    assert pg_result.counts == sqlite_result.counts
    assert typed_rows(pg_engine) == typed_rows(sqlite_engine)
    appended = generate(pg_engine, orders=300, seed=11, days=10, drift=DriftSpec(covariate=1.0), append=True)
    assert appended.first_order_id == ORDERS + 1
    pg_engine.dispose()
