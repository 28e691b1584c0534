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
   **Offline store.** With ``--offline_store_uri`` the entity features come from the feature groups' offline
   store (SageMaker's Glue table format: ``.../offline-store/<group>-<created>/data/year=/month=/day=/hour=``
   by event time): ``featurestore://<region>`` on aws (each group's folder is the one Feature Store resolved,
   DescribeFeatureGroup's ``ResolvedOutputS3Uri``) or a store root (``file://`` locally). Who writes it is
   ``--offline_store_writer``: ``job`` on both targets (the job appends the history records in SageMaker's
   layout, the batch ingestion the Feature Store Spark connector does with ``target_stores=["OfflineStore"]``;
   SageMaker's replication of the online puts adds the latest records again, and a record's latest write is
   what counts) or ``feature-store`` (SageMaker alone writes it; the job only reads it, and fails naming the
   fix if a group has no store yet). A writer lists the store once and reads each key's latest write from
   its compacted copy (``<group>-<created>/compacted`` beside ``data``: the latest writes and the files they
   cover, rewritten after each append) plus any file written since (read with pyarrow in the Spark tasks,
   not by Spark's per-file reader); without a usable copy it reads every file. It appends only the
   records that are new or changed since their latest write and a deletion (``is_deleted``) of each record
   the source no longer yields, one Parquet file per hour written with pyarrow in a staging folder that is
   moved in afterwards; a rerun over the same source appends nothing. The first run backfills every hour.
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

import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mlops.schema.curated import (
    BASKET_FEATURES,
    CATEGORICAL_FEATURES,
    CUSTOMER_RATE_PRIOR,
    CUSTOMER_RATE_PRIOR_ORDERS,
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
    smoothed_rate,
)
from mlops.schema.feature_groups import (
    CUSTOMER_COUNTERS,
    CUSTOMER_HISTORY,
    EVENT_TIME,
    FEATURE_GROUPS,
    PRODUCT_COUNTERS,
    PRODUCT_HISTORY,
    PRODUCT_RECORD_PERIOD_MICROS,
    RECORD_DECIMALS,
    FeatureGroup,
    describe_feature_group_request,
    offline_table_uri,
    put_record_request,
    resolved_offline_uri,
)
from mlops.schema.job_args import parse_job_args
from mlops.schema.snapshots import LakeFiles, run_key_safe, swap_in

JOB_ARGS = ("JOB_NAME", "raw_uri", "curated_uri", "staging_uri", "run_key")
JOB_DEFAULTS = {
    "sample_fraction": "1.0",
    "shuffle_partitions": "8",
    # featurestore://<region> (aws: the groups' own stores) or a store root (file:// locally); empty: the entity
    # records are joined in memory, no offline store written
    "offline_store_uri": "",
    # who writes the offline store: "job" (this job appends what changed: batch ingestion into the offline store)
    # or "feature-store" (SageMaker alone writes it from PutRecord; the job only reads it)
    "offline_store_writer": "job",
    "feature_group_prefix": "mlops-local",
    "account": "",  # empty: the caller's account (STS) on S3, 000000000000 in a local lake
    "region": "local",
    "online_store_uri": "",  # featurestore://<region> (aws) or file:// (local SQLite) to fill; empty: none
}
FEATURE_STORE_SCHEME = "featurestore://"  # --online/--offline_store_uri of SageMaker Feature Store
PUT_RECORD_ATTEMPTS = 5
PUT_RECORD_BACKOFF_S = 0.2
RETRYABLE_ERRORS = frozenset({"ThrottlingException", "ServiceUnavailable", "InternalFailure"})
LOCAL_ACCOUNT = "000000000000"
OFFLINE_PARTITIONS = ("year", "month", "day", "hour")  # SageMaker's Glue table format: event-time hours
OFFLINE_WRITERS = ("job", "feature-store")
MAX_CATEGORY_COLUMNS = 64  # basket_features: one aggregate per line category up to this many
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


def line_categories(products: Any) -> list[str]:
    """Every category an order line can have (the products' categories and ``unknown`` for a line whose product
    is missing), sorted: the columns :func:`basket_features` aggregates per category."""
    from pyspark.sql import functions as F

    found = products.select(F.coalesce(F.col("category"), F.lit("unknown"))).distinct().collect()
    return sorted({row[0] for row in found} | {"unknown"})


def _line_value() -> Any:
    """An order line's value: quantity times unit price, less the line's discount (percent; none is 0)."""
    from pyspark.sql import functions as F

    discount = F.coalesce(F.col("discount_pct").cast("double"), F.lit(0.0))
    return F.col("quantity").cast("long") * F.col("unit_price").cast("double") * (F.lit(1.0) - discount / 100.0)


def basket_values(items: Any) -> Any:
    """Per order the value of its lines (:func:`basket_features`' ``basket_value``) from the order lines alone:
    all the customer records take from the basket, without the products' join and the other aggregates."""
    from pyspark.sql import functions as F

    return items.groupBy("order_id").agg(F.sum(_line_value()).alias("basket_value"))


def basket_features(items: Any, products: Any, max_category_columns: int = MAX_CATEGORY_COLUMNS) -> Any:
    """Per-order basket aggregates from the latest order lines and products.

    ``distinct_categories`` and ``top_category`` (the category of the line of greatest value, the greatest
    category name on a tie) come from one maximum per category (:func:`line_categories`), so Spark aggregates
    with its code-generated hash aggregate; ``collect_set`` and a maximum over a struct would make it fall back
    to an interpreted sort-based one, three times slower at 1M orders (BENCHMARKS.md). With more categories than
    ``max_category_columns`` the job keeps the sort-based aggregate rather than grow one column per category.
    """
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
        _line_value().alias("value"),
        F.coalesce(F.col("category"), F.lit("unknown")).alias("category"),
        (qty * F.coalesce(F.col("weight_kg"), F.lit(0.0))).alias("weight"),
        F.when(F.col("is_fragile"), qty).otherwise(F.lit(0)).alias("fragile"),
        F.coalesce(F.col("discount_pct").cast("double"), F.lit(0.0)).alias("discount"),
    )
    shares = [F.avg((F.col("category") == F.lit(c)).cast("double")).alias(f"share_{c}") for c in SHARE_CATEGORIES]
    sums = (
        F.count(F.lit(1)).cast("int").alias("basket_lines"),
        F.sum("qty").cast("int").alias("basket_units"),
        F.sum("gross").alias("basket_gross"),
        F.sum("value").alias("basket_value"),
        F.avg("price").alias("avg_unit_price"),
        F.max("price").alias("max_unit_price"),
        F.sum("fragile").cast("int").alias("fragile_units"),
        F.sum("weight").alias("basket_weight_kg"),
        F.max("discount").alias("max_discount_pct"),
        *shares,
    )
    categories = line_categories(products)
    if len(categories) > max_category_columns:
        return lines.groupBy("order_id").agg(
            *sums,
            F.size(F.collect_set("category")).cast("int").alias("distinct_categories"),
            F.max(F.struct("value", "category")).getField("category").alias("top_category"),
        )
    # per category, its lines' greatest value (a null value ranks below every number, as in a struct's order)
    tops = {c: f"_top_{i}" for i, c in enumerate(categories)}
    top_value = F.coalesce(F.col("value"), F.lit(float("-inf")))
    per_category = [F.max(F.when(F.col("category") == F.lit(c), top_value)).alias(tops[c]) for c in categories]
    present = [F.col(top).isNotNull() for top in tops.values()]
    candidates = [
        F.when(F.col(top).isNotNull(), F.struct(F.col(top).alias("value"), F.lit(c).alias("category")))
        for c, top in tops.items()
    ]
    top_line = candidates[0] if len(candidates) == 1 else F.greatest(*candidates)  # greatest needs two
    return (
        lines.groupBy("order_id")
        .agg(*sums, *per_category)
        .withColumn("distinct_categories", sum((p.cast("int") for p in present), F.lit(0)).cast("int"))
        .withColumn("top_category", top_line.getField("category"))
        .drop(*tops.values())
    )


