"""Benchmark: the features Glue job on local Spark vs the same transform in pandas.

For each size it writes synthetic DMS raw output (full load + CDC, not timed), then runs

- the Glue script exactly as the local Glue stand-in runs it (a ``python build_features.py``
  subprocess of the glue runtime on ``local[*]``, JVM start-up included), and
- the pandas implementation of the same transform (a subprocess of this environment's Python, so
  its memory is its own),

measuring wall time, input orders per second and peak resident memory of the process tree
(sampled every 0.2 s). A run that exceeds the memory or time budget is killed and reported as
such. The result replaces the "Features ETL" section of BENCHMARKS.md.

    SPARK_LOCAL_IP=127.0.0.1 MLOPS_RUNTIMES=.mlops/venvs PYTHONPATH=include .venv/bin/python bench/bench_etl.py \
        --sizes 100000 1000000 5000000
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from benchmarks_md import write_section  # noqa: E402  (bench/ is on the path: the script's folder)
from process_tree import tree_rss  # noqa: E402  (bench/ is on the path: the script's folder)

from mlops.etl import build_features  # noqa: E402
from mlops.etl.synthetic_raw import write_raw  # noqa: E402
from mlops.runtimes import runtime_python  # noqa: E402
from mlops.schema.snapshots import read_current  # noqa: E402

SECTION = "## Features ETL"
PANDAS_SNIPPET = (
    "import sys; from pathlib import Path; from mlops.etl import pandas_features as p; "
    "f = p.run(Path(sys.argv[1])); f.to_parquet(sys.argv[2], partition_cols=['split']); print(len(f))"
)


@dataclass
class Measurement:
    seconds: float
    peak_rss_gib: float
    outcome: str  # "ok", "out of memory (killed at N GiB)", "timeout", "failed: ..."
    load: float = 0.0  # mean 1-minute load average while it ran (other processes share the CPUs)
    output: str = field(default="", repr=False)  # what the command printed (stdout and stderr)


def measure(command: list[str], env: dict[str, str], max_rss_gib: float, timeout_s: float) -> Measurement:
    """Run ``command``; sample the process tree's RSS; kill it past the memory or time budget."""
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    ps = psutil.Process(proc.pid)
    peak, outcome, loads = 0, "ok", []
    output: list[bytes] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        loads.append(os.getloadavg()[0])
        if peak > max_rss_gib * 2**30:
            outcome = f"out of memory (killed above {max_rss_gib:g} GiB)"
        elif time.monotonic() - started > timeout_s:
            outcome = f"timeout (killed after {timeout_s:.0f} s)"
        if outcome != "ok":
            os.killpg(proc.pid, 9)
            break
        time.sleep(0.2)
    proc.wait()
    reader.join(timeout=5)
    elapsed = time.monotonic() - started
    text = b"".join(output).decode(errors="replace")
    if outcome == "ok" and proc.returncode != 0:
        outcome = "failed: " + " | ".join(text.strip().splitlines()[-3:])
    return Measurement(elapsed, peak / 2**30, outcome, sum(loads) / max(1, len(loads)), text)


def run_size(n_orders: int, work: Path, args: argparse.Namespace) -> dict:
    raw = work / f"raw-{n_orders}"
    if not raw.exists():
        write_raw(raw, n_orders)
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYTHONPATH": str(ROOT / "include"),
        "MLOPS_SPARK_DRIVER_MEMORY": args.driver_memory,
    }
    glue_python = runtime_python("glue")  # the job runtime (Glue 5.0's pyspark), as the local Glue stand-in uses
    spark_cmd = [
        glue_python,
        str(Path(build_features.__file__)),
        "--JOB_NAME",
        "bench",
        "--raw_uri",
        raw.as_uri(),
        "--curated_uri",
        (work / f"curated-{n_orders}").as_uri(),
        "--staging_uri",
        (work / "_staging").as_uri(),
        "--run_key",
        f"bench-{n_orders}",
        "--shuffle_partitions",
        str(args.shuffle_partitions),
    ]
    spark = measure(spark_cmd, env, args.max_rss_gib, args.timeout)
    pointer = read_current((work / f"curated-{n_orders}").as_uri()) or {}
    out = work / f"pandas-{n_orders}.parquet"
    shutil.rmtree(out, ignore_errors=True)
    pandas = measure([sys.executable, "-c", PANDAS_SNIPPET, str(raw), str(out)], env, args.max_rss_gib, args.timeout)
    print(f"{n_orders}: spark {spark}, pandas {pandas}", flush=True)
    return {"orders": n_orders, "rows": pointer.get("rows", 0), "spark": spark, "pandas": pandas}


def _cell(m: Measurement, n: int) -> tuple[str, str, str]:
    if m.outcome != "ok":
        return m.outcome, "—", f"{m.peak_rss_gib:.2f}"
    return f"{m.seconds:.1f}", f"{n / m.seconds:,.0f}", f"{m.peak_rss_gib:.2f}"


