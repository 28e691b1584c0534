"""Benchmark: the whole closed loop (`make demo`) at several sizes, stage by stage.

For each size it runs ``make demo SIZE=N SEED=S`` (the Makefile's environment: Airflow home, DAG and
plugin folders, runtimes) in its own state folder (``MLOPS_HOME``), and records for every stage its wall
time (from the demo's ``summary.json``) and the peak resident memory of everything the demo runs: its own
process tree and the processes tagged as the project's (Glue/SageMaker job subprocesses, endpoint servers),
sampled every 0.25 s and attributed to the stage whose ``==>`` line came last. The first size is the baseline:
each stage's cost per order at the other sizes is printed as a ratio against it, so the stage whose
cost grows with the data stands out.

    MLOPS_RUNTIMES=.mlops/venvs PYTHONPATH=include:plugins:tools .venv/bin/python bench/bench_demo.py \
        --sizes 50000 1000000 5000000 [--write]

``--write`` replaces the "Whole loop" section of BENCHMARKS.md with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from benchmarks_md import write_section  # noqa: E402  (bench/ is on the path: the script's folder)
from process_tree import tree_rss  # noqa: E402

from mlops import processes  # noqa: E402

SECTION = "## Whole loop (make demo)"
STAGE_LINE = re.compile(r"^==> (?P<name>.+?)\s*$")
STATUS_LINE = re.compile(r"^(?P<status>ok|failed|gated) in (?P<seconds>[0-9.]+)s")
SAMPLE_EVERY_S = 0.25


@dataclass
class Run:
    size: int
    seconds: float
    ok: bool
    stages: list[dict] = field(default_factory=list)  # name, status, seconds, peak_gib
    load: float = 0.0  # mean 1-minute load average while it ran


def _follow(stream, marks: list[tuple[float, str]], ends: list[tuple[str, float]], log: list[str]) -> None:
    """Record (time, stage name) for every ``==>`` line the demo prints and (status, seconds) for every stage's
    result line; keep the output."""
    for raw in stream:
        line = raw.decode(errors="replace").rstrip("\n")
        log.append(line)
        if match := STAGE_LINE.match(line.strip()):
            marks.append((time.monotonic(), match.group("name")))
        elif match := STATUS_LINE.match(line.strip()):
            ends.append((match.group("status"), float(match.group("seconds"))))


def _kill_tree(process: psutil.Process) -> None:
    """Kill the demo and everything it started (job subprocesses, endpoint servers of this home)."""
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        members = []
    for pid in processes.owned_pids():
        try:
            members.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    for member in members:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass


def _stages_seen(marks: list[tuple[float, str]], ends: list[tuple[str, float]], stopped: float) -> list[dict]:
    """The stages a killed demo printed: each with the result it printed, the last one ``killed`` after the
    time it had run when the demo was stopped."""
    stages = []
    for i, (at, name) in enumerate(marks):
        status, seconds = ends[i] if i < len(ends) else ("killed", stopped - at)
        stages.append({"name": name, "status": status, "seconds": seconds})
    return stages


def run_demo(size: int, seed: int, home: Path, timeout_s: float) -> Run:
    """Run the demo at ``size`` in ``home``; sample memory until it exits."""
    env = {**os.environ, "MLOPS_HOME": str(home), "MLOPS_TARGET": "local", "TERM": "dumb", "COLUMNS": "200"}
    os.environ["MLOPS_HOME"] = str(home)  # processes.owned_pids() looks for this home's owner tag
    command = ["make", "--no-print-directory", "demo", f"SIZE={size}", f"SEED={seed}"]
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    marks: list[tuple[float, str]] = []
    ends: list[tuple[str, float]] = []
    log: list[str] = []
    reader = threading.Thread(target=_follow, args=(proc.stdout, marks, ends, log), daemon=True)
    reader.start()
    me, peaks, loads, killed = psutil.Process(proc.pid), {}, [], False
    while proc.poll() is None:
        if time.monotonic() - started > timeout_s:
            _kill_tree(me)
            killed = True
            break
        stage = marks[-1][1] if marks else "(start-up)"
        peaks[stage] = max(peaks.get(stage, 0), tree_rss(me, processes.owned_pids()))
        loads.append(os.getloadavg()[0])
        time.sleep(SAMPLE_EVERY_S)
    stopped = time.monotonic()
    proc.wait()
    reader.join(timeout=10)
    elapsed = stopped - started
    summary_path = home / "summary.json"
    if killed or not summary_path.exists():
        print(f"    killed after {elapsed:.0f} s (--timeout {timeout_s:g})" if killed else
              f"    no summary (exit {proc.returncode}); last output: {' | '.join(log[-5:])}", flush=True)  # fmt: skip
        seen = _stages_seen(marks, ends, stopped)
    else:
        summary = json.loads(summary_path.read_text())
        if not summary["ok"]:
            print("\n".join(f"    | {line}" for line in log[-25:]), flush=True)
        seen = summary["stages"]
    stages = [
        {"name": s["name"], "status": s["status"], "seconds": s["seconds"], "peak_gib": peaks.get(s["name"], 0) / 2**30}
        for s in seen
    ]
    ok = not killed and summary_path.exists() and bool(json.loads(summary_path.read_text())["ok"])
    return Run(size, elapsed, ok, stages, sum(loads) / max(1, len(loads)))


def _verdict(run: Run) -> str:
    if any(s["status"] == "killed" for s in run.stages):
        return "killed at the timeout"
    return "passed" if run.ok else "FAILED"


def table(runs: list[Run]) -> list[str]:
    """Markdown rows: one per stage, seconds and peak GiB per size, cost per order against the first size."""
    base = runs[0]
    head = ["stage", *[f"{r.size:,}: s / GiB" for r in runs], *[f"cost/order x{r.size // base.size}" for r in runs[1:]]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, stage in enumerate(base.stages):
        cells = [stage["name"]]
        for run in runs:
            s = run.stages[i] if i < len(run.stages) else None
            cells.append("—" if s is None else f"{s['seconds']:.1f} / {s['peak_gib']:.2f} ({s['status']})")
        for run in runs[1:]:
            s = run.stages[i] if i < len(run.stages) else None
            ratio = (s["seconds"] / run.size) / (stage["seconds"] / base.size) if s and stage["seconds"] > 0 else None
            cells.append("—" if ratio is None else f"{ratio:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    totals = ["**whole demo**", *[f"{r.seconds:.0f} s ({_verdict(r)}, load {r.load:.1f})" for r in runs]]
    totals += [f"{(r.seconds / r.size) / (base.seconds / base.size):.2f}" for r in runs[1:]]
    lines.append("| " + " | ".join(totals) + " |")
    return lines


def section(lines: list[str], command: str) -> str:
    """The "Whole loop" section of BENCHMARKS.md for this run's table."""
    machine = (
        f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
        f"Python {platform.python_version()}"
    )
    return "\n".join(
        [
            SECTION,
            "",
            f"`{command}` ({machine}). Seconds and peak resident memory per stage (the demo's process tree and every",
            "job subprocess and endpoint it starts); the last columns are each stage's cost per order against the",
            "first size, measured in the same run. One run per size: the whole loop is too long to repeat here.",
            "",
            *lines,
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per size before the run is killed")
    parser.add_argument("--write", action="store_true", help="replace the section of BENCHMARKS.md")
    args = parser.parse_args()
    if sorted(args.sizes) != args.sizes or args.sizes[0] < 100:
        parser.error("--sizes must be ascending and at least 100 orders; the first is the baseline")
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as work:
        for size in args.sizes:
            print(f"==> make demo SIZE={size:,}", flush=True)
            run = run_demo(size, args.seed, Path(work) / f"home-{size}", args.timeout)
            print(f"    {_verdict(run)} in {run.seconds:.0f} s (mean load {run.load:.1f})", flush=True)
            runs.append(run)
            subprocess.run([sys.executable, "-m", "mlops_tools.local_airflow", "stop"], cwd=ROOT, check=False,
                           env={**os.environ, "MLOPS_HOME": str(Path(work) / f"home-{size}")})  # fmt: skip
    lines = table(runs)
    print("\n".join(lines))
    if args.write:
        write_section(section(lines, "bench/bench_demo.py --sizes " + " ".join(map(str, args.sizes))))
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
