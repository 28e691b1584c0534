"""A hand-made DMS raw fixture (full load + CDC updates/deletes) with hand-checked expected features.

Shared by the ETL, catalog, EDA and validation tests. Layout and types follow the raw input
contract: ``<raw>/<table>/LOAD00000001.parquet`` then ``YYYYMMDD-HHMMSSfff.parquet`` CDC files,
columns ``Op``, ``dms_commit_ts``, ``dms_change_seq``, then the table's columns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TS = pa.timestamp("us")
SCHEMAS = {
    "customers": pa.schema(
        [
            ("customer_id", pa.int64()),
            ("email", pa.string()),
            ("country", pa.string()),
            ("segment", pa.string()),
            ("birth_year", pa.int16()),
            ("marketing_opt_in", pa.bool_()),
            ("signup_ts", TS),
            ("updated_at", TS),
        ]
    ),
    "products": pa.schema(
        [
            ("product_id", pa.int64()),
            ("sku", pa.string()),
            ("category", pa.string()),
            ("unit_price", pa.decimal128(10, 2)),
            ("weight_kg", pa.decimal128(8, 3)),
            ("is_fragile", pa.bool_()),
            ("updated_at", TS),
        ]
    ),
    "orders": pa.schema(
        [
            ("order_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("order_ts", TS),
            ("channel", pa.string()),
            ("payment_method", pa.string()),
            ("shipping_method", pa.string()),
            ("ship_country", pa.string()),
            ("promised_days", pa.int16()),
            ("shipping_fee", pa.decimal128(8, 2)),
            ("discount_code", pa.string()),
            ("status", pa.string()),
            ("updated_at", TS),
        ]
    ),
    "order_items": pa.schema(
        [
            ("order_item_id", pa.int64()),
            ("order_id", pa.int64()),
            ("product_id", pa.int64()),
            ("quantity", pa.int16()),
            ("unit_price", pa.decimal128(10, 2)),
            ("discount_pct", pa.decimal128(5, 2)),
            ("updated_at", TS),
        ]
    ),
}


def d(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def t(text: str) -> datetime:
    return datetime.fromisoformat(text)


JAN1 = t("2025-01-01T00:00:00")
LOAD_COMMIT = datetime(2025, 4, 1, tzinfo=UTC)


def customer(cid, country, segment, birth, opt_in):
    return [cid, f"c{cid}@x.io", country, segment, birth, opt_in, JAN1, JAN1]


def product(pid, category, price, weight, fragile):
    return [pid, f"SKU{pid}", category, d(price), d(weight), fragile, JAN1]


def order(oid, cid, ts, status, updated, payment="card", discount=None, ship_country="DE"):
    return [oid, cid, t(ts), "web", payment, "standard", ship_country, 3, d("4.99"), discount, status, t(updated)]


def item(iid, oid, pid, qty, price, disc=None):
    return [iid, oid, pid, qty, d(price), d(disc), JAN1]


FULL_LOAD = {
    "customers": [
        customer(1, "DE", "consumer", 1990, True),
        customer(2, "FR", "vip", None, False),
        customer(3, "ES", "business", 1980, True),
    ],
    "products": [
        product(1, "electronics", "100.00", "2.000", True),
        product(2, "apparel", "20.00", None, False),
        product(3, "books", "10.00", "0.500", False),
    ],
    "orders": [
        order(1, 1, "2025-03-03T10:00:00", "delivered", "2025-03-05T10:00:00", discount="SAVE10"),
        order(2, 1, "2025-03-04T12:00:00", "placed", "2025-03-04T12:00:00"),
        order(3, 1, "2025-03-08T09:00:00", "cancelled", "2025-03-08T10:00:00", payment="cash_on_delivery"),
        order(4, 1, "2025-03-12T00:00:00", "delivered", "2025-03-14T00:00:00", ship_country="FR"),
        order(5, 2, "2025-03-04T12:00:00", "shipped", "2025-03-05T00:00:00", ship_country="FR"),
        order(6, 2, "2025-03-06T00:00:00", "placed", "2025-03-06T00:00:00", ship_country="FR"),
        order(7, 1, "2025-03-01T00:00:00", "delivered", "2025-03-02T00:00:00"),
        order(8, 3, "2025-03-05T00:00:00", "delivered", "2025-03-06T00:00:00", ship_country="ES"),
        order(10, 2, "2025-03-20T00:00:00", "delivered", "2025-03-22T00:00:00", ship_country="FR"),
    ],
    "order_items": [
        item(1, 1, 1, 1, "100.00"),
        item(2, 1, 2, 2, "20.00", "10.00"),
        item(3, 2, 2, 1, "20.00"),
        item(4, 3, 3, 1, "10.00"),
        item(5, 3, 1, 1, "100.00"),
        item(6, 4, 9, 2, "5.00"),
        item(7, 6, 1, 1, "90.00", "50.00"),
        item(9, 8, 1, 1, "100.00"),
        item(10, 7, 1, 1, "100.00"),
        item(11, 5, 2, 2, "20.00"),
    ],
}

# (file name, table, [(Op, row)]) in commit order.
CDC = [
    (
        "20250401-010000000.parquet",
        {
            "customers": [("D", customer(3, "ES", "business", 1980, True))],
            "products": [("U", product(3, "toys", "12.00", "0.500", False))],
            "orders": [
                ("U", order(2, 1, "2025-03-04T12:00:00", "shipped", "2025-03-06T00:00:00")),
                ("U", order(6, 2, "2025-03-06T00:00:00", "shipped", "2025-03-06T12:00:00", ship_country="FR")),
                ("D", order(7, 1, "2025-03-01T00:00:00", "delivered", "2025-03-02T00:00:00")),
                ("I", order(9, 2, "2025-03-06T00:00:00", "placed", "2025-03-06T00:00:00", ship_country="FR")),
            ],
            "order_items": [
                ("U", item(3, 2, 2, 3, "20.00")),
                ("D", item(5, 3, 1, 1, "100.00")),
                ("D", item(10, 7, 1, 1, "100.00")),
                ("I", item(8, 9, 2, 1, "20.00")),
            ],
        },
    ),
    (
        "20250401-020000000.parquet",
        {
            "orders": [
                ("U", order(2, 1, "2025-03-04T12:00:00", "returned", "2025-03-10T00:00:00")),
                ("U", order(6, 2, "2025-03-06T00:00:00", "delivered", "2025-03-07T00:00:00", ship_country="FR")),
                ("U", order(9, 2, "2025-03-06T00:00:00", "cancelled", "2025-03-06T01:00:00", ship_country="FR")),
            ],
        },
    ),
]


def _dms_table(table: str, ops: list[str], rows: list[list], commit: datetime, seq_start: int) -> pa.Table:
    schema = SCHEMAS[table]
    columns = {name: [row[i] for row in rows] for i, name in enumerate(schema.names)}
    seqs = ["0" * 20 if seq_start == 0 else f"{seq_start + i:020d}" for i in range(len(rows))]
    head = {
        "Op": pa.array(ops, pa.string()),
        "dms_commit_ts": pa.array([commit.strftime("%Y-%m-%d %H:%M:%S.%f")] * len(rows), pa.string()),
        "dms_change_seq": pa.array(seqs, pa.string()),
    }
    body = {name: pa.array(columns[name], schema.field(name).type) for name in schema.names}
    return pa.table({**head, **body})


def write_fixture(raw_dir: Path, with_cdc: bool = True) -> Path:
    """Write the fixture's raw layout under ``raw_dir`` (the ``raw/dms/shop`` folder); return it."""
    for table, rows in FULL_LOAD.items():
        (raw_dir / table).mkdir(parents=True, exist_ok=True)
        pq.write_table(
            _dms_table(table, ["I"] * len(rows), rows, LOAD_COMMIT, 0), raw_dir / table / "LOAD00000001.parquet"
        )
    seq = 1
    for hour, (name, changes) in enumerate(CDC if with_cdc else [], start=1):
        for table, ops_rows in changes.items():
            ops = [op for op, _ in ops_rows]
            rows = [row for _, row in ops_rows]
            commit = LOAD_COMMIT.replace(hour=hour)
            pq.write_table(_dms_table(table, ops, rows, commit, seq), raw_dir / table / name)
            seq += len(rows)
    return raw_dir


