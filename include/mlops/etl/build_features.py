"""Glue job: DMS raw output -> the curated, labelled order-features table.

Run it the way Glue runs a script, with ``--KEY value`` job arguments::

    python build_features.py --JOB_NAME mlops-build-features \\
        --raw_uri file:///.../lake/raw/dms/shop \\
        --curated_uri file:///.../lake/curated/features \\
        --staging_uri file:///.../lake/_staging/curated/features \\
        --run_key manual__2025-01-01T00-00-00 [--sample_fraction 1.0] [--shuffle_partitions 8]

The file is self-contained (stdlib + pyspark; boto3 only for ``s3://`` swaps) so that it can be
uploaded to S3 as it is and run by Glue 5.0 (Spark 3.5). ``awsglue`` is used when importable.

Steps
-----
1. **Latest state.** Each raw table folder holds ``LOAD*.parquet`` full-load files and CDC
   files; rows carry ``Op`` (I/U/D), ``dms_commit_ts`` and ``dms_change_seq``. The latest
   state of a key is its row with the greatest ``dms_change_seq``; a key whose last change is
   a ``D`` is gone.
2. **Join + features.** orders ⋈ customers (inner: an order of an unknown customer is
   dropped), ⟕ item aggregates (order_items ⟕ products).
3. **Customer history without leakage.** For an order placed at ``t``:
   ``prior_orders`` / ``prior_spend`` / ``days_since_prev_order`` use only the customer's
   orders with ``order_ts < t`` (strictly; same-instant orders do not see each other).
   Outcomes (returned / cancelled) of prior orders count only if they were *known* before
   ``t``: the order is terminal and its ``updated_at`` (the source updates an order row only
   when its status changes, so this is when the outcome became known) is ``< t``.
   Assumption: ``updated_at`` of a terminal order is the time it reached that status.
4. **Label + split.** Only terminal orders are kept (non-terminal ones have no label yet).
   ``split`` comes from ``sha256(str(order_id))``: bucket = int(first 8 hex digits, 16) % 100;
   ``< 80`` train, ``< 90`` validation, else test. Athena/Trino can recompute it.
5. **Staging, then swap.** Parquet partitioned by ``split`` is written to
   ``<staging_uri>/<run_key>/``, then swapped in as ``<curated_uri>/snapshots/<snapshot_id>/``
   and made current by atomically replacing the pointer ``<curated_uri>/_current.json``.
   Locally the swap is a directory rename plus ``os.replace`` of the pointer; on S3 (no
   rename) the objects are copied to the new versioned snapshot prefix, which no reader can
   see until the single PUT of the pointer object. A run that fails at any point leaves the
   pointer, and so the curated data, as it was. A repeated run makes a fresh snapshot id
   (``<run_key>``, ``<run_key>.2``, ...) so a visible snapshot is never overwritten.

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
order_hour                  int         0..23
order_dow                   int         ISO day of week, 1 = Monday .. 7 = Sunday
order_month                 int         1..12
is_weekend                  int         1 on Saturday/Sunday
prior_orders                int         customer's orders strictly before this one
prior_spend                 double      their summed basket_value
prior_terminal_orders       int         prior orders whose outcome was known before this one
prior_return_rate           double      returned / prior_terminal_orders (0 if none)
prior_cancel_rate           double      cancelled / prior_terminal_orders (0 if none)
days_since_prev_order       double      days since the previous order; NULL for a first order
label                       string      delivered | returned | cancelled
split                       string      train | validation | test (partition column)
==========================  ==========  =====================================================

Feature columns for a model: ``CATEGORICAL_FEATURES + NUMERIC_FEATURES`` below.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from typing import Any
from urllib.parse import urlparse

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
POINTER_NAME = "_current.json"
MANIFEST_NAME = "_manifest.json"
KEEP_SNAPSHOTS = 2  # the current one and the one before it (EDA compares against it)

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
NUMERIC_FEATURES = (
    "promised_days",
    "shipping_fee",
    "has_discount_code",
    "cross_border",
    "marketing_opt_in",
    "customer_age",
    "customer_tenure_days",
    "basket_lines",
    "basket_units",
    "basket_gross",
    "basket_value",
    "avg_unit_price",
    "max_unit_price",
    "distinct_categories",
    "fragile_units",
    "basket_weight_kg",
    "order_hour",
    "order_dow",
    "order_month",
    "is_weekend",
    "prior_orders",
    "prior_spend",
    "prior_terminal_orders",
    "prior_return_rate",
    "prior_cancel_rate",
    "days_since_prev_order",
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
)
NULLABLE_COLUMNS = ("customer_age", "days_since_prev_order")
CURATED_COLUMNS = (*ID_COLUMNS, *CATEGORICAL_FEATURES, *NUMERIC_FEATURES, LABEL, SPLIT)


def curated_types() -> dict[str, str]:
    """Column -> SQL type of the curated table (Spark/Hive names: bigint, int, double, string, timestamp)."""
    types: dict[str, str] = {"order_id": "bigint", "customer_id": "bigint", "order_ts": "timestamp"}
    for column in CURATED_COLUMNS:
        if column not in types:
            is_string = column in CATEGORICAL_FEATURES or column in (LABEL, SPLIT)
            types[column] = "string" if is_string else "int" if column in INT_COLUMNS else "double"
    return types


# ----------------------------------------------------------------------------------- arguments


JOB_ARGS = ("JOB_NAME", "raw_uri", "curated_uri", "staging_uri", "run_key")
JOB_DEFAULTS = {"sample_fraction": "1.0", "shuffle_partitions": "8"}


def parse_job_args(
    argv: list[str], required: tuple[str, ...] = JOB_ARGS, optional: dict[str, str] | None = None
) -> dict[str, str]:
    """Glue-style ``--KEY value`` pairs -> dict (via awsglue's getResolvedOptions when on Glue).

    ``required`` names must be present; ``optional`` maps the others to their defaults (this
    job's when not given).
    """
    required_names = list(required)
    optional = dict(JOB_DEFAULTS if optional is None else optional)
    try:
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
    except ImportError:
        getResolvedOptions = None
    if getResolvedOptions is not None:
        present = [name for name in optional if f"--{name}" in argv]
        return {**optional, **getResolvedOptions(argv, required_names + present)}
    args: dict[str, str] = dict(optional)
    tokens = list(argv[1:])
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("--"):
            raise SystemExit(f"unexpected argument {token!r}; job arguments are --KEY value pairs")
        key, eq, value = token[2:].partition("=")
        args[key] = value if eq else (tokens.pop(0) if tokens and not tokens[0].startswith("--") else "true")
    missing = [name for name in required_names if not args.get(name)]
    if missing:
        raise SystemExit(f"missing job arguments: {', '.join('--' + m for m in missing)}")
    return args


def run_key_safe(run_key: str) -> str:
    """A run id (``scheduled__2025-01-01T00:00:00+00:00``) as a key segment safe on S3 and disks."""
    safe = re.sub(r"[^A-Za-z0-9_.=-]+", "-", run_key).strip("-.")
    if not safe:
        raise ValueError(f"run key {run_key!r} has no usable characters")
    return safe


# ---------------------------------------------------------------------------------- transform


def latest_state(frame: Any, key: str) -> Any:
    """Apply the DMS change rows in commit order: last row per key, dropped if its Op is 'D'."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy(key).orderBy(F.col("dms_change_seq").desc(), F.col("dms_commit_ts").desc())
    return (
        frame.withColumn("_rn", F.row_number().over(order))
        .filter((F.col("_rn") == 1) & (F.col("Op") != "D"))
        .drop("_rn", *DMS_COLUMNS)
    )


def read_raw_table(spark: Any, raw_uri: str, table: str) -> Any:
    """All full-load and CDC Parquet files of one raw table folder (CDC files sit in YYYY/MM/DD/ folders)."""
    reader = spark.read.option("pathGlobFilter", "*.parquet").option("recursiveFileLookup", "true")
    return reader.parquet(f"{raw_uri.rstrip('/')}/{table}")


def basket_features(items: Any, products: Any) -> Any:
    """Per-order basket aggregates from the latest order lines and products."""
    from pyspark.sql import functions as F

    qty = F.col("quantity").cast("long")
    price = F.col("unit_price").cast("double")
    lines = items.join(
        products.select(
            "product_id",
            F.col("category"),
            F.col("weight_kg").cast("double").alias("weight_kg"),
            F.col("is_fragile"),
        ),
        "product_id",
        "left",
    ).select(
        "order_id",
        qty.alias("qty"),
        price.alias("price"),
        (qty * price).alias("gross"),
        (qty * price * (F.lit(1.0) - F.coalesce(F.col("discount_pct").cast("double"), F.lit(0.0)) / 100.0)).alias(
            "value"
        ),
        F.coalesce(F.col("category"), F.lit("unknown")).alias("category"),
        (qty * F.coalesce(F.col("weight_kg"), F.lit(0.0))).alias("weight"),
        F.when(F.col("is_fragile"), qty).otherwise(F.lit(0)).alias("fragile"),
    )
    return lines.groupBy("order_id").agg(
        F.count(F.lit(1)).cast("int").alias("basket_lines"),
        F.sum("qty").cast("int").alias("basket_units"),
        F.sum("gross").alias("basket_gross"),
        F.sum("value").alias("basket_value"),
        F.avg("price").alias("avg_unit_price"),
        F.max("price").alias("max_unit_price"),
        F.size(F.collect_set("category")).cast("int").alias("distinct_categories"),  # no Expand, unlike countDistinct
        F.sum("fragile").cast("int").alias("fragile_units"),
        F.sum("weight").alias("basket_weight_kg"),
        F.max(F.struct("value", "category")).getField("category").alias("top_category"),
    )


def history_features(orders: Any) -> Any:
    """Leak-free customer history per order (see the module docstring for the exact rule)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    terminal = F.col("status").isin(*LABEL_CLASSES)
    placed = orders.select(
        "customer_id",
        F.col("order_id"),
        F.expr("unix_micros(cast(order_ts as timestamp))").alias("t"),
        F.lit(1).alias("is_order"),
        F.col("basket_value").alias("spend"),
        F.lit(0).alias("term"),
        F.lit(0).alias("ret"),
        F.lit(0).alias("canc"),
    )
    outcomes = orders.filter(terminal).select(
        "customer_id",
        F.lit(None).cast("long").alias("order_id"),
        F.expr("unix_micros(cast(updated_at as timestamp))").alias("t"),
        F.lit(0).alias("is_order"),
        F.lit(0.0).alias("spend"),
        F.lit(1).alias("term"),
        (F.col("status") == "returned").cast("int").alias("ret"),
        (F.col("status") == "cancelled").cast("int").alias("canc"),
    )
    before = Window.partitionBy("customer_id").orderBy("t").rangeBetween(Window.unboundedPreceding, -1)
    events = placed.unionByName(outcomes)
    prior_terminal = F.coalesce(F.sum("term").over(before), F.lit(0))
    prev_t = F.max(F.when(F.col("is_order") == 1, F.col("t"))).over(before)
    rate = lambda col: F.when(prior_terminal > 0, F.sum(col).over(before) / prior_terminal).otherwise(0.0)  # noqa: E731
    return (
        events.select(
            "order_id",
            "is_order",
            F.coalesce(F.sum("is_order").over(before), F.lit(0)).cast("int").alias("prior_orders"),
            F.coalesce(F.sum("spend").over(before), F.lit(0.0)).alias("prior_spend"),
            prior_terminal.cast("int").alias("prior_terminal_orders"),
            rate("ret").cast("double").alias("prior_return_rate"),
            rate("canc").cast("double").alias("prior_cancel_rate"),
            ((F.col("t") - prev_t) / 86_400_000_000.0).alias("days_since_prev_order"),
        )
        .filter(F.col("is_order") == 1)
        .drop("is_order")
    )


def split_bucket(column: Any, first_hex: int = 1) -> Any:
    """int(sha256(str(key))[first_hex-1 : first_hex+7], 16) — identical in pandas and Trino."""
    from pyspark.sql import functions as F

    digest = F.sha2(column.cast("string"), 256)
    return F.conv(F.substring(digest, first_hex, 8), 16, 10).cast("long")


def build_features(tables: dict[str, Any], sample_fraction: float = 1.0) -> Any:
    """The pure transform: latest-state raw DataFrames (by table name) -> curated DataFrame."""
    from pyspark.sql import functions as F

    customers = tables["customers"].select(
        "customer_id",
        F.col("country").alias("customer_country"),
        F.col("segment").alias("customer_segment"),
        F.col("birth_year").cast("double").alias("birth_year"),
        F.col("marketing_opt_in").cast("int").alias("marketing_opt_in"),
        F.col("signup_ts"),
    )
    baskets = basket_features(tables["order_items"], tables["products"])
    orders = (
        tables["orders"]
        .join(baskets, "order_id", "left")
        .fillna(0, subset=["basket_lines", "basket_units", "distinct_categories", "fragile_units"])
        .fillna(0.0, subset=["basket_gross", "basket_value", "avg_unit_price", "max_unit_price", "basket_weight_kg"])
        .fillna("none", subset=["top_category"])
    )
    labelled = orders.filter(F.col("status").isin(*LABEL_CLASSES))
    if sample_fraction < 1.0:
        labelled = labelled.filter(split_bucket(F.col("order_id"), 9) % 10_000 < round(sample_fraction * 10_000))
    history = history_features(orders)
    ts = F.col("order_ts").cast("timestamp")
    dow = (F.dayofweek(ts) + 5) % 7 + 1  # Spark: 1 = Sunday; ISO: 1 = Monday
    bucket = split_bucket(F.col("order_id")) % 100
    frame = labelled.join(customers, "customer_id", "inner").join(history, "order_id", "left")
    return frame.select(
        F.col("order_id").cast("long").alias("order_id"),
        F.col("customer_id").cast("long").alias("customer_id"),
        ts.alias("order_ts"),
        "channel",
        "payment_method",
        "shipping_method",
        "ship_country",
        "customer_country",
        "customer_segment",
        "top_category",
        F.col("promised_days").cast("int").alias("promised_days"),
        F.col("shipping_fee").cast("double").alias("shipping_fee"),
        F.col("discount_code").isNotNull().cast("int").alias("has_discount_code"),
        (F.col("ship_country") != F.col("customer_country")).cast("int").alias("cross_border"),
        "marketing_opt_in",
        (F.year(ts).cast("double") - F.col("birth_year")).alias("customer_age"),
        ((F.unix_timestamp(ts) - F.unix_timestamp(F.col("signup_ts").cast("timestamp"))) / 86400.0).alias(
            "customer_tenure_days"
        ),
        "basket_lines",
        "basket_units",
        "basket_gross",
        "basket_value",
        "avg_unit_price",
        "max_unit_price",
        "distinct_categories",
        "fragile_units",
        "basket_weight_kg",
        F.hour(ts).alias("order_hour"),
        dow.cast("int").alias("order_dow"),
        F.month(ts).alias("order_month"),
        (dow >= 6).cast("int").alias("is_weekend"),
        "prior_orders",
        "prior_spend",
        "prior_terminal_orders",
        "prior_return_rate",
        "prior_cancel_rate",
        "days_since_prev_order",
        F.col("status").alias(LABEL),
        F.when(bucket < SPLIT_BOUNDS[0], "train")
        .when(bucket < SPLIT_BOUNDS[1], "validation")
        .otherwise("test")
        .alias(SPLIT),
    )


def load_latest_tables(spark: Any, raw_uri: str) -> dict[str, Any]:
    """Latest state of every raw table the features need."""
    return {table: latest_state(read_raw_table(spark, raw_uri, table), key) for table, key in RAW_TABLES.items()}


# ------------------------------------------------------------------------- staging and swap


class LakeFiles:
    """The few storage operations the swap needs, on ``file://`` or ``s3://`` URIs."""

    def __init__(self, s3_client: Any = None) -> None:
        """``s3_client``: an S3 client, a zero-argument factory of one (called on first ``s3://`` use), or
        ``None`` for boto3's default client."""
        self._s3 = s3_client

    @staticmethod
    def _split(uri: str) -> tuple[str, str, str]:
        parsed = urlparse(uri)
        return parsed.scheme, parsed.netloc, parsed.path

    def s3(self) -> Any:
        if self._s3 is None:
            import boto3  # only on the aws target (Glue has it)

            self._s3 = boto3.client("s3")
        elif callable(self._s3) and not hasattr(self._s3, "get_object"):
            self._s3 = self._s3()
        return self._s3

    def read_text(self, uri: str) -> str | None:
        scheme, bucket, path = self._split(uri)
        if scheme == "file":
            return open(path, encoding="utf-8").read() if os.path.exists(path) else None
        try:
            return self.s3().get_object(Bucket=bucket, Key=path.lstrip("/"))["Body"].read().decode("utf-8")
        except self.s3().exceptions.NoSuchKey:
            return None

    def write_text_atomic(self, uri: str, text: str) -> None:
        """Readers see the old or the new content, never a mix: temp + os.replace, or one S3 PUT."""
        scheme, bucket, path = self._split(uri)
        if scheme == "file":
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp-{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        else:
            self.s3().put_object(Bucket=bucket, Key=path.lstrip("/"), Body=text.encode("utf-8"))

    def list_children(self, uri: str) -> list[str]:
        """Names of the direct sub-folders of ``uri``."""
        scheme, bucket, path = self._split(uri)
        if scheme == "file":
            return (
                sorted(n for n in os.listdir(path) if os.path.isdir(os.path.join(path, n)))
                if os.path.isdir(path)
                else []
            )
        prefix = path.strip("/") + "/"
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
        return sorted(p["Prefix"][len(prefix) :].rstrip("/") for page in pages for p in page.get("CommonPrefixes", []))

    def _keys(self, bucket: str, prefix: str) -> list[str]:
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def move_tree(self, src: str, dst: str) -> None:
        """Rename a folder (local, atomic) or copy then delete its objects (S3)."""
        scheme, bucket, src_path = self._split(src)
        _, dst_bucket, dst_path = self._split(dst)
        if scheme == "file":
            os.makedirs(os.path.dirname(dst_path), exist_ok=True)
            os.rename(src_path, dst_path)
            return
        src_prefix, dst_prefix = src_path.strip("/") + "/", dst_path.strip("/") + "/"
        keys = self._keys(bucket, src_prefix)
        for key in keys:
            self.s3().copy_object(
                Bucket=dst_bucket, Key=dst_prefix + key[len(src_prefix) :], CopySource={"Bucket": bucket, "Key": key}
            )
        self.delete_tree(src)

    def put_tree(self, local_dir: str, uri: str) -> None:
        """Copy every file under the local folder ``local_dir`` to the prefix ``uri`` (same relative keys)."""
        scheme, bucket, path = self._split(uri)
        if scheme == "file":
            shutil.copytree(local_dir, path, dirs_exist_ok=True)
            return
        for folder, _dirs, names in os.walk(local_dir):
            for name in names:
                rel = os.path.relpath(os.path.join(folder, name), local_dir).replace(os.sep, "/")
                self.s3().upload_file(os.path.join(folder, name), bucket, f"{path.strip('/')}/{rel}")

    def delete(self, uri: str) -> None:
        """Remove one file or object (nothing happens if it does not exist)."""
        scheme, bucket, path = self._split(uri)
        if scheme == "file":
            if os.path.exists(path):
                os.remove(path)
        else:
            self.s3().delete_object(Bucket=bucket, Key=path.lstrip("/"))

    def delete_tree(self, uri: str) -> None:
        scheme, bucket, path = self._split(uri)
        if scheme == "file":
            shutil.rmtree(path, ignore_errors=True)
            return
        keys = self._keys(bucket, path.strip("/") + "/")
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self.s3().delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})


def next_snapshot_id(existing: list[str], run_key: str) -> str:
    """``run_key`` the first time, then ``run_key.2``, ``run_key.3``: never reuse a visible folder."""
    if run_key not in existing:
        return run_key
    attempt = 2
    while f"{run_key}.{attempt}" in existing:
        attempt += 1
    return f"{run_key}.{attempt}"


def swap_in(files: LakeFiles, staged_uri: str, curated_uri: str, run_key: str, manifest: dict[str, Any]) -> dict:
    """Move the staged output to a new snapshot and make it current (the pointer write commits)."""
    snapshots = f"{curated_uri.rstrip('/')}/snapshots"
    previous = json.loads(files.read_text(f"{curated_uri.rstrip('/')}/{POINTER_NAME}") or "null")
    snapshot_id = next_snapshot_id(files.list_children(snapshots), run_key)
    snapshot_uri = f"{snapshots}/{snapshot_id}"
    pointer = {
        **manifest,
        "snapshot_id": snapshot_id,
        "uri": snapshot_uri,
        "previous": {k: previous[k] for k in ("snapshot_id", "uri", "rows", "splits")} if previous else None,
    }
    files.move_tree(staged_uri, snapshot_uri)
    files.write_text_atomic(f"{snapshot_uri}/{MANIFEST_NAME}", json.dumps(pointer, indent=2, sort_keys=True))
    files.write_text_atomic(f"{curated_uri.rstrip('/')}/{POINTER_NAME}", json.dumps(pointer, indent=2, sort_keys=True))
    keep = {snapshot_id, previous["snapshot_id"] if previous else None}
    for stale in files.list_children(snapshots):
        if stale not in keep:
            files.delete_tree(f"{snapshots}/{stale}")
    return pointer


def read_current(curated_uri: str, files: LakeFiles | None = None) -> dict[str, Any] | None:
    """The current snapshot's pointer (``None`` before the first successful run)."""
    text = (files or LakeFiles()).read_text(f"{curated_uri.rstrip('/')}/{POINTER_NAME}")
    return json.loads(text) if text else None


# --------------------------------------------------------------------------------- the job


def spark_session(app_name: str, shuffle_partitions: int) -> Any:
    """A Glue session when awsglue is importable, else a small local[*] session."""
    try:
        from awsglue.context import GlueContext  # type: ignore[import-not-found]
        from pyspark.context import SparkContext

        spark = GlueContext(SparkContext.getOrCreate()).spark_session
    except ImportError:
        from pyspark.sql import SparkSession

        spark = (
            SparkSession.builder.master(os.environ.get("MLOPS_SPARK_MASTER", "local[*]"))
            .appName(app_name)
            .config("spark.driver.memory", os.environ.get("MLOPS_SPARK_DRIVER_MEMORY", "4g"))
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .getOrCreate()
        )
    spark.sparkContext.setLogLevel(os.environ.get("MLOPS_SPARK_LOG_LEVEL", "WARN"))
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.shuffle.partitions", str(shuffle_partitions))
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "static")
    return spark