def _micros(column: str) -> Any:
    from pyspark.sql import functions as F

    return F.expr(f"unix_micros(cast({column} as timestamp))")


def _running_records(events: Any, entity: str, sums: tuple[str, ...], maxes: tuple[str, ...] = ()) -> Any:
    """One record per (entity, instant ``t``): the entity's totals of ``sums`` (and max of ``maxes``) through ``t``.
    The events are shuffled once, by entity: that partitioning serves both the per-instant sums and the running
    window (grouping by entity and instant would shuffle by both, and the window again by entity)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    per_instant = (
        events.repartition(entity)
        .groupBy(entity, "t")
        .agg(*(F.sum(c).alias(c) for c in sums), *(F.max(c).alias(c) for c in maxes))
    )
    through = Window.partitionBy(entity).orderBy("t").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    return per_instant.select(
        entity, "t", *(F.sum(c).over(through).alias(c) for c in sums), *(F.max(c).over(through).alias(c) for c in maxes)
    )


def _baseline(frame: Any, entity: str, zeros: tuple[str, ...]) -> Any:
    """A zero-history record at the epoch for every entity of ``frame``: the online store knows each entity
    (profile or attributes) before its first outcome; a point-in-time join reads it as "no history"."""
    from pyspark.sql import functions as F

    return frame.select(
        F.col(entity), F.lit(0).cast("long").alias("t"), *(F.lit(0).cast("long").alias(c) for c in zeros)
    )


def customer_records(orders: Any, customers: Any) -> Any:
    """Customer-history feature records (``mlops.schema.feature_groups.CUSTOMER_HISTORY``): per customer and
    instant, the orders placed and the outcomes known through it, with the customer's profile."""
    from pyspark.sql import functions as F

    counts = ("orders", "terminal_orders", "returned_orders", "cancelled_orders")
    placed = orders.select(
        "customer_id", _micros("order_ts").alias("t"), F.lit(1).alias("orders"), F.col("basket_value").alias("spend"),
        *(F.lit(0).alias(c) for c in counts[1:]), _micros("order_ts").alias("last_order_micros"),
    )  # fmt: skip
    outcomes = orders.filter(F.col("status").isin(*LABEL_CLASSES)).select(
        "customer_id", _micros("updated_at").alias("t"), F.lit(0).alias("orders"), F.lit(0.0).alias("spend"),
        F.lit(1).alias("terminal_orders"), (F.col("status") == "returned").cast("int").alias("returned_orders"),
        (F.col("status") == "cancelled").cast("int").alias("cancelled_orders"),
        F.lit(None).cast("long").alias("last_order_micros"),
    )  # fmt: skip
    running = _running_records(placed.unionByName(outcomes), "customer_id", (*counts, "spend"), ("last_order_micros",))
    base = _baseline(customers, "customer_id", counts).withColumn("spend", F.lit(0.0))
    base = base.withColumn("last_order_micros", F.lit(None).cast("long"))
    profile = customers.select(
        "customer_id", "country", "segment", F.col("birth_year").cast("double").alias("birth_year"),
        F.col("marketing_opt_in").cast("long").alias("marketing_opt_in"), _micros("signup_ts").alias("signup_micros"),
    )  # fmt: skip
    return _as_records(running.unionByName(base).join(profile, "customer_id", "left"), CUSTOMER_HISTORY)


