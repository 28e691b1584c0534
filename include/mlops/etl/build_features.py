"""Glue job: DMS raw output -> the curated, labelled order-features table.

Run it the way Glue runs a script, with ``--KEY value`` job arguments::

    python build_features.py --JOB_NAME mlops-build-features \\
        --raw_uri file:///.../lake/raw/dms/shop \\
        --curated_uri file:///.../lake/curated/features \\
        --staging_uri file:///.../lake/_staging/curated/features \\
        --run_key manual__2025-01-01T00-00-00 [--sample_fraction 1.0] [--shuffle_partitions 8]

The script needs pyspark, boto3 (only for ``s3://`` swaps) and its code bundle (the
``mlops.schema`` package), so it is uploaded to S3 as it is and run by Glue 5.0 (Spark 3.5).
``awsglue`` is used when importable.

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
   **Product history** follows the same rule per product: an order sees the outcomes of its
   products' earlier orders that were terminal before ``t`` (smoothed rates, see
   :mod:`mlops.schema.curated`), never its own or a later one's.
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

The curated table's columns, types and meaning are :mod:`mlops.schema.curated`; its snapshot
layout and the pointer swap, :mod:`mlops.schema.snapshots`. The job gets the ``mlops.schema`` package
as its ``--extra-py-files`` code bundle (:mod:`mlops.etl.bundle`), as Glue puts such a zip on the
script's path.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from mlops.schema.curated import (
    BASKET_FEATURES,
    CATEGORICAL_FEATURES,
    DMS_COLUMNS,
    HISTORY_FEATURES,
    KEY,
    LABEL,
    LABEL_CLASSES,
    PRODUCT_HISTORY_FEATURES,
    PRODUCT_RATE_PRIOR,
    PRODUCT_RATE_PRIOR_ORDERS,
    RAW_TABLES,
    SHARE_CATEGORIES,
    SPLIT,
    SPLIT_BOUNDS,
    SPLITS,
    curated_types,
)
from mlops.schema.job_args import parse_job_args
from mlops.schema.snapshots import LakeFiles, run_key_safe, swap_in

JOB_ARGS = ("JOB_NAME", "raw_uri", "curated_uri", "staging_uri", "run_key")
JOB_DEFAULTS = {"sample_fraction": "1.0", "shuffle_partitions": "8"}
ZERO_WITHOUT_LINES = (
    "basket_gross", "basket_value", "avg_unit_price", "max_unit_price", "basket_weight_kg", "max_discount_pct",
)  # fmt: skip


def parse_args(argv: list[str]) -> dict[str, str]:
    """This job's ``--KEY value`` arguments, with its defaults."""
    return parse_job_args(argv, JOB_ARGS, JOB_DEFAULTS)


# ---------------------------------------------------------------------------------- transform