def write_staged(frame: Any, staged_uri: str) -> None:
    """Parquet partitioned by split, one sorted file per split, replacing any leftover staging."""
    from pyspark.sql import functions as F

    (
        frame.repartition(F.col(SPLIT))
        .sortWithinPartitions(KEY)
        .write.mode("overwrite")
        .partitionBy(SPLIT)
        .option("compression", "snappy")
        .parquet(staged_uri)
    )


def summarise(spark: Any, staged_uri: str) -> dict[str, Any]:
    """Row counts per split and label, read back from what was written."""
    written = spark.read.parquet(staged_uri)
    counts = written.groupBy(SPLIT, LABEL).count().collect()
    splits = {s: 0 for s in SPLITS}
    labels = {c: 0 for c in LABEL_CLASSES}
    for row in counts:
        splits[row[SPLIT]] = splits.get(row[SPLIT], 0) + row["count"]
        labels[row[LABEL]] = labels.get(row[LABEL], 0) + row["count"]
    columns = [{"name": name, "type": kind} for name, kind in curated_types().items()]
    return {"rows": sum(splits.values()), "splits": splits, "labels": labels, "columns": columns}


def run_job(spark: Any, args: dict[str, str], files: LakeFiles | None = None) -> dict[str, Any]:
    """Read raw, transform, stage, swap in. Returns the new pointer (also printed as JSON)."""
    files = files or LakeFiles()
    run_key = run_key_safe(args["run_key"])
    staged_uri = f"{args['staging_uri'].rstrip('/')}/{run_key}"
    started = time.monotonic()
    frame = build_features(load_latest_tables(spark, args["raw_uri"]), float(args.get("sample_fraction", "1.0")))
    write_staged(frame, staged_uri)
    manifest = {
        **summarise(spark, staged_uri),
        "run_key": run_key,
        "job_name": args["JOB_NAME"],
        "raw_uri": args["raw_uri"],
        "curated_uri": args["curated_uri"],
        "sample_fraction": float(args.get("sample_fraction", "1.0")),
    }
    pointer = swap_in(files, staged_uri, args["curated_uri"], run_key, manifest)
    print(f"MLOPS_FEATURES_RESULT {json.dumps(pointer, sort_keys=True)}", flush=True)
    print(f"built {pointer['rows']} rows in {time.monotonic() - started:.1f}s -> {pointer['uri']}", flush=True)
    return pointer


def main(argv: list[str]) -> int:
    args = parse_job_args(argv)
    spark = spark_session(args["JOB_NAME"], int(args.get("shuffle_partitions", "8")))
    try:
        from awsglue.job import Job  # type: ignore[import-not-found]
    except ImportError:
        job = None
    else:
        from awsglue.context import GlueContext  # type: ignore[import-not-found]

        job = Job(GlueContext(spark.sparkContext))
        job.init(args["JOB_NAME"], args)
    run_job(spark, args)
    if job is not None:
        job.commit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
