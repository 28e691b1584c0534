"""Benchmark: filling the local online store with each entity's latest feature record.

    PYTHONPATH=include .mlops/venvs/glue/bin/python bench/bench_online_fill.py --orders 1000000 --repeat 3

Synthetic DMS raw output (:mod:`mlops.etl.synthetic_raw`) for ``--orders`` orders; the feature groups' records
built from it and cached, as the features job holds them. Then, alternating (the order swapped each round),
``--repeat`` times each, every group's latest record per entity put into a fresh SQLite online store:

- **from the tasks** (shipped): :func:`mlops.etl.build_features.fill_online_store`, each Spark task puts its
  partition in one transaction (``foreachPartition``), as the aws path puts from the executors;
- **through the driver** (the baseline, the job's way before): the latest records pulled to the driver with
  ``toLocalIterator`` and put in one transaction per group.

Printed: each run's seconds, the medians and their ratio; the two stores must hold the same rows (checked outside
the timings).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from mlops.etl import build_features as job  # noqa: E402
from mlops.etl.synthetic_raw import write_raw  # noqa: E402
from mlops.schema.feature_groups import FEATURE_GROUPS, put_record_request  # noqa: E402
from mlops.schema.online_store import OnlineStore  # noqa: E402

PREFIX = "bench"
WAYS = ("from the tasks (shipped)", "through the driver (baseline)")


def fill_through_driver(records: dict, args: dict[str, str]) -> int:
    """The baseline: the latest records pulled to the driver, one transaction per group."""
    names = {group.name: f"{args['feature_group_prefix']}-{group.name}" for group in FEATURE_GROUPS}
    identifiers = {names[g.name]: (g.record_identifier, g.event_time) for g in FEATURE_GROUPS}
    store = OnlineStore(args["online_store_uri"].removeprefix("file://"), identifiers)
    put = 0
    for group in FEATURE_GROUPS:
        latest = job.newest_per_entity(records[group.name], group)
        rows = (put_record_request(names[group.name], group, row.asDict()) for row in latest.toLocalIterator())
        put += store.put_records(rows)
    return put


def stored_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as con:
        return con.execute("SELECT * FROM records ORDER BY group_name, record_id").fetchall()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spark = job.spark_session("bench-online-fill", 8)
    fills = {WAYS[0]: job.fill_online_store, WAYS[1]: fill_through_driver}
    with tempfile.TemporaryDirectory(prefix="bench-online-fill-") as scratch:
        raw = Path(scratch) / "raw"
        write_raw(raw, args.orders)
        records = {n: r.cache() for n, r in job.entity_records(job.load_latest_tables(spark, raw.as_uri())).items()}
        print("records: " + ", ".join(f"{n} {r.count():,}" for n, r in records.items()), flush=True)
        seconds: dict[str, list[float]] = {way: [] for way in WAYS}
        stores: dict[str, Path] = {}
        for round_ in range(args.repeat):
            for way in WAYS if round_ % 2 == 0 else WAYS[::-1]:
                store = Path(scratch) / f"online-{round_}-{WAYS.index(way)}.sqlite"
                options = {"online_store_uri": store.as_uri(), "feature_group_prefix": PREFIX}
                started = time.perf_counter()
                put = fills[way](records, options)
                seconds[way].append(time.perf_counter() - started)
                stores[way] = store
                print(f"  {way}: {put:,} records put in {seconds[way][-1]:.2f}s", flush=True)
        assert stored_rows(stores[WAYS[0]]) == stored_rows(stores[WAYS[1]]), "the two stores differ"
        shipped, baseline = (statistics.median(seconds[way]) for way in WAYS)
        print(
            f"median of {args.repeat}: from the tasks {shipped:.2f}s, through the driver {baseline:.2f}s, "
            f"ratio {baseline / shipped:.2f}x; the same stored rows",
            flush=True,
        )
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
