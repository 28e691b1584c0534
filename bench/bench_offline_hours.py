"""Benchmark: writing a feature group's offline-store rows in SageMaker's hourly layout, one file per hour.

    PYTHONPATH=include .mlops/venvs/glue/bin/python bench/bench_offline_hours.py --rows 1100000 --hours 6500 --repeat 3

What one Spark task of the features job writes at 1M orders (half a group's rows and hours: the job's two
tasks write one half each): ``--rows`` customer-history rows spread over ``--hours`` event-time hours, in the
store's Arrow schema with the ``year``/``month``/``day``/``hour`` partition values. Then, alternating,
``--repeat`` times each into a fresh folder:

- **per hour** (shipped): :func:`mlops.etl.build_features.write_hour_files`, the rows sorted by hour once and
  each hour's slice written with ``pq.write_table``, no dictionary encoding;
- **dataset writer** (the baseline, the job's writer before): sorted by the four partition columns, then
  pyarrow's ``ds.write_dataset`` with hive partitioning, in order (``use_threads=False``), one file per hour.

Printed: the median seconds of each and their ratio; both outputs are read back and compared: the same hour
folders, one file each, and the same rows in each hour.
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
from mlops.schema.feature_groups import CUSTOMER_HISTORY  # noqa: E402


def offline_table(rows: int, hours: int, seed: int = 7):
    """``rows`` synthetic customer-history offline rows over ``hours`` consecutive hours (schema of the store)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    seconds = 1_700_000_000 + rng.integers(0, hours * 3600, rows)
    stamp = pa.array(seconds * 1_000_000, pa.timestamp("us", tz="UTC"))
    columns = {}
    for field in job._arrow_schema(CUSTOMER_HISTORY):
        if field.name == CUSTOMER_HISTORY.record_identifier:
            columns[field.name] = pa.array(rng.integers(1, 200_000, rows))
        elif field.name == CUSTOMER_HISTORY.event_time:
            columns[field.name] = pa.array(seconds.astype("float64"))
        elif pa.types.is_timestamp(field.type):
            columns[field.name] = stamp
        elif pa.types.is_boolean(field.type):
            columns[field.name] = pa.array(np.zeros(rows, dtype=bool))
        elif pa.types.is_string(field.type):
            columns[field.name] = pa.array(rng.choice(["DE", "FR", "NL", "PL"], rows))
        elif pa.types.is_integer(field.type):
            columns[field.name] = pa.array(rng.integers(0, 50, rows))
        else:
            columns[field.name] = pa.array(rng.random(rows) * 1000)
    for part, pattern in zip(job.OFFLINE_PARTITIONS, ("%Y", "%m", "%d", "%H"), strict=True):
        columns[part] = pc.strftime(stamp, format=pattern)
    return pa.table(columns)


def dataset_writer(table, staged: str, name: str) -> list[tuple[str, int]]:
    """The baseline: the job's writer before (sort by the partition columns, pyarrow's partitioned dataset writer)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    hours = pa.schema([(part, pa.string()) for part in job.OFFLINE_PARTITIONS])
    ordered = table.sort_by([(part, "ascending") for part in job.OFFLINE_PARTITIONS])
    written: list[tuple[str, int]] = []
    ds.write_dataset(
        ordered,
        staged,
        format="parquet",
        partitioning=ds.partitioning(hours, flavor="hive"),
        basename_template=name.replace(".parquet", "_{i}.parquet"),
        existing_data_behavior="overwrite_or_ignore",
        max_partitions=ordered.num_rows,
        use_threads=False,
        file_visitor=lambda f: written.append((f.path[len(staged) + 1 :], f.metadata.num_rows)),
    )
    return written


def hours_of(folder: Path) -> dict[str, list[tuple]]:
    """Each hour folder's rows (sorted), read back; fails if an hour has more than one file."""
    import pyarrow.parquet as pq

    found: dict[str, list[tuple]] = {}
    for path in folder.rglob("*.parquet"):
        hour = str(path.parent.relative_to(folder))
        assert hour not in found, f"two files in {hour}"
        found[hour] = sorted(tuple(row.values()) for row in pq.read_table(path).to_pylist())
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_100_000)
    parser.add_argument("--hours", type=int, default=6_500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    table = offline_table(args.rows, args.hours)
    writers = {"per hour (shipped)": job.write_hour_files, "dataset writer (baseline)": dataset_writer}
    seconds: dict[str, list[float]] = {label: [] for label in writers}
    with tempfile.TemporaryDirectory(prefix="bench-offline-hours-") as scratch:
        for attempt in range(args.repeat):
            for label, write in writers.items():
                staged = f"{scratch}/{attempt}-{len(seconds[label])}-{label.split()[0]}"
                started = time.perf_counter()
                written = write(table, staged, "bench.parquet")
                seconds[label].append(time.perf_counter() - started)
                print(f"{label}: {seconds[label][-1]:.2f}s, {len(written)} files", flush=True)
        first = {label: f"{scratch}/0-0-{label.split()[0]}" for label in writers}
        shipped, baseline = (hours_of(Path(path)) for path in first.values())
        assert shipped == baseline, "the two writers wrote different hours or rows"
    medians = {label: statistics.median(values) for label, values in seconds.items()}
    shipped_s, baseline_s = medians.values()
    print(f"\n{args.rows:,} rows over {len(shipped):,} hours, median of {args.repeat}:")
    for label, median in medians.items():
        print(f"  {label}: {median:.2f}s")
    print(f"  ratio baseline / shipped: {baseline_s / shipped_s:.2f}x; same hours and rows in both: yes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
