"""Benchmark: the features job's per-order basket aggregate, Spark's hash aggregate against the sort-based one.

    MLOPS_RUNTIMES=.mlops/venvs PYTHONPATH=include SPARK_LOCAL_IP=127.0.0.1 .mlops/venvs/glue/bin/python \\
        bench/bench_basket_aggregate.py --orders 1000000 --repeat 3

Synthetic DMS raw output of ``--orders`` orders is written first (not timed) and its latest state cached, so
only the aggregate is timed. Then, alternating, ``--repeat`` times each on one local Spark session (the job's
settings, 8 shuffle partitions):

- **per category** (shipped): :func:`mlops.etl.build_features.basket_features` as the job runs it, one maximum
  per line category, so Spark plans its code-generated ``HashAggregate``;
- **sort-based** (the baseline, the aggregate before): the same function over a catalogue wider than its
  category columns (``max_category_columns=0``): ``collect_set`` and a maximum over a struct, which Spark
  plans as an ``ObjectHashAggregate`` that falls back to interpreted sort-based aggregation after 128 keys.

Each run writes every basket column to Spark's ``noop`` sink. Printed: the median seconds of each, their ratio,
and the physical aggregate operator each got; both results are compared row for row (sums to 1e-9).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from mlops.etl import build_features as job  # noqa: E402
from mlops.etl.synthetic_raw import write_raw  # noqa: E402

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def aggregate_operator(frame) -> str:
    """The physical aggregate Spark planned for ``frame`` (its first one)."""
    plan = frame._jdf.queryExecution().executedPlan().toString()
    for operator in ("ObjectHashAggregate", "SortAggregate", "HashAggregate"):
        if operator in plan:
            return operator
    return "none"


def timed_noop(frame) -> float:
    started = time.monotonic()
    frame.write.format("noop").mode("overwrite").save()
    return time.monotonic() - started


def same_baskets(left, right) -> int:
    """Rows of ``left`` without an equal row in ``right`` (doubles rounded to 9 places: sums differ in order)."""
    from pyspark.sql import functions as F

    def rounded(frame):
        kinds = dict(frame.dtypes)
        return frame.select(*(F.round(c, 9).alias(c) if kinds[c] == "double" else F.col(c) for c in sorted(kinds)))

    return rounded(left).exceptAll(rounded(right)).count()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.orders < 1 or args.repeat < 1:
        parser.error("--orders and --repeat must be positive")
    with tempfile.TemporaryDirectory(prefix="bench-basket-") as work:
        raw = Path(work) / "raw"
        print(f"writing synthetic raw output of {args.orders:,} orders ...", flush=True)
        write_raw(raw, args.orders, seed=42)
        spark = job.spark_session("bench-basket-aggregate", 8)
        tables = {name: frame.cache() for name, frame in job.load_latest_tables(spark, raw.as_uri()).items()}
        lines = {name: frame.count() for name, frame in tables.items()}
        print(f"latest state cached: {lines}", flush=True)
        variants = {
            "per category": lambda: job.basket_features(tables["order_items"], tables["products"]),
            "sort-based": lambda: job.basket_features(tables["order_items"], tables["products"], 0),
        }
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        for repeat in range(args.repeat):
            for name, build in variants.items():
                seconds[name].append(timed_noop(build()))
                print(f"repeat {repeat + 1}: {name} {seconds[name][-1]:.1f}s", flush=True)
        frames = {name: build() for name, build in variants.items()}
        differing = same_baskets(frames["per category"], frames["sort-based"])
        differing += same_baskets(frames["sort-based"], frames["per category"])
        print(f"\n{args.orders:,} orders, {lines['order_items']:,} lines, median of {args.repeat}:")
        for name, frame in frames.items():
            print(f"  {name}: {statistics.median(seconds[name]):.1f}s ({aggregate_operator(frame)})")
        ratio = statistics.median(seconds["sort-based"]) / statistics.median(seconds["per category"])
        print(f"  per category is {ratio:.2f}x faster; rows that differ: {differing}")
        spark.stop()
        return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
