"""Benchmark: the features job of this checkout against another checkout's, on the same raw lake, interleaved.

A whole ``make demo`` at 1M orders takes ~13 minutes and drifts with the machine by more than most changes to
the features job (``bench_demo.py --against``); this times the job alone. Both checkouts' ``build_features.py``
run as the local Glue stand-in runs them (a subprocess of the glue runtime with the checkout's ``include`` on
the path, JVM start-up included, the demo's job arguments: offline store written by the job, local online
store), on one raw lake: a demo's (``--raw $MLOPS_HOME/lake/raw/dms/shop``, read only) or synthetic DMS output
of ``--orders`` orders (written first, not timed). Each round runs every checkout once, the order swapped
every round (A B, B A, ...); each run is a **backfill** (empty offline store: every record written) and, with
``--runs backfill steady``, a **steady state** (the same again: the store read and compared, nothing
appended). Printed: each run's seconds, peak RSS, mean load and its phase lines (offline-store sync per group,
online store, point-in-time joins), then medians per checkout and run and the ratio this / against.

    git worktree add ../baseline <commit>
    MLOPS_RUNTIMES=.mlops/venvs PYTHONPATH=include .venv/bin/python bench/bench_features_job.py \\
        --against ../baseline --raw /tmp/home1/lake/raw/dms/shop [--rounds 2] [--runs backfill steady]
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

from bench_demo import describe_checkout  # noqa: E402  (bench/ is on the path: the script's folder)
from bench_etl import measure  # noqa: E402

from mlops.etl.synthetic_raw import write_raw  # noqa: E402
from mlops.runtimes import runtime_python  # noqa: E402

RUNS = ("backfill", "steady")
PHASES = ("offline store ", "online store:", "training table ", "built ")


def job_command(checkout: Path, raw: Path, work: Path, run: str) -> list[str]:
    """The checkout's script with the demo's arguments (offline store written by the job, local online store)."""
    return [
        runtime_python("glue"), str(checkout / "include" / "mlops" / "etl" / "build_features.py"),
        "--JOB_NAME", "bench-features-job", "--raw_uri", raw.as_uri(),
        "--curated_uri", (work / "curated").as_uri(), "--staging_uri", (work / "_staging").as_uri(),
        "--run_key", run, "--offline_store_uri", (work / "feature-store").as_uri(),
        "--online_store_uri", (work / "online.sqlite").as_uri(),
        "--feature_group_prefix", "mlops-bench", "--region", "eu-west-1",
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True, help="another checkout (e.g. a git worktree)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--raw", type=Path, help="a raw lake (DMS output folder of the four tables), read only")
    source.add_argument("--orders", type=int, help="synthetic DMS output of this many orders, written first")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=["backfill"])
    parser.add_argument("--work", type=Path, default=ROOT / ".mlops" / "bench" / "features-job")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    script = Path("include/mlops/etl/build_features.py")
    if not (args.against / script).is_file():
        parser.error(f"--against {args.against}: no {script} there; give a checkout (e.g. `git worktree add`)")
    checkouts = {
        f"{describe_checkout(ROOT)} (this)": ROOT,
        f"{describe_checkout(args.against)} (against)": args.against,
    }
    if len(set(checkouts)) < 2:
        parser.error(f"--against {args.against} is this checkout's commit and tree: nothing to compare")
    raw = args.raw
    if raw is None:
        raw = args.work / f"raw-{args.orders}"
        if not raw.exists():
            print(f"writing synthetic raw output of {args.orders:,} orders to {raw}", flush=True)
            write_raw(raw, args.orders)
    elif not (raw / "orders").is_dir():
        parser.error(
            f"--raw {raw}: no orders folder there; give a DMS output folder such as $MLOPS_HOME/lake/raw/dms/shop"
        )
    seconds: dict[tuple[str, str], list[float]] = {(label, run): [] for label in checkouts for run in args.runs}
    for round_no in range(args.rounds):
        order = list(checkouts.items()) if round_no % 2 == 0 else list(checkouts.items())[::-1]
        for label, checkout in order:
            work = args.work / "run"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(checkout / "include")}
            for run in args.runs:
                measured = measure(job_command(checkout, raw, work, run), env, 20.0, args.timeout)
                if measured.outcome != "ok":
                    raise SystemExit(f"{label}, {run}: {measured.outcome}\n{measured.output[-3000:]}")
                seconds[label, run].append(measured.seconds)
                print(f"round {round_no + 1}, {label}, {run}: {measured.seconds:.1f} s "
                      f"(peak {measured.peak_rss_gib:.2f} GiB, load {measured.load:.1f})", flush=True)  # fmt: skip
                for line in measured.output.splitlines():
                    if line.startswith(PHASES):
                        print(f"    {line[:240]}", flush=True)
        shutil.rmtree(args.work / "run", ignore_errors=True)
    this, other = checkouts
    print(f"\n{raw}, {args.rounds} rounds, medians:")
    print(f"| run | {this}: s | {other}: s | this / against |\n|---|---:|---:|---:|")
    for run in args.runs:
        mine, theirs = (statistics.median(seconds[label, run]) for label in checkouts)
        print(f"| {run} | {mine:.1f} | {theirs:.1f} | {mine / theirs:.2f}x |")
    for (label, run), values in seconds.items():
        print(f"{label}, {run}: {', '.join(f'{v:.1f}' for v in values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