# Hand-checked expected features, derived by hand from the rows above (see test_etl.py).
# Product history (daily records, stamped at the day's last microsecond): order 6 (03-06 00:00) sees product 1's
# record of 03-05 (order 1 delivered) but not order 8's outcome, known at the very instant order 6 is placed and
# recorded at the end of 03-06; order 9 sees product 2's delivered order 1 only.
EXPECTED = {
    1: dict(
        customer_id=1,
        label="delivered",
        basket_lines=2,
        max_discount_pct=10.0,
        share_electronics=0.5,
        share_apparel=0.5,
        share_books=0.0,
        product_return_rate_max=0.1,
        product_return_rate_mean=0.1,
        product_cancel_rate_mean=0.05,
        product_prior_terminal_min=0,
        basket_units=3,
        basket_gross=140.0,
        basket_value=136.0,
        avg_unit_price=60.0,
        max_unit_price=100.0,
        distinct_categories=2,
        fragile_units=1,
        basket_weight_kg=2.0,
        top_category="electronics",
        prior_orders=0,
        prior_spend=0.0,
        prior_terminal_orders=0,
        prior_return_rate=0.0,
        prior_cancel_rate=0.0,
        prior_return_rate_smoothed=0.14,  # no known outcome: the priors
        prior_cancel_rate_smoothed=0.09,
        days_since_prev_order=None,
        order_dow=1,
        is_weekend=0,
        order_hour=10,
        order_month=3,
        has_discount_code=1,
        cross_border=0,
        customer_age=35.0,
        customer_tenure_days=61 + 10 / 24,
        customer_country="DE",
        customer_segment="consumer",
        marketing_opt_in=1,
    ),
    2: dict(
        customer_id=1,
        label="returned",
        max_discount_pct=0.0,
        share_apparel=1.0,
        share_electronics=0.0,
        product_return_rate_max=0.1,
        product_return_rate_mean=0.1,
        product_cancel_rate_mean=0.05,
        product_prior_terminal_min=0,
        basket_lines=1,
        basket_units=3,
        basket_gross=60.0,
        basket_value=60.0,
        top_category="apparel",
        prior_orders=1,
        prior_spend=136.0,
        prior_terminal_orders=0,
        days_since_prev_order=1 + 2 / 24,
        order_dow=2,
        basket_weight_kg=0.0,
        fragile_units=0,
    ),
    3: dict(
        customer_id=1,
        label="cancelled",
        share_toys=1.0,
        share_books=0.0,
        product_return_rate_max=0.1,
        product_return_rate_mean=0.1,
        product_cancel_rate_mean=0.05,
        product_prior_terminal_min=0,
        basket_lines=1,
        basket_value=10.0,
        top_category="toys",
        prior_orders=2,
        prior_spend=196.0,
        prior_terminal_orders=1,
        prior_return_rate=0.0,
        prior_cancel_rate=0.0,
        prior_return_rate_smoothed=(0 + 10 * 0.14) / (1 + 10),  # one delivered order: below the prior
        prior_cancel_rate_smoothed=(0 + 10 * 0.09) / (1 + 10),
        days_since_prev_order=3 + 21 / 24,
        order_dow=6,
        is_weekend=1,
        payment_method="cash_on_delivery",
    ),
    4: dict(
        customer_id=1,
        label="delivered",
        basket_lines=1,
        share_electronics=0.0,
        share_apparel=0.0,
        share_toys=0.0,
        product_return_rate_max=0.1,
        product_return_rate_mean=0.1,
        product_cancel_rate_mean=0.05,
        product_prior_terminal_min=0,
        basket_units=2,
        basket_value=10.0,
        top_category="unknown",
        basket_weight_kg=0.0,
        prior_orders=3,
        prior_spend=206.0,
        prior_terminal_orders=3,
        prior_return_rate=1 / 3,
        prior_cancel_rate=1 / 3,
        prior_return_rate_smoothed=(1 + 10 * 0.14) / (3 + 10),
        prior_cancel_rate_smoothed=(1 + 10 * 0.09) / (3 + 10),
        days_since_prev_order=3 + 15 / 24,
        order_dow=3,
        cross_border=1,
    ),
    6: dict(
        customer_id=2,
        label="delivered",
        basket_value=45.0,
        max_discount_pct=50.0,
        share_electronics=1.0,
        product_return_rate_max=1 / 11,
        product_return_rate_mean=1 / 11,
        product_cancel_rate_mean=0.5 / 11,
        product_prior_terminal_min=1,
        basket_gross=90.0,
        prior_orders=1,
        prior_spend=40.0,
        prior_terminal_orders=0,
        days_since_prev_order=1.5,
        order_dow=4,
        customer_age=None,
        customer_segment="vip",
        marketing_opt_in=0,
        cross_border=0,
    ),
    9: dict(
        customer_id=2,
        label="cancelled",
        share_apparel=1.0,
        product_return_rate_max=1 / 11,
        product_cancel_rate_mean=0.5 / 11,
        product_prior_terminal_min=1,
        basket_value=20.0,
        prior_orders=1,
        prior_spend=40.0,
        prior_terminal_orders=0,
        days_since_prev_order=1.5,
    ),
    10: dict(
        customer_id=2,
        label="delivered",
        basket_lines=0,
        max_discount_pct=0.0,
        share_electronics=0.0,
        share_grocery=0.0,
        product_return_rate_max=0.1,
        product_return_rate_mean=0.1,
        product_cancel_rate_mean=0.05,
        product_prior_terminal_min=0,
        basket_units=0,
        basket_value=0.0,
        basket_gross=0.0,
        avg_unit_price=0.0,
        max_unit_price=0.0,
        distinct_categories=0,
        top_category="none",
        prior_orders=3,
        prior_spend=105.0,
        prior_terminal_orders=2,
        prior_return_rate=0.0,
        prior_cancel_rate=0.5,
        prior_return_rate_smoothed=(0 + 10 * 0.14) / (2 + 10),
        prior_cancel_rate_smoothed=(1 + 10 * 0.09) / (2 + 10),
        days_since_prev_order=14.0,
    ),
}