def product_records(orders: Any, items: Any, products: Any) -> Any:
    """Product-history feature records (``PRODUCT_HISTORY``): per product and complete UTC day with outcomes, the
    outcomes of its orders known through the day (each order once per product), stamped at the day's last
    microsecond (``PRODUCT_RECORD_PERIOD_MICROS``), with the product's attributes. A day is complete once the
    orders hold a change after it; the day in progress gets its record in a later run."""
    from pyspark.sql import functions as F

    pairs = (
        items.select("order_id", "product_id")
        .distinct()
        .join(orders.select("order_id", "updated_at", "status"), "order_id")
    )
    period = PRODUCT_RECORD_PERIOD_MICROS
    outcomes = pairs.filter(F.col("status").isin(*LABEL_CLASSES)).select(
        "product_id", ((F.floor(_micros("updated_at") / period) + 1) * period - 1).cast("long").alias("t"),
        F.lit(1).alias("terminal_orders"), (F.col("status") == "returned").cast("int").alias("returned_orders"),
        (F.col("status") == "cancelled").cast("int").alias("cancelled_orders"),
    )  # fmt: skip
    horizon = orders.agg(F.max(_micros("updated_at")).alias("_horizon"))
    running = (
        _running_records(outcomes, "product_id", PRODUCT_COUNTERS)
        .crossJoin(F.broadcast(horizon))
        .filter(F.col("t") < F.col("_horizon"))
        .drop("_horizon")
    )
    attributes = products.select(
        "product_id", "category", F.col("weight_kg").cast("double").alias("weight_kg"),
        F.col("is_fragile").cast("long").alias("is_fragile"),
    )  # fmt: skip
    base = _baseline(products, "product_id", PRODUCT_COUNTERS)
    return _as_records(running.unionByName(base).join(attributes, "product_id", "left"), PRODUCT_HISTORY)


def _as_records(frame: Any, group: FeatureGroup) -> Any:
    """The record columns of ``group`` in order, event time in seconds (Fractional), SQL types as defined,
    doubles rounded to ``RECORD_DECIMALS``."""
    from pyspark.sql import functions as F

    def typed(name: str, kind: str) -> Any:
        value = F.col(name).cast(kind)
        return (F.round(value, RECORD_DECIMALS) if kind == "double" else value).alias(name)

    return frame.select(
        F.col(group.record_identifier).cast("long").alias(group.record_identifier),
        (F.col("t") / 1_000_000.0).alias(group.event_time),
        *(typed(name, kind) for name, kind in group.columns),
    )


