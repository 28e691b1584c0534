"""Benchmark: building the feature groups' records (the running per-entity totals) from the raw tables.

    PYTHONPATH=include .mlops/venvs/glue/bin/python bench/bench_entity_records.py --orders 1000000 --repeat 3

Synthetic DMS raw output (:mod:`mlops.etl.synthetic_raw`) for ``--orders`` orders. Then, alternating,
``--repeat`` times each, every group's records built from the raw tables and consumed (Spark's ``noop`` sink):

- **shuffled once** (shipped): :func:`mlops.etl.build_features.entity_records`, the events shuffled by entity
  once, which serves both the per-instant sums and the running window;
- **shuffled twice** (the baseline, the job's way before): grouped by entity and instant (a shuffle by both),
  then the running window (a second shuffle, by entity).

Printed per group: the median seconds of each and their ratio; the two must give the same records (checked with
``exceptAll`` both ways, outside the timings).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from mlops.etl import build_features as job  # noqa: E402
from mlops.etl.synthetic_raw import write_raw  # noqa: E402
from mlops.schema.feature_groups import FEATURE_GROUPS  # noqa: E402


def running_records_twice(events, entity: str, sums: tuple[str, ...], maxes: tuple[str, ...] = ()):
    """The baseline: per-instant sums grouped by entity and instant, then the running window by entity."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    per_instant = events.groupBy(entity, "t").agg(
        *(F.sum(c).alias(c) for c in sums), *(F.max(c).alias(c) for c in maxes)
    )
    through = Window.partitionBy(entity).orderBy("t").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    return per_instant.select(
        entity, "t", *(F.sum(c).over(through).alias(c) for c in sums), *(F.max(c).over(through).alias(c) for c in maxes)
    )


@contextmanager
def baseline():
    shipped = job._running_records
    job._running_records = running_records_twice
    try:
        yield
    finally:
        job._running_records = shipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spark = job.spark_session("bench-entity-records", 8)
    with tempfile.TemporaryDirectory(prefix="bench-entity-records-") as scratch:
        raw = Path(scratch) / "raw"
        write_raw(raw, args.orders)
        tables = job.load_latest_tables(spark, raw.as_uri())
        seconds = {(g.name, way): [] for g in FEATURE_GROUPS for way in ("once (shipped)", "twice (baseline)")}
        for _ in range(args.repeat):
            for way in ("once (shipped)", "twice (baseline)"):
                with baseline() if way.startswith("twice") else nullcontext():
                    records = job.entity_records(tables)
                for group in FEATURE_GROUPS:
                    started = time.perf_counter()
                    records[group.name].write.format("noop").mode("overwrite").save()
                    seconds[(group.name, way)].append(time.perf_counter() - started)
                    print(f"  {group.name}, shuffled {way}: {seconds[(group.name, way)][-1]:.2f}s", flush=True)
        shipped = job.entity_records(tables)
        with baseline():
            before = job.entity_records(tables)
        for group in FEATURE_GROUPS:
            a, b = shipped[group.name], before[group.name]
            assert not a.exceptAll(b).count() and not b.exceptAll(a).count(), f"{group.name}: other records"
            once, twice = (statistics.median(seconds[(group.name, w)]) for w in ("once (shipped)", "twice (baseline)"))
            print(
                f"{group.name}, median of {args.repeat}: shuffled once {once:.2f}s, twice {twice:.2f}s, "
                f"ratio {twice / once:.2f}x; the same records",
                flush=True,
            )
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