def latest_state(frame: Any, key: str) -> Any:
    """Apply the DMS change rows in commit order: last row per key, dropped if its Op is 'D'."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    commit_ts = F.col("dms_commit_ts").cast("timestamp")  # DMS writes it as 'yyyy-MM-dd HH:mm:ss.SSSSSS' text
    order = Window.partitionBy(key).orderBy(F.col("dms_change_seq").desc(), commit_ts.desc())
    return (
        frame.withColumn("_rn", F.row_number().over(order))
        .filter((F.col("_rn") == 1) & (F.col("Op") != "D"))
        .drop("_rn", *DMS_COLUMNS)
    )


def read_raw_table(spark: Any, raw_uri: str, table: str) -> Any:
    """All full-load and CDC Parquet files of one raw table folder (CDC files sit in YYYY/MM/DD/ folders)."""
    reader = spark.read.option("pathGlobFilter", "*.parquet").option("recursiveFileLookup", "true")
    return reader.parquet(f"{raw_uri.rstrip('/')}/{table}")


def orders_through(spark: Any, raw_uri: str) -> str | None:
    """The newest DMS commit time of the raw ``orders`` table read (ISO 8601, UTC): the snapshot's cut-off.

    Every order whose terminal status was committed after it is labelled data the snapshot (and so a
    model trained on it) has not seen; the model-quality job counts those against
    ``monitoring.retrain_on_new_labels``.
    """
    from pyspark.sql import functions as F

    newest = F.max(F.col("dms_commit_ts").cast("timestamp"))  # formatted in the session's time zone, UTC
    row = read_raw_table(spark, raw_uri, "orders").agg(F.date_format(newest, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS")).first()
    return None if row is None or row[0] is None else f"{row[0]}+00:00"


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
        F.coalesce(F.col("discount_pct").cast("double"), F.lit(0.0)).alias("discount"),
    )
    shares = [F.avg((F.col("category") == F.lit(c)).cast("double")).alias(f"share_{c}") for c in SHARE_CATEGORIES]
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
        F.max("discount").alias("max_discount_pct"),
        *shares,
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


def product_history_features(orders: Any, items: Any) -> Any:
    """Leak-free product history per order (``mlops.schema.curated``: smoothed rates of known outcomes)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    pairs = (
        items.select("order_id", "product_id")
        .distinct()
        .join(orders.select("order_id", "order_ts", "updated_at", "status"), "order_id")
    )
    placed = pairs.select(
        "product_id",
        F.col("order_id").cast("long").alias("order_id"),
        F.expr("unix_micros(cast(order_ts as timestamp))").alias("t"),
        *(F.lit(0).alias(name) for name in ("term", "ret", "canc")),
    )
    outcomes = pairs.filter(F.col("status").isin(*LABEL_CLASSES)).select(
        "product_id",
        F.lit(None).cast("long").alias("order_id"),
        F.expr("unix_micros(cast(updated_at as timestamp))").alias("t"),
        F.lit(1).alias("term"),
        (F.col("status") == "returned").cast("int").alias("ret"),
        (F.col("status") == "cancelled").cast("int").alias("canc"),
    )
    before = Window.partitionBy("product_id").orderBy("t").rangeBetween(Window.unboundedPreceding, -1)
    prior = {name: F.coalesce(F.sum(name).over(before), F.lit(0)) for name in ("term", "ret", "canc")}
    k = PRODUCT_RATE_PRIOR_ORDERS
    rate = lambda name, p: (prior[name] + k * p) / (prior["term"] + k)  # noqa: E731
    per_product = placed.unionByName(outcomes).select(
        "order_id",
        prior["term"].alias("term"),
        rate("ret", PRODUCT_RATE_PRIOR["returned"]).alias("ret_rate"),
        rate("canc", PRODUCT_RATE_PRIOR["cancelled"]).alias("canc_rate"),
    )
    return (
        per_product.filter(F.col("order_id").isNotNull())
        .groupBy("order_id")
        .agg(
            F.max("ret_rate").alias("product_return_rate_max"),
            F.avg("ret_rate").alias("product_return_rate_mean"),
            F.avg("canc_rate").alias("product_cancel_rate_mean"),
            F.min("term").cast("int").alias("product_prior_terminal_min"),
        )
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
        .fillna(0.0, subset=[*ZERO_WITHOUT_LINES, *(f"share_{c}" for c in SHARE_CATEGORIES)])
        .fillna("none", subset=["top_category"])
        .join(product_history_features(tables["orders"], tables["order_items"]), "order_id", "left")
        .fillna(PRODUCT_RATE_PRIOR["returned"], subset=["product_return_rate_max", "product_return_rate_mean"])
        .fillna(PRODUCT_RATE_PRIOR["cancelled"], subset=["product_cancel_rate_mean"])
        .fillna(0, subset=["product_prior_terminal_min"])
    )
    labelled = orders.filter(F.col("status").isin(*LABEL_CLASSES))
    if sample_fraction < 1.0:
        labelled = labelled.filter(split_bucket(F.col("order_id"), 9) % 10_000 < round(sample_fraction * 10_000))
    history = history_features(orders)
    frame = labelled.join(customers, "customer_id", "inner").join(history, "order_id", "left")
    return frame.select(*curated_columns())


def curated_columns() -> list[Any]:
    """The curated table's select list over the joined orders, in the contract's column order
    (``mlops.schema.curated.CURATED_COLUMNS``; the tests compare the output with it)."""
    from pyspark.sql import functions as F

    ts = F.col("order_ts").cast("timestamp")
    dow = (F.dayofweek(ts) + 5) % 7 + 1  # Spark: 1 = Sunday; ISO: 1 = Monday
    bucket = split_bucket(F.col("order_id")) % 100
    return [
        F.col("order_id").cast("long").alias("order_id"),
        F.col("customer_id").cast("long").alias("customer_id"),
        ts.alias("order_ts"),
        *CATEGORICAL_FEATURES,
        F.col("promised_days").cast("int").alias("promised_days"),
        F.col("shipping_fee").cast("double").alias("shipping_fee"),
        F.col("discount_code").isNotNull().cast("int").alias("has_discount_code"),
        (F.col("ship_country") != F.col("customer_country")).cast("int").alias("cross_border"),
        "marketing_opt_in",
        (F.year(ts).cast("double") - F.col("birth_year")).alias("customer_age"),
        ((F.unix_timestamp(ts) - F.unix_timestamp(F.col("signup_ts").cast("timestamp"))) / 86400.0).alias(
            "customer_tenure_days"
        ),
        *BASKET_FEATURES,
        F.hour(ts).alias("order_hour"),
        dow.cast("int").alias("order_dow"),
        F.month(ts).alias("order_month"),
        (dow >= 6).cast("int").alias("is_weekend"),
        *HISTORY_FEATURES,
        *PRODUCT_HISTORY_FEATURES,
        F.col("status").alias(LABEL),
        F.when(bucket < SPLIT_BOUNDS[0], "train")
        .when(bucket < SPLIT_BOUNDS[1], "validation")
        .otherwise("test")
        .alias(SPLIT),
    ]


def load_latest_tables(spark: Any, raw_uri: str) -> dict[str, Any]:
    """Latest state of every raw table the features need."""
    return {table: latest_state(read_raw_table(spark, raw_uri, table), key) for table, key in RAW_TABLES.items()}


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
        "orders_through": orders_through(spark, args["raw_uri"]),
    }
    pointer = swap_in(files, staged_uri, args["curated_uri"], run_key, manifest)
    print(f"MLOPS_FEATURES_RESULT {json.dumps(pointer, sort_keys=True)}", flush=True)
    print(f"built {pointer['rows']} rows in {time.monotonic() - started:.1f}s -> {pointer['uri']}", flush=True)
    return pointer


def main(argv: list[str]) -> int:
    args = parse_args(argv)
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
