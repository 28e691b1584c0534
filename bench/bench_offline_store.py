"""Benchmark: what the feature groups' offline store costs the features job (issue 18.2 against issue 15).

For each size, on the same synthetic DMS raw output (written first, not timed), the Glue script runs three
times as the local Glue stand-in runs it (a ``build_features.py`` subprocess of the glue runtime):

1. **baseline**: no ``--offline_store_uri``: the point-in-time joins use the entity records in memory
   (how the pipeline trained before the offline store became its source);
2. **backfill**: ``--offline_store_uri`` on an empty store: every history record is written in SageMaker's
   layout (one Parquet file per group and event hour), read back, joined;
3. **steady state**: the same again over the unchanged source: the store is listed and read, nothing is
   appended (what every later run pays, plus its own appends).

Printed and written to the "Offline store" section of BENCHMARKS.md: wall seconds, peak RSS of the process
tree, files and rows appended per run, and each run's time as a ratio of the baseline of the same size.

    MLOPS_RUNTIMES=.mlops/venvs PYTHONPATH=include .venv/bin/python bench/bench_offline_store.py \\
        --sizes 100000 1000000
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from bench_etl import Measurement, measure, spark_job_parser  # noqa: E402  (bench/ is on the path: the script's folder)
from benchmarks_md import write_section  # noqa: E402

from mlops.etl import build_features  # noqa: E402
from mlops.etl.synthetic_raw import write_raw  # noqa: E402
from mlops.runtimes import runtime_python  # noqa: E402

SECTION = "## Offline store (features job)"
RUNS = ("baseline", "backfill", "steady state")
APPENDED = re.compile(r"offline store [a-z-]+: .*appended \{'files': (?P<files>\d+), 'rows': (?P<rows>\d+)\}")


def job_command(raw: Path, work: Path, run: str, store: Path | None, partitions: int) -> list[str]:
    """The script's command line, as the local Glue stand-in builds it."""
    command = [
        runtime_python("glue"), str(Path(build_features.__file__)),
        "--JOB_NAME", "bench-offline-store", "--raw_uri", raw.as_uri(),
        "--curated_uri", (work / f"curated-{run.replace(' ', '-')}").as_uri(),
        "--staging_uri", (work / "_staging").as_uri(), "--run_key", run.replace(" ", "-"),
        "--shuffle_partitions", str(partitions),
    ]  # fmt: skip
    return command + (["--offline_store_uri", store.as_uri()] if store else [])


def appended(output: str) -> tuple[int, int]:
    """Files and rows the run appended to the offline store, summed over the groups (from its log lines)."""
    found = [(int(m["files"]), int(m["rows"])) for m in APPENDED.finditer(output)]
    return sum(f for f, _ in found), sum(r for _, r in found)


def run_size(n_orders: int, args: argparse.Namespace) -> dict[str, tuple[Measurement, int, int]]:
    work = args.work / str(n_orders)
    raw = args.work / f"raw-{n_orders}"
    if not raw.exists():
        print(f"writing synthetic raw output of {n_orders:,} orders to {raw}", flush=True)
        write_raw(raw, n_orders)
    shutil.rmtree(work, ignore_errors=True)
    store = work / "feature-store"
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(ROOT / "include"),
           "MLOPS_SPARK_DRIVER_MEMORY": args.driver_memory}  # fmt: skip
    results = {}
    for run in RUNS:
        command = job_command(raw, work, run, None if run == "baseline" else store, args.shuffle_partitions)
        measured = measure(command, env, args.max_rss_gib, args.timeout)
        files, rows = appended(measured.output)
        results[run] = (measured, files, rows)
        print(f"{n_orders:,} orders, {run}: {measured.seconds:.1f} s, peak {measured.peak_rss_gib:.2f} GiB, "
              f"appended {files:,} files / {rows:,} rows ({measured.outcome})", flush=True)  # fmt: skip
    return results


def render(results: dict[int, dict[str, tuple[Measurement, int, int]]], args: argparse.Namespace) -> str:
    """The BENCHMARKS.md section: the command, the machine, one row per size and run, then ``--note``."""
    lines = [
        SECTION,
        "",
        f"`MLOPS_RUNTIMES=.mlops/venvs PYTHONPATH=include .venv/bin/python bench/bench_offline_store.py --sizes "
        f"{' '.join(str(n) for n in results)}`, run {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM (glue runtime, `local[*]`, driver memory "
        f"{args.driver_memory}, {args.shuffle_partitions} shuffle partitions). Input: synthetic DMS raw output "
        "(`mlops.etl.synthetic_raw`). Each run is the features job as the local Glue stand-in runs it (JVM "
        "start-up included); the ratio is against the baseline of the same size, measured in the same run.",
        "",
        "| orders | run | wall s | x baseline | peak GiB | files appended | rows appended | load avg |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n, runs in results.items():
        base = runs["baseline"][0]
        for run in RUNS:
            m, files, rows = runs[run]
            ok = m.outcome == "ok"
            ratio = f"{m.seconds / base.seconds:.2f}x" if ok and base.outcome == "ok" else "—"
            wall = f"{m.seconds:.1f}" if ok else m.outcome
            lines.append(f"| {n:,} | {run} | {wall} | {ratio} | {m.peak_rss_gib:.2f} | {files:,} | {rows:,} | "
                         f"{m.load:.1f} |")  # fmt: skip
    return "\n".join(lines + (["", args.note] if args.note else [])) + "\n"


def main() -> None:
    parser = spark_job_parser(__doc__.splitlines()[0], [100_000, 1_000_000], "offline-store")
    parser.add_argument("--note", default="", help="a paragraph written below the table (what the figures show)")
    parser.add_argument("--no-write", action="store_true", help="print the section without writing BENCHMARKS.md")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = {n: run_size(n, args) for n in args.sizes}
    section = render(results, args)
    print(section)
    if not args.no_write:
        write_section(section, args.output)


if __name__ == "__main__":
    main()