def point_in_time(probes: Any, records: Any, group: FeatureGroup, columns: tuple[str, ...]) -> Any:
    """``probes`` (the entity column and ``t``, micros) with ``columns`` of the entity's record with the latest
    event time strictly before ``t`` (null without one): a record at the probe's instant is not seen."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    entity = group.record_identifier
    recs = records.select(
        entity, F.round(F.col(group.event_time) * 1_000_000.0).cast("long").alias("t"), F.lit(1).alias("_kind"),
        F.struct(*columns).alias("_rec"),
    )  # fmt: skip
    probe_rows = probes.withColumn("_kind", F.lit(0)).withColumn("_rec", F.lit(None).cast(recs.schema["_rec"].dataType))
    upto = Window.partitionBy(entity).orderBy("t", "_kind").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    seen = probe_rows.unionByName(recs, allowMissingColumns=True).withColumn("_seen", F.last("_rec", True).over(upto))
    return seen.filter(F.col("_kind") == 0).select(*probes.columns, *(F.col(f"_seen.{c}").alias(c) for c in columns))


def history_features(orders: Any, records: Any) -> Any:
    """Customer history per order from the point-in-time customer records (``customer_history_values``)."""
    from pyspark.sql import functions as F

    probes = orders.select("order_id", "customer_id", _micros("order_ts").alias("t"))
    seen = point_in_time(probes, records, CUSTOMER_HISTORY, CUSTOMER_COUNTERS)
    terminal = F.coalesce(F.col("terminal_orders"), F.lit(0))
    rate = lambda col: F.when(terminal > 0, F.col(col) / terminal).otherwise(0.0)  # noqa: E731
    smoothed = lambda outcome: smoothed_rate(  # noqa: E731
        F.coalesce(F.col(f"{outcome}_orders"), F.lit(0)),
        terminal,
        CUSTOMER_RATE_PRIOR[outcome],
        CUSTOMER_RATE_PRIOR_ORDERS,
    )
    return seen.select(
        "order_id",
        F.coalesce(F.col("orders"), F.lit(0)).cast("int").alias("prior_orders"),
        F.coalesce(F.col("spend"), F.lit(0.0)).alias("prior_spend"),
        terminal.cast("int").alias("prior_terminal_orders"),
        rate("returned_orders").cast("double").alias("prior_return_rate"),
        rate("cancelled_orders").cast("double").alias("prior_cancel_rate"),
        smoothed("returned").cast("double").alias("prior_return_rate_smoothed"),
        smoothed("cancelled").cast("double").alias("prior_cancel_rate_smoothed"),
        ((F.col("t") - F.col("last_order_micros")) / 86_400_000_000.0).alias("days_since_prev_order"),
    )


def product_history_features(orders: Any, items: Any, records: Any) -> Any:
    """Product history per order from the point-in-time product records (``product_history_values``)."""
    from pyspark.sql import functions as F

    probes = (
        items.select("order_id", "product_id").distinct()
        .join(orders.select("order_id", _micros("order_ts").alias("t")), "order_id")
    )  # fmt: skip
    seen = point_in_time(probes, records, PRODUCT_HISTORY, PRODUCT_COUNTERS)
    prior = {c: F.coalesce(F.col(c), F.lit(0)) for c in PRODUCT_COUNTERS}
    rate = lambda outcome: smoothed_rate(  # noqa: E731
        prior[f"{outcome}_orders"], prior["terminal_orders"], PRODUCT_RATE_PRIOR[outcome], PRODUCT_RATE_PRIOR_ORDERS
    )
    return (
        seen.select(
            "order_id",
            prior["terminal_orders"].alias("term"),
            rate("returned").alias("ret_rate"),
            rate("cancelled").alias("canc_rate"),
        )
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


def customers_of(tables: dict[str, Any]) -> Any:
    """The customer columns the curated table takes from the latest ``customers`` table."""
    from pyspark.sql import functions as F

    return tables["customers"].select(
        "customer_id",
        F.col("country").alias("customer_country"),
        F.col("segment").alias("customer_segment"),
        F.col("birth_year").cast("double").alias("birth_year"),
        F.col("marketing_opt_in").cast("int").alias("marketing_opt_in"),
        F.col("signup_ts"),
    )


def orders_with_baskets(tables: dict[str, Any]) -> Any:
    """Latest orders with their basket aggregates (zeros / ``none`` without lines)."""
    baskets = basket_features(tables["order_items"], tables["products"])
    return (
        tables["orders"]
        .join(baskets, "order_id", "left")
        .fillna(0, subset=["basket_lines", "basket_units", "distinct_categories", "fragile_units"])
        .fillna(0.0, subset=[*ZERO_WITHOUT_LINES, *(f"share_{c}" for c in SHARE_CATEGORIES)])
        .fillna("none", subset=["top_category"])
    )


def entity_records(tables: dict[str, Any]) -> dict[str, Any]:
    """Every feature group's records (group name -> DataFrame) from the latest raw tables. The records need
    only the orders' basket values (:func:`basket_values`), not every basket aggregate (2-4 s less per job
    at 1M orders)."""
    orders, items = tables["orders"], tables["order_items"]
    valued = orders.join(basket_values(items), "order_id", "left").fillna(0.0, subset=["basket_value"])
    return {
        CUSTOMER_HISTORY.name: customer_records(valued, tables["customers"]),
        PRODUCT_HISTORY.name: product_records(orders, items, tables["products"]),
    }


def build_features(tables: dict[str, Any], sample_fraction: float = 1.0, records: dict[str, Any] | None = None) -> Any:
    """The pure transform: latest-state raw DataFrames (by table name) and the feature groups' records (read
    from the offline store by the job; computed from ``tables`` when not given) -> curated DataFrame."""
    from pyspark.sql import functions as F

    records = records or entity_records(tables)
    orders = (
        orders_with_baskets(tables)
        .join(
            product_history_features(tables["orders"], tables["order_items"], records[PRODUCT_HISTORY.name]),
            "order_id",
            "left",
        )
        .fillna(PRODUCT_RATE_PRIOR["returned"], subset=["product_return_rate_max", "product_return_rate_mean"])
        .fillna(PRODUCT_RATE_PRIOR["cancelled"], subset=["product_cancel_rate_mean"])
        .fillna(0, subset=["product_prior_terminal_min"])
    )
    labelled = orders.filter(F.col("status").isin(*LABEL_CLASSES))
    if sample_fraction < 1.0:
        labelled = labelled.filter(split_bucket(F.col("order_id"), 9) % 10_000 < round(sample_fraction * 10_000))
    history = history_features(labelled, records[CUSTOMER_HISTORY.name])
    frame = labelled.join(customers_of(tables), "customer_id", "inner").join(history, "order_id", "left")
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


# ------------------------------------------------------------------------- the offline store


def offline_group_uri(files: LakeFiles, args: dict[str, str], group: FeatureGroup, must_exist: bool = False) -> str:
    """The group's offline-store data folder (SageMaker's layout). ``featurestore://<region>``: the one SageMaker
    Feature Store resolved for the group (DescribeFeatureGroup). A store root (``file://``, ``s3://``): an
    existing ``<group>-<created>`` folder is reused, else ``created`` is now (the feature group's creation
    time), or ValueError if ``must_exist``."""
    store = args["offline_store_uri"].rstrip("/")
    name = f"{args['feature_group_prefix']}-{group.name}"
    if store.startswith(FEATURE_STORE_SCHEME):
        return feature_group_offline_uri(name, store.removeprefix(FEATURE_STORE_SCHEME) or args["region"])
    account = args["account"] or (_caller_account() if store.startswith("s3://") else LOCAL_ACCOUNT)
    base = f"{store}/{account}/sagemaker/{args['region']}/offline-store"
    existing = [n for n in files.list_children(base) if n.rsplit("-", 1)[0] == name and n.rsplit("-", 1)[1].isdigit()]
    if must_exist and not existing:
        raise ValueError(
            f"no offline store of feature group {name} under {base}: create the feature groups and put their "
            "records (PutRecord) first, or run with --offline_store_writer job"
        )
    created = int(existing[0].rsplit("-", 1)[1]) if existing else int(time.time())
    return offline_table_uri(store, account, args["region"], name, created)


def feature_group_offline_uri(group_name: str, region: str, client: Any = None) -> str:
    """The data folder SageMaker Feature Store resolved for a group's offline store (its ``ResolvedOutputS3Uri``:
    ``<S3Uri>/<account>/sagemaker/<region>/offline-store/<group>-<created>/data``); ValueError naming the fix
    if the group does not exist, is not created yet or has no offline store."""
    if client is None:
        import boto3  # only on aws (Glue has it)

        client = boto3.client("sagemaker", region_name=region)
    try:
        described = client.describe_feature_group(**describe_feature_group_request(group_name))
    except Exception as exc:
        if _error_code(exc) in {"ResourceNotFound", "ValidationException"}:
            raise ValueError(
                f"feature group {group_name} not found in {region}: deploy infra/cfn/data.yaml (it creates the "
                "feature groups) or fix --feature_group_prefix"
            ) from exc
        raise
    return resolved_offline_uri(described)


def _caller_account() -> str:
    import boto3  # only on aws (Glue has it)

    return str(boto3.client("sts").get_caller_identity()["Account"])


def offline_rows(records: Any, written_at: float, deleted: bool = False) -> Any:
    """Records as the offline store holds them: the three columns it adds and the hourly event-time partitions."""
    from pyspark.sql import functions as F

    event = F.timestamp_micros(F.round(F.col(EVENT_TIME) * 1_000_000.0).cast("long"))
    return records.select(
        "*",
        F.timestamp_micros(F.lit(int(written_at * 1_000_000))).alias("write_time"),
        F.timestamp_micros(F.lit(int(written_at * 1_000_000))).alias("api_invocation_time"),
        F.lit(deleted).alias("is_deleted"),
        F.date_format(event, "yyyy").alias("year"),
        F.date_format(event, "MM").alias("month"),
        F.date_format(event, "dd").alias("day"),
        F.date_format(event, "HH").alias("hour"),
    )


def offline_schema(group: FeatureGroup) -> str:
    """The Spark DDL of a group's offline-store rows (record columns, then the three the store adds)."""
    pairs = ((group.record_identifier, "bigint"), (group.event_time, "double"), *group.columns)
    added = "write_time timestamp, api_invocation_time timestamp, is_deleted boolean"
    return ", ".join(f"{name} {kind}" for name, kind in pairs) + ", " + added