def build_curated_lake(root: Path, raw: Path, run_key: str) -> dict:
    """Curate ``raw`` with the pandas transform and swap it in under ``<root>/curated/features`` (no Spark).

    Uses the job's own staging/swap code, so the lake looks exactly as after a Glue run.
    """
    from mlops.etl import pandas_features
    from mlops.schema.curated import LABEL_CLASSES, SPLITS, curated_types
    from mlops.schema.snapshots import LakeFiles, swap_in

    frame = pandas_features.run(raw)
    staged = root / "_staging" / "curated" / "features" / run_key
    frame.to_parquet(staged, partition_cols=["split"], index=False)
    manifest = {
        "rows": len(frame),
        "splits": {s: int((frame["split"] == s).sum()) for s in SPLITS},
        "labels": {c: int((frame["label"] == c).sum()) for c in LABEL_CLASSES},
        "columns": [{"name": n, "type": t} for n, t in curated_types().items()],
        "run_key": run_key,
    }
    return swap_in(LakeFiles(), staged.as_uri(), (root / "curated" / "features").as_uri(), run_key, manifest)


def write_replicated(root: Path, n_orders: int = 3000, activity_days: int = 5) -> Path:
    """Raw output of the real pipeline: source generator -> local DMS replicator (full load, activity, CDC)."""
    from mlops.config import PipelineConfig
    from mlops.lake import Lake
    from mlops.replication.replicator import LocalReplicator
    from mlops.source.activity import simulate_activity
    from mlops.source.db import create_schema, make_engine
    from mlops.source.generator import generate

    config = PipelineConfig()
    engine = make_engine(f"sqlite:///{root / 'source.db'}")
    create_schema(engine)
    generate(engine, n_orders, seed=1)
    replicator = LocalReplicator(config, engine, Lake(root=(root / "lake").as_uri(), layout=config.lake),
                                 state_dir=root / "dms")  # fmt: skip
    replicator.sync()
    simulate_activity(engine, seed=2, steps=activity_days)
    replicator.sync()
    engine.dispose()
    return root / "lake" / "raw" / "dms" / config.source.schema_name