def render(results: list[dict], args: argparse.Namespace) -> str:
    lines = [
        SECTION,
        "",
        f"`bench/bench_etl.py`, run {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Python {platform.python_version()}, "
        f"pyspark {_version('pyspark', runtime_python('glue'))} (glue runtime, `local[*]`, "
        f"driver memory {args.driver_memory}, "
        f"{args.shuffle_partitions} shuffle partitions), pandas {_version('pandas')}.",
        "Input: synthetic DMS raw output (`mlops.etl.synthetic_raw`: full load in 2 files + 2 CDC batches with "
        "~2% order updates and ~0.5% order deletes; ~2.5 lines per order). Both sides do the full transform "
        "(latest state, joins, leak-free history windows, label, hash split) and write Parquet partitioned by "
        "split. Spark times include JVM start-up (~10 s) and the staged snapshot swap, as the local Glue "
        "stand-in runs it. Peak memory is the RSS of the whole process tree (JVM included). "
        f"Budget per run: {args.max_rss_gib:g} GiB, {args.timeout:.0f} s.",
        "",
        "| orders | curated rows | Spark wall s | Spark orders/s | Spark peak GiB "
        "| Spark s per 1M orders (vs first size) "
        "| pandas wall s | pandas orders/s | pandas peak GiB | pandas / Spark time (<1: pandas faster) "
        "| load avg (Spark / pandas) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    first = results[0]["spark"].seconds / results[0]["orders"] if results[0]["spark"].outcome == "ok" else None
    for r in results:
        s, p, n = r["spark"], r["pandas"], r["orders"]
        ratio = f"{p.seconds / s.seconds:.2f}x" if s.outcome == p.outcome == "ok" else "—"
        cost = f"{s.seconds / n * 1e6:.1f} ({s.seconds / n / first:.2f}x)" if s.outcome == "ok" and first else "—"
        lines.append(
            f"| {n:,} | {r['rows']:,} | "
            + " | ".join(_cell(s, n))
            + f" | {cost} | "
            + " | ".join(_cell(p, n))
            + f" | {ratio} | {s.load:.1f} / {p.load:.1f} |"
        )
    lines += ["", _notes(results, args), ""]
    return "\n".join(lines)


def _notes(results: list[dict], args: argparse.Namespace) -> str:
    failed = [f"{r['orders']:,} orders: pandas {r['pandas'].outcome}" for r in results if r["pandas"].outcome != "ok"]
    failed += [f"{r['orders']:,} orders: Spark {r['spark'].outcome}" for r in results if r["spark"].outcome != "ok"]
    note = "Over budget: " + "; ".join(failed) + "." if failed else "Every run finished within its budget."
    completed = [r for r in results if r["pandas"].outcome == "ok"] or results
    largest = max(completed, key=lambda r: r["orders"])
    p, n = largest["pandas"], largest["orders"]
    spark_peak = max(r["spark"].peak_rss_gib for r in results)
    per_million = p.peak_rss_gib / (n / 1e6)
    busy = max(max(r["spark"].load, r["pandas"].load) for r in results)
    return (
        f"{note} pandas holds every table and the history events in memory at once on one core: its peak was "
        f"{p.peak_rss_gib:.1f} GiB at {n:,} orders (~{per_million:.1f} GiB per million orders, so a 16 GiB worker "
        f"runs out near {16 / per_million:.0f}M orders). Spark's peak was {spark_peak:.1f} GiB at most: the "
        f"{args.driver_memory} driver heap (past which it spills to disk instead of growing) plus JVM off-heap "
        "memory and the PySpark driver process. Spark pays ~10-20 s of JVM "
        "start-up and planning on every run, which dominates small inputs; with only 2 cores its parallelism is "
        "limited, so its advantage here is memory, not speed. "
        + (
            f"The machine was shared with other jobs during this run (1-minute load average up to {busy:.1f} on "
            f"{os.cpu_count()} CPUs), so wall times are inflated and noisy; compare within a row, not across runs."
            if busy > (os.cpu_count() or 1)
            else ""
        )
    )


def _version(name: str, python: str = sys.executable) -> str:
    """The package's version in the environment of ``python`` (pyspark lives in the glue runtime only)."""
    probe = f"from importlib.metadata import version; print(version({name!r}))"
    return subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()


def spark_job_parser(description: str, sizes: list[int], work: str) -> argparse.ArgumentParser:
    """The options of a benchmark that runs the features job on synthetic raw output of ``--sizes`` orders."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sizes", type=int, nargs="+", default=sizes)
    parser.add_argument("--work", type=Path, default=ROOT / ".mlops" / "bench" / work)
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--shuffle-partitions", type=int, default=16)
    parser.add_argument("--max-rss-gib", type=float, default=18.0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    return parser


def main() -> None:
    parser = spark_job_parser(__doc__.splitlines()[0], [100_000, 1_000_000, 5_000_000], "etl")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = [run_size(n, args.work, args) for n in args.sizes]
    section = render(results, args)
    print(section)
    write_section(section, args.output)


if __name__ == "__main__":
    main()