def _arrow_schema(group: FeatureGroup) -> Any:
    """The pyarrow schema of the offline store's Parquet files (timestamps in microseconds, UTC)."""
    import pyarrow as pa

    kinds = {"bigint": pa.int64(), "double": pa.float64(), "string": pa.string()}
    pairs = ((group.record_identifier, "bigint"), (group.event_time, "double"), *group.columns)
    stamp = pa.timestamp("us", tz="UTC")
    added = [("write_time", stamp), ("api_invocation_time", stamp), ("is_deleted", pa.bool_())]
    return pa.schema([(name, kinds[kind]) for name, kind in pairs] + added)


def write_hour_files(table: Any, staged: str, name: str) -> list[tuple[str, int]]:
    """Write an Arrow table of offline-store rows (record columns, the three the store adds, then the
    ``year``/``month``/``day``/``hour`` partition values) under ``staged/year=/month=/day=/hour=``, one file
    named ``name`` per hour; returns (path relative to ``staged``, rows) of each file. The hours are thousands
    per run and a few hundred rows each, so the rows are sorted by hour once and each hour's slice written with
    ``pq.write_table`` without dictionary encoding (nothing to gain on a few hundred rows): 2.1x faster than
    pyarrow's partitioned dataset writer (``bench/bench_offline_hours.py``, BENCHMARKS.md)."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pyarrow import fs as pafs

    if table.num_rows == 0:
        return []
    hour = pc.binary_join_element_wise(*(table[part] for part in OFFLINE_PARTITIONS), "/")  # yyyy/MM/dd/HH
    if hour.null_count:
        raise ValueError(
            f"{hour.null_count} offline-store rows have no event time, so no hour to file them under (nothing was "
            "moved into the store): give their orders an order_ts and updated_at in the source, then rerun the job"
        )
    order = pc.sort_indices(hour)
    hour, records = hour.take(order), table.drop_columns(list(OFFLINE_PARTITIONS)).take(order)
    changes = pc.not_equal(hour[1:], hour[:-1]).to_numpy(zero_copy_only=False)
    starts = [0, *(int(i) + 1 for i in np.flatnonzero(changes))]
    filesystem, root = pafs.FileSystem.from_uri(staged)
    root = root.rstrip("/")
    written: list[tuple[str, int]] = []
    for first, stop in zip(starts, [*starts[1:], records.num_rows], strict=True):
        values = hour[first].as_py().split("/")
        folder = "/".join(f"{key}={value}" for key, value in zip(OFFLINE_PARTITIONS, values, strict=True))
        if filesystem.type_name == "local":  # object stores have no folders to make
            filesystem.create_dir(f"{root}/{folder}")
        rows = records.slice(first, stop - first)
        pq.write_table(rows, f"{root}/{folder}/{name}", filesystem=filesystem, use_dictionary=False)
        written.append((f"{folder}/{name}", rows.num_rows))
    return written


def _write_hours(batches: Any, staged: str, group: FeatureGroup, stamp: str) -> Any:
    """(runs in the Spark tasks) Write the task's Arrow batches in the hourly layout (:func:`write_hour_files`);
    yields (path relative to ``staged``, rows) of each file written. No Hadoop committer: the staged folder is
    moved in only after every task succeeded."""
    import pyarrow as pa
    from pyspark import TaskContext

    received = [batch for batch in batches if batch.num_rows]
    if not received:
        return
    schema = pa.schema([*_arrow_schema(group), *((name, pa.string()) for name in OFFLINE_PARTITIONS)])
    table = pa.Table.from_batches(received).select(schema.names).cast(schema)
    written = write_hour_files(table, staged, f"{stamp}_{TaskContext.get().partitionId():05d}.parquet")
    files = pa.schema([("path", pa.string()), ("rows", pa.int64())])
    yield pa.RecordBatch.from_pydict({"path": [p for p, _ in written], "rows": [n for _, n in written]}, schema=files)


def write_offline_rows(rows: Any, group: FeatureGroup, staged: str, written_at: float) -> tuple[list[str], int]:
    """Write ``rows`` (:func:`offline_rows`) to ``staged`` in the hourly layout, one file per hour; the files'
    paths relative to ``staged`` and the rows written."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(written_at)) + f"{int(written_at * 1e6) % 1_000_000:06d}"
    tasks = rows.sparkSession.sparkContext.defaultParallelism
    hours = rows.repartition(tasks, *OFFLINE_PARTITIONS)
    written = hours.mapInArrow(lambda it: _write_hours(it, staged, group, stamp), "path string, rows long").collect()
    return sorted(row["path"] for row in written), sum(row["rows"] for row in written)


def offline_files(data_uri: str) -> list[str]:
    """Every Parquet file under a group's offline-store data folder, relative to it (one listing call; none if
    the folder is absent)."""
    from pyarrow import fs as pafs

    filesystem, root = pafs.FileSystem.from_uri(data_uri)
    found = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    prefix = root.rstrip("/") + "/"
    return sorted(f.path.removeprefix(prefix) for f in found if f.is_file and f.path.endswith(".parquet"))


def _read_files(frames: Any, data_uri: str, group: FeatureGroup) -> Any:
    """(runs in the Spark tasks) The rows of the task's offline-store files, read with pyarrow."""
    import pyarrow.dataset as ds
    from pyarrow import fs as pafs

    schema = _arrow_schema(group)
    filesystem, root = pafs.FileSystem.from_uri(data_uri)
    for frame in frames:
        paths = [f"{root.rstrip('/')}/{path}" for path in frame["path"]]
        if paths:
            yield ds.dataset(paths, schema=schema, format="parquet", filesystem=filesystem).to_table().to_pandas()


def read_offline_files(spark: Any, data_uri: str, group: FeatureGroup, paths: list[str]) -> Any:
    """Every row (all writes, deleted ones too) of the given files of a group's offline store (paths relative to
    its data folder), read with pyarrow in the Spark tasks: Spark's own reader opens tens of thousands of tiny
    hourly files slowly."""
    if not paths:
        return spark.createDataFrame([], offline_schema(group))
    slices = max(1, min(len(paths), spark.sparkContext.defaultParallelism * 2))
    listed = spark.createDataFrame([(p,) for p in paths], "path string").repartition(slices)
    return listed.mapInPandas(lambda it: _read_files(it, data_uri, group), offline_schema(group))


