"""Benchmark: finding what a features run appends to the offline store (records against the store's latest writes).

    PYTHONPATH=include .mlops/venvs/glue/bin/python bench/bench_offline_compare.py --orders 1000000 --repeat 3

Synthetic DMS raw output (:mod:`mlops.etl.synthetic_raw`) for ``--orders`` orders; each feature group's records
built by the job (:func:`mlops.etl.build_features.entity_records`). The "store" is those records with 10 % of
the keys missing (new records), 1 % with another value (changed records) and 1 % more keys the source no longer
yields (deletions), written to Parquet and cached in memory (the job caches the store's latest writes it read).
As in the job, the records are marked for caching but built by the comparison itself, from the raw tables: a
timing is building the records and comparing them. Then, alternating, ``--repeat`` times each, every
offline-store row to append computed and consumed (Spark's ``noop`` sink):

- **set difference** (shipped, the baseline): :func:`mlops.etl.build_features.offline_changes`,
  ``records.subtract(stored)`` for the new and changed records, plus an anti join on the key for the deletions;
- **key join** (tried, not shipped): one full outer join on the key (record identifier, event time), the values
  compared null-safe as one struct: fewer shuffles on paper, no faster measured (BENCHMARKS.md).

Printed per group: the median seconds of each and their ratio, and the rows each appends; the two must give
the same rows (checked with ``exceptAll`` both ways, outside the timings).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from mlops.etl import build_features as job  # noqa: E402
from mlops.etl.synthetic_raw import write_raw  # noqa: E402
from mlops.schema.feature_groups import FEATURE_GROUPS, FeatureGroup  # noqa: E402

WRITTEN_AT = 1_800_000_000.0


def key_join(records, stored, group: FeatureGroup, written_at: float):
    """The candidate: records and stored rows matched on the key in one full outer join, values compared null-safe."""
    from pyspark.sql import functions as F

    columns, keys = group.feature_names(), [group.record_identifier, group.event_time]
    values = [name for name in columns if name not in keys]
    both = records.select(*keys, F.struct(*values).alias("_new")).join(
        stored.select(*keys, F.struct(*values).alias("_old")), keys, "full_outer"
    )
    changed = both.filter(F.col("_new").isNotNull() & ~F.col("_new").eqNullSafe(F.col("_old")))
    gone = both.filter(F.col("_new").isNull())
    return job.offline_rows(changed.select(*keys, "_new.*").select(*columns), written_at).unionByName(
        job.offline_rows(gone.select(*keys, "_old.*").select(*columns), written_at, deleted=True)
    )


def stored_side(records, group: FeatureGroup):
    """The records as an older store holds them: 10 % of keys absent, 1 % changed, 1 % extra (gone since)."""
    from pyspark.sql import functions as F

    bucket = F.abs(F.xxhash64(group.record_identifier, group.event_time)) % 100
    counter = next(name for name, kind in group.columns if kind == "bigint")
    kept = records.filter(bucket >= 10)
    changed = kept.withColumn(counter, F.when(bucket == 10, F.col(counter) + 1).otherwise(F.col(counter)))
    gone = records.filter(bucket == 11).withColumn(group.event_time, F.col(group.event_time) + 0.5)
    return changed.unionByName(gone)


def timed(frame) -> float:
    started = time.perf_counter()
    frame.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spark = job.spark_session("bench-offline-compare", 8)
    ways = {"set difference (shipped)": job.offline_changes, "key join (tried)": key_join}
    with tempfile.TemporaryDirectory(prefix="bench-offline-compare-") as scratch:
        raw = Path(scratch) / "raw"
        write_raw(raw, args.orders)
        all_records = job.entity_records(job.load_latest_tables(spark, raw.as_uri()))
        for group in FEATURE_GROUPS:
            records = all_records[group.name]
            stored_side(records, group).write.parquet(f"{scratch}/{group.name}")
            stored = spark.read.parquet(f"{scratch}/{group.name}").cache()
            print(f"{group.name}: {records.count():,} records, {stored.count():,} stored", flush=True)
            seconds: dict[str, list[float]] = {label: [] for label in ways}
            for _ in range(args.repeat):
                for label, compare in ways.items():
                    seconds[label].append(timed(compare(records.cache(), stored, group, WRITTEN_AT)))
                    records.unpersist()
                    print(f"  {label}: {seconds[label][-1]:.2f}s", flush=True)
            shipped, tried = (compare(records, stored, group, WRITTEN_AT) for compare in ways.values())
            rows = shipped.count()
            same = rows == tried.count() and not shipped.exceptAll(tried).count()
            assert same and not tried.exceptAll(shipped).count(), f"{group.name}: the two append other rows"
            medians = [statistics.median(values) for values in seconds.values()]
            print(
                f"{group.name}, median of {args.repeat}: set difference (shipped) {medians[0]:.2f}s, key join "
                f"{medians[1]:.2f}s, the key join takes {medians[1] / medians[0]:.2f}x the shipped time; "
                f"{rows:,} rows to append, the same in both",
                flush=True,
            )
            stored.unpersist()
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
