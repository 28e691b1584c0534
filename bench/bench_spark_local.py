"""Benchmark: the features job on local Spark with the job's local settings against Spark's defaults.

The settings are ``LOCAL_SPARK_TUNING`` in ``mlops/etl/build_features.py`` (no compression of shuffle files,
spills and cached columns; the parallel garbage collector); ``MLOPS_SPARK_LOCAL_TUNING=0`` turns them off. On
the same synthetic DMS raw output (written first, not timed) the job runs as the local Glue stand-in runs it
(a ``build_features.py`` subprocess of the glue runtime, JVM start-up included, the demo's 4g driver and 8
shuffle partitions) twice per round: a **backfill** (empty offline store: every record written) and a
**steady state** (the same again: the store read and compared, nothing appended). The two settings alternate
within each round and swap order between rounds, since this machine's speed drifts by more than the effect;
medians and the ratio against the defaults of the same run are printed.

    MLOPS_RUNTIMES=.mlops/venvs PYTHONPATH=include .venv/bin/python bench/bench_spark_local.py \\
        [--orders 1000000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from bench_etl import measure  # noqa: E402  (bench/ is on the path: the script's folder)
from bench_offline_store import job_command  # noqa: E402

from mlops.etl.synthetic_raw import write_raw  # noqa: E402

SETTINGS = {"Spark's defaults": "0", "local settings": "1"}
RUNS = ("backfill", "steady state")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--work", type=Path, default=ROOT / ".mlops" / "bench" / "spark-local")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    raw = args.work / f"raw-{args.orders}"
    if not raw.exists():
        print(f"writing synthetic raw output of {args.orders:,} orders to {raw}", flush=True)
        write_raw(raw, args.orders)
    seconds: dict[tuple[str, str], list[float]] = {(s, r): [] for s in SETTINGS for r in RUNS}
    for round_no in range(args.rounds):
        order = list(SETTINGS) if round_no % 2 == 0 else list(reversed(SETTINGS))
        for setting in order:
            work = args.work / "runs"
            shutil.rmtree(work, ignore_errors=True)
            env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(ROOT / "include"),
                   "MLOPS_SPARK_DRIVER_MEMORY": "4g", "MLOPS_SPARK_LOCAL_TUNING": SETTINGS[setting]}  # fmt: skip
            for run in RUNS:
                measured = measure(job_command(raw, work, run, work / "feature-store", 8), env, 18.0, args.timeout)
                if measured.outcome != "ok":
                    raise SystemExit(f"{setting}, {run}: {measured.outcome}\n{measured.output[-3000:]}")
                seconds[setting, run].append(measured.seconds)
                print(f"round {round_no + 1}, {setting}, {run}: {measured.seconds:.1f} s "
                      f"(peak {measured.peak_rss_gib:.2f} GiB, load {measured.load:.1f})", flush=True)  # fmt: skip
    print(f"\n{args.orders:,} orders, {args.rounds} rounds, medians:")
    print("| run | Spark's defaults: s | local settings: s | ratio |\n|---|---:|---:|---:|")
    for run in RUNS:
        base, tuned = (statistics.median(seconds[s, run]) for s in SETTINGS)
        print(f"| {run} | {base:.1f} | {tuned:.1f} | {tuned / base:.2f}x |")
    for key, values in seconds.items():
        print(f"{key[0]}, {key[1]}: {', '.join(f'{v:.1f}' for v in values)}")


if __name__ == "__main__":
    main()