def read_offline_rows(spark: Any, data_uri: str, group: FeatureGroup) -> Any:
    """Every row (all writes, deleted ones too) of a group's offline store (its files listed once)."""
    return read_offline_files(spark, data_uri, group, offline_files(data_uri))


def latest_writes(rows: Any, group: FeatureGroup) -> Any:
    """Per record identifier and event time the latest write (SageMaker's offline-store semantics), deletions
    included, with the columns the store adds."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    latest = Window.partitionBy(group.record_identifier, group.event_time).orderBy(
        F.col("write_time").desc(), F.col("api_invocation_time").desc()
    )
    ranked = rows.withColumn("_rn", F.row_number().over(latest))
    return ranked.filter(F.col("_rn") == 1).drop("_rn")


def latest_records(rows: Any, group: FeatureGroup) -> Any:
    """The group's records as the store holds them: each record's latest write, deleted records left out."""
    from pyspark.sql import functions as F

    return latest_writes(rows, group).filter(~F.col("is_deleted")).select(*group.feature_names())


def offline_changes(records: Any, stored: Any | None, group: FeatureGroup, written_at: float) -> Any:
    """The offline-store rows a run appends: records new or changed since the store's latest write of them,
    and a deletion (``is_deleted``) of each stored record the source no longer yields; none on a rerun.
    ``stored`` None: the store is empty, every record is new (no comparison)."""
    columns, keys = group.feature_names(), [group.record_identifier, group.event_time]
    if stored is None:
        return offline_rows(records.select(*columns), written_at)
    changed = records.select(*columns).subtract(stored)
    gone = stored.join(records.select(*keys), keys, "left_anti")
    return offline_rows(changed, written_at).unionByName(offline_rows(gone, written_at, deleted=True))


# A compacted copy of each group's store: every key's latest write (deletions too) and the store files it
# covers, so a run reads one Parquet folder and the few files written since instead of every hourly file
# again. It lives beside the store's data folder (outside the Glue table's location, so Athena never reads a
# row twice) and is only a cache: a copy that does not match the store (a covered file gone, another schema)
# is ignored and the store read in full.
COMPACTED_MANIFEST = "_covers.json"


def compacted_root(data_uri: str) -> str:
    """The folder of a group store's compacted copies: ``<group>-<created>/compacted`` beside its ``data``."""
    base = data_uri.rstrip("/")
    return f"{base.removesuffix('/data')}/compacted" if base.endswith("/data") else f"{base}-compacted"


def read_compacted(spark: Any, files: LakeFiles, root: str, group: FeatureGroup, listed: set[str]):
    """The newest complete compacted copy under ``root`` that matches the store: (its rows, the store files it
    covers, its stamp), or (None, empty set, why not) when there is none to use."""
    for stamp in reversed(files.list_children(root)):
        text = files.read_text(f"{root}/{stamp}/{COMPACTED_MANIFEST}")
        if text is None:
            continue  # a copy whose writer did not finish
        try:
            manifest = json.loads(text)
            covered = set(manifest["files"])
        except (ValueError, TypeError, KeyError):
            return None, set(), f"compacted copy {stamp} has an unreadable manifest"
        if manifest.get("schema") != offline_schema(group):
            return None, set(), f"compacted copy {stamp} has another schema"
        if not covered <= listed:
            return None, set(), f"compacted copy {stamp} covers {len(covered - listed)} files the store lacks"
        return _compacted_rows(spark, root, stamp, group), covered, stamp
    return None, set(), "no compacted copy"


def _compacted_rows(spark: Any, root: str, stamp: str, group: FeatureGroup) -> Any:
    return spark.read.schema(offline_schema(group)).parquet(f"{root}/{stamp}/rows")


def stored_writes(spark: Any, files: LakeFiles, data_uri: str, group: FeatureGroup, listed: list[str]):
    """Every key's latest write in a group's store whose files are ``listed`` (None when it is empty), how it
    was read, and whether the compacted copy is still current: the copy plus the files written since, else
    every file."""
    compacted, covered, how = read_compacted(spark, files, compacted_root(data_uri), group, set(listed))
    new = [path for path in listed if path not in covered]
    if not new:
        return compacted, (f"compacted copy {how}", True) if compacted is not None else ("empty store", False)
    rows = read_offline_files(spark, data_uri, group, new)
    if compacted is None:
        return latest_writes(rows, group), (f"{how}: read {len(new)} files", False)
    merged = latest_writes(compacted.unionByName(rows), group)
    return merged, (f"compacted copy {how} + {len(new)} newer files", False)


def write_compacted(spark: Any, files: LakeFiles, root: str, writes: Any, group: FeatureGroup, covered: set[str]):
    """Write the store's latest writes as a new compacted copy (rows, then the manifest that makes it
    complete), drop the older copies, and return the new copy's rows (read back: the older ones are gone)."""
    now = time.time_ns()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 1_000_000_000)) + f"{now % 1_000_000_000:09d}"
    writes.write.mode("overwrite").parquet(f"{root}/{stamp}/rows")
    manifest = {"schema": offline_schema(group), "files": sorted(covered)}
    files.write_text_atomic(f"{root}/{stamp}/{COMPACTED_MANIFEST}", json.dumps(manifest))
    for older in files.list_children(root):
        if older < stamp:
            files.delete_tree(f"{root}/{older}")
    return _compacted_rows(spark, root, stamp, group)


class PhaseTimer:
    """Wall seconds of consecutive phases of one piece of work, for its log line."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._mark = time.monotonic()

    def lap(self, phase: str) -> None:
        """End ``phase`` now (it began when the previous one ended)."""
        now = time.monotonic()
        self.seconds[phase], self._mark = now - self._mark, now

    def __str__(self) -> str:
        return ", ".join(f"{phase} {seconds:.1f}s" for phase, seconds in self.seconds.items())


def sync_offline_store(spark: Any, records: dict[str, Any], args: dict[str, str], staging: str, files: LakeFiles):
    """Bring every group's offline store up to ``records`` (append only what changed, staged then moved in),
    keep its compacted copy current, and return the groups' records as the store holds them; (records, group
    name -> data URI, counts)."""
    from pyspark.sql import functions as F

    out, counts, written_at = {}, {}, time.time()
    uris = {group.name: offline_group_uri(files, args, group) for group in FEATURE_GROUPS}  # all, before any write
    for group in FEATURE_GROUPS:
        started, phases = time.monotonic(), PhaseTimer()
        listed = offline_files(uris[group.name])
        writes, (how, current) = stored_writes(spark, files, uris[group.name], group, listed)
        writes = writes.cache() if writes is not None else None
        keys_before = 0 if writes is None else writes.count()  # before a new copy replaces the one read
        phases.lap("read")
        stored = None if writes is None else writes.filter(~F.col("is_deleted")).select(*group.feature_names())
        appended = offline_changes(records[group.name], stored, group, written_at).cache()
        appended.count()  # the records built and compared here, so the phases below time only their own work
        phases.lap("compare")
        staged = f"{staging}/offline-store/{group.name}"
        written, rows = write_offline_rows(appended, group, staged, written_at)
        counts[group.name] = {"files": len(written), "rows": rows}
        phases.lap("write")
        files.merge_tree(staged, uris[group.name])
        phases.lap("move")
        after = after_appending(writes, appended, group)
        if written or not current:
            root = compacted_root(uris[group.name])
            after = write_compacted(spark, files, root, after, group, {*listed, *written})
        phases.lap("compacted copy")
        print(
            f"offline store {group.name}: {keys_before} keys stored before ({how}), "
            f"appended {counts[group.name]}, in {time.monotonic() - started:.1f}s ({phases})",
            flush=True,
        )
        out[group.name] = after.filter(~F.col("is_deleted")).select(*group.feature_names())
    return out, uris, counts


def after_appending(writes: Any | None, appended: Any, group: FeatureGroup) -> Any:
    """Every key's latest write after ``appended`` (rows written after every stored one): ``latest_writes`` of
    everything, without a second pass over the whole store: a stored key rewritten gives way to its new write."""
    keys, columns = [group.record_identifier, group.event_time], _arrow_schema(group).names
    if writes is None:
        return appended.select(*columns)
    kept = writes.join(appended.select(*keys), keys, "left_anti").select(*columns)
    return kept.unionByName(appended.select(*columns))


def read_offline_store(spark: Any, uris: dict[str, str]) -> dict[str, Any]:
    """Every group's records from its offline store (the latest write per record, deleted ones left out): what
    the job reads where SageMaker Feature Store writes the store itself (``--offline_store_writer feature-store``)."""
    return {g.name: latest_records(read_offline_rows(spark, uris[g.name], g), g) for g in FEATURE_GROUPS}


def newest_per_entity(records: Any, group: FeatureGroup) -> Any:
    """The record with the latest event time of each entity (what an online store holds)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    newest = Window.partitionBy(group.record_identifier).orderBy(F.col(group.event_time).desc())
    return records.withColumn("_rn", F.row_number().over(newest)).filter("_rn = 1").drop("_rn")


def fill_online_store(records: dict[str, Any], args: dict[str, str]) -> int:
    """Put the latest record per entity of every group into the local online store (PutRecord dicts, older
    records never overwrite newer ones) from the Spark tasks, one transaction per partition, as the aws path
    puts from the executors (1.6x faster than through the driver: BENCHMARKS.md, "Online store fill from the
    Spark tasks"); a failed run leaves whole partitions put, and a rerun puts the same records again. Returns
    how many were put."""
    path = args["online_store_uri"].removeprefix("file://")
    return _put_newest_records(records, args, functools.partial(_local_partition_writer, path))


def _local_partition_writer(path: str, group_name: str, group: FeatureGroup, counter: Any) -> Callable[[Any], None]:
    """The function each Spark task runs on its partition: the local store's PutRecords in one transaction."""

    def write(rows: Iterable[Any]) -> None:
        from mlops.schema.online_store import OnlineStore

        store = OnlineStore(path, {group_name: (group.record_identifier, group.event_time)})
        counter.add(store.put_records(put_record_request(group_name, group, row.asDict()) for row in rows))

    return write


def _put_newest_records(
    records: dict[str, Any], args: dict[str, str], writer: Callable[[str, FeatureGroup, Any], Callable[[Any], None]]
) -> int:
    """Run ``writer(group name, group, counter)``'s function on every partition of each group's latest record
    per entity (``foreachPartition``: the tasks put, never the driver); returns how many the tasks counted."""
    put = 0
    for group in FEATURE_GROUPS:
        latest = newest_per_entity(records[group.name], group)
        name, counter = f"{args['feature_group_prefix']}-{group.name}", latest.sparkSession.sparkContext.accumulator(0)
        latest.foreachPartition(writer(name, group, counter))
        put += counter.value
    return put


# ------------------------------------------------------- the online store on aws (Feature Store)


def _error_code(exc: Exception) -> str | None:
    """The AWS error code of a botocore ClientError (None for any other exception)."""
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def put_with_retries(client: Any, request: dict[str, Any], sleep: Callable[[float], None] = time.sleep) -> None:
    """One PutRecord, retried with exponential backoff while Feature Store throttles (at most
    :data:`PUT_RECORD_ATTEMPTS` tries); any other error, or throttling past the last try, raises."""
    for attempt in range(PUT_RECORD_ATTEMPTS):
        try:
            client.put_record(**request)
            return
        except Exception as exc:
            if _error_code(exc) not in RETRYABLE_ERRORS:
                raise
            if attempt == PUT_RECORD_ATTEMPTS - 1:
                record = request["Record"][0]["ValueAsString"]
                raise RuntimeError(
                    f"PutRecord {request['FeatureGroupName']} record {record}: still {_error_code(exc)} after "
                    f"{PUT_RECORD_ATTEMPTS} tries; rerun the job or raise the account's Feature Store throughput"
                ) from exc
            sleep(min(PUT_RECORD_BACKOFF_S * 2**attempt, 5.0))


def put_partition(rows: Iterable[Mapping[str, Any]], group_name: str, group: FeatureGroup, client: Any) -> int:
    """PutRecord every record of one partition (the same dicts as the local store takes); returns how many."""
    put = 0
    for row in rows:
        put_with_retries(client, put_record_request(group_name, group, row))
        put += 1
    return put


def _partition_writer(region: str, group_name: str, group: FeatureGroup, counter: Any) -> Callable[[Any], None]:
    """The function each Spark task runs on its partition: its own boto3 client, then :func:`put_partition`."""

    def write(rows: Iterable[Any]) -> None:
        import boto3  # on the executors (Glue has it)

        client = boto3.client("sagemaker-featurestore-runtime", region_name=region)
        counter.add(put_partition((row.asDict() for row in rows), group_name, group, client))

    return write


def put_online_records(records: dict[str, Any], args: dict[str, str]) -> int:
    """On aws: the latest record per entity of every group, PutRecord from the Spark executors (one
    Feature Store client per partition, never on the driver or the MWAA worker); returns how many were put."""
    region = args["online_store_uri"].removeprefix(FEATURE_STORE_SCHEME) or args["region"]
    return _put_newest_records(records, args, functools.partial(_partition_writer, region))


def write_online_store(records: dict[str, Any], args: dict[str, str]) -> int:
    """Fill the online store ``--online_store_uri`` names: ``featurestore://<region>`` (SageMaker Feature
    Store) or ``file://`` (the local SQLite store); returns how many records were put."""
    uri = args["online_store_uri"]
    if uri.startswith(FEATURE_STORE_SCHEME):
        return put_online_records(records, args)
    if uri.startswith("file://"):
        return fill_online_store(records, args)
    raise ValueError(f"--online_store_uri {uri!r}: use featurestore://<region> (aws) or file://<path> (local)")


# --------------------------------------------------------------------------------- the job


# Local Spark only (Glue sets its own): one process on one machine, where shuffle files and the cached records
# stay in the page cache, so compressing them spends the two cores' time for nothing; and the throughput
# collector, not G1's pauses-first one, for a batch job. The features job at 1M orders: BENCHMARKS.md, "Local
# Spark settings".
LOCAL_SPARK_TUNING = {
    "spark.shuffle.compress": "false",
    "spark.shuffle.spill.compress": "false",
    "spark.sql.inMemoryColumnarStorage.compressed": "false",
    "spark.driver.extraJavaOptions": "-XX:+UseParallelGC",
}


def spark_session(app_name: str, shuffle_partitions: int) -> Any:
    """A Glue session when awsglue is importable, else a small local[*] session."""
    try:
        from awsglue.context import GlueContext  # type: ignore[import-not-found]
        from pyspark.context import SparkContext

        spark = GlueContext(SparkContext.getOrCreate()).spark_session
    except ImportError:
        from pyspark.sql import SparkSession

        tuning = os.environ.get("MLOPS_SPARK_LOCAL_TUNING", "1")  # "0": Spark's defaults (bench_spark_local.py)
        if tuning not in ("0", "1"):
            raise ValueError(
                f"MLOPS_SPARK_LOCAL_TUNING must be 0 (Spark's defaults) or 1 (LOCAL_SPARK_TUNING), got {tuning!r}; "
                "e.g. `unset MLOPS_SPARK_LOCAL_TUNING` for the default, 1"
            ) from None
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the tasks' Python: this runtime (pandas, pyarrow)
        builder = (
            SparkSession.builder.master(os.environ.get("MLOPS_SPARK_MASTER", "local[*]"))
            .appName(app_name)
            .config("spark.driver.memory", os.environ.get("MLOPS_SPARK_DRIVER_MEMORY", "4g"))
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.bindAddress", "127.0.0.1")
        )
        spark = (builder.config(map=LOCAL_SPARK_TUNING) if tuning == "1" else builder).getOrCreate()
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


def offline_store_records(spark: Any, records: dict, args: dict[str, str], staging: str, files: LakeFiles):
    """The groups' records the training table is built from, the offline stores' data URIs and what this run
    appended to them: ``records`` as they are without ``--offline_store_uri``; else read from the offline store,
    after appending what changed when this job is its writer."""
    if not args.get("offline_store_uri"):
        return records, {}, {}
    writer = args.get("offline_store_writer", "job")
    if writer not in OFFLINE_WRITERS:
        raise ValueError(f"--offline_store_writer must be one of {OFFLINE_WRITERS}, got {writer!r}")
    if writer == "job":
        return sync_offline_store(spark, {name: frame.cache() for name, frame in records.items()}, args, staging, files)
    uris = {group.name: offline_group_uri(files, args, group, must_exist=True) for group in FEATURE_GROUPS}
    return read_offline_store(spark, uris), uris, {}


def run_job(spark: Any, args: dict[str, str], files: LakeFiles | None = None) -> dict[str, Any]:
    """Read raw, transform, stage, swap in. Returns the new pointer (also printed as JSON)."""
    files, args = files or LakeFiles(), {**JOB_DEFAULTS, **args}
    run_key = run_key_safe(args["run_key"])
    staged_uri = f"{args['staging_uri'].rstrip('/')}/{run_key}"
    started = time.monotonic()
    tables = load_latest_tables(spark, args["raw_uri"])
    records, offline, appended = offline_store_records(spark, entity_records(tables), args, staged_uri, files)
    step = time.monotonic()
    online_put = write_online_store(records, args) if args.get("online_store_uri") else 0
    print(f"online store: {online_put} records put in {time.monotonic() - step:.1f}s", flush=True)
    step = time.monotonic()
    frame = build_features(tables, float(args.get("sample_fraction", "1.0")), records)
    write_staged(frame, staged_uri)
    print(f"training table (point-in-time joins) staged in {time.monotonic() - step:.1f}s", flush=True)
    manifest = {
        **summarise(spark, staged_uri),
        "run_key": run_key,
        "job_name": args["JOB_NAME"],
        "raw_uri": args["raw_uri"],
        "curated_uri": args["curated_uri"],
        "sample_fraction": float(args.get("sample_fraction", "1.0")),
        "orders_through": orders_through(spark, args["raw_uri"]),
        "offline_store": offline,
        "online_records_put": online_put,
        "offline_store_appended": appended,
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
