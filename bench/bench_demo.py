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

Comparing two commits on a noisy machine: ``--against DIR`` (another checkout, e.g. a ``git worktree`` of the
baseline commit; its environments are installed first, outside the timings) runs the demo at the one size given
``--rounds`` times in each checkout, interleaved and with the order swapped every round (A B, B A, ...), and
prints every stage's runs and medians side by side with the ratio, so the machine's drift falls on both:

    MLOPS_RUNTIMES=.mlops/venvs PYTHONPATH=include:plugins:tools .venv/bin/python bench/bench_demo.py \
        --sizes 1000000 --against ../baseline --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
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


def run_demo(size: int, seed: int, home: Path, timeout_s: float, checkout: Path = ROOT) -> Run:
    """Run the demo of ``checkout`` at ``size`` in ``home``; sample memory until it exits."""
    env = {**os.environ, "MLOPS_HOME": str(home), "MLOPS_TARGET": "local", "TERM": "dumb", "COLUMNS": "200"}
    os.environ["MLOPS_HOME"] = str(home)  # processes.owned_pids() looks for this home's owner tag
    command = ["make", "--no-print-directory", "demo", f"SIZE={size}", f"SEED={seed}"]
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=checkout)
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


def stop_local_processes(home: Path) -> None:
    """Stop the endpoints and anything else a demo in ``home`` left running."""
    subprocess.run([sys.executable, "-m", "mlops_tools.local_airflow", "stop"], cwd=ROOT, check=False,
                   env={**os.environ, "MLOPS_HOME": str(home)})  # fmt: skip


def describe_checkout(checkout: Path) -> str:
    """``<short commit>`` of a checkout, ``+changes`` when its tree differs from the commit."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=checkout, capture_output=True, text=True, check=True).stdout

    return git("rev-parse", "--short", "HEAD").strip() + ("+changes" if git("status", "--porcelain").strip() else "")


def interleaved(size: int, seed: int, other: Path, rounds: int, timeout_s: float, work: Path) -> dict[str, list[Run]]:
    """``rounds`` demos of each checkout at ``size``, alternating, the order swapped every round; runs by label."""
    checkouts = {describe_checkout(ROOT) + " (this)": ROOT, describe_checkout(other) + " (against)": other}
    if len(set(checkouts)) < 2:
        raise SystemExit(f"--against {other} is this checkout's commit and tree: nothing to compare")
    for label, checkout in checkouts.items():  # environments installed outside the timings
        print(f"==> make venv in {checkout} ({label})", flush=True)
        subprocess.run(["make", "--no-print-directory", "venv"], cwd=checkout, check=True)
    runs: dict[str, list[Run]] = {label: [] for label in checkouts}
    for round_ in range(rounds):
        order = list(checkouts.items()) if round_ % 2 == 0 else list(checkouts.items())[::-1]
        for label, checkout in order:
            print(f"==> round {round_ + 1}/{rounds}: make demo SIZE={size:,} in {checkout} ({label})", flush=True)
            home = work / f"home-{round_}-{list(checkouts).index(label)}"
            run = run_demo(size, seed, home, timeout_s, checkout)
            print(f"    {_verdict(run)} in {run.seconds:.0f} s (mean load {run.load:.1f})", flush=True)
            runs[label].append(run)
            stop_local_processes(home)
    return runs


def comparison_table(runs: dict[str, list[Run]]) -> list[str]:
    """Markdown rows: per stage, each checkout's runs and median seconds, and the ratio of the medians (this
    checkout's over the other's; below 1: this one is faster)."""
    (this, these), (other, those) = runs.items()
    head = ["stage", f"{this}: runs s", f"{other}: runs s", "median this", "median against", "this / against"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def seconds(run_list: list[Run], name: str) -> list[float]:
        return [s["seconds"] for run in run_list for s in run.stages if s["name"] == name and s["status"] == "ok"]

    names = list(dict.fromkeys(s["name"] for run in [*these, *those] for s in run.stages))
    rows = [(name, seconds(these, name), seconds(those, name)) for name in names]
    rows.append(("**whole demo**", [r.seconds for r in these if r.ok], [r.seconds for r in those if r.ok]))
    for name, a, b in rows:
        ma, mb = (statistics.median(v) if v else None for v in (a, b))
        ratio = f"{ma / mb:.2f}" if ma and mb else "—"
        runs_a, runs_b = (", ".join(f"{v:.1f}" for v in values) or "—" for values in (a, b))
        medians = [f"{m:.1f}" if m is not None else "—" for m in (ma, mb)]
        lines.append("| " + " | ".join([name, runs_a, runs_b, *medians, ratio]) + " |")
    failed = [f"{label} round {i + 1}" for label, rs in runs.items() for i, r in enumerate(rs) if not r.ok]
    if failed:
        lines.append(f"\nNot passed (left out of the medians): {', '.join(failed)}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per size before the run is killed")
    parser.add_argument("--write", action="store_true", help="replace the section of BENCHMARKS.md")
    parser.add_argument("--against", type=Path, help="another checkout to compare with, interleaved (one size)")
    parser.add_argument("--rounds", type=int, default=2, help="with --against: demos per checkout")
    args = parser.parse_args()
    if sorted(args.sizes) != args.sizes or args.sizes[0] < 100:
        parser.error("--sizes must be ascending and at least 100 orders; the first is the baseline")
    if args.against is not None:
        if len(args.sizes) != 1 or args.write or args.rounds < 1:
            parser.error("--against compares at one size, without --write, with --rounds 1 or more")
        if not (args.against / "Makefile").is_file():
            parser.error(f"--against {args.against}: no Makefile there; give a checkout (e.g. `git worktree add`)")
        with tempfile.TemporaryDirectory(prefix="bench-demo-") as work:
            compared = interleaved(
                args.sizes[0], args.seed, args.against.resolve(), args.rounds, args.timeout, Path(work)
            )
        print("\n".join(comparison_table(compared)))
        return 0 if all(r.ok for rs in compared.values() for r in rs) else 1
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as work:
        for size in args.sizes:
            print(f"==> make demo SIZE={size:,}", flush=True)
            run = run_demo(size, args.seed, Path(work) / f"home-{size}", args.timeout)
            print(f"    {_verdict(run)} in {run.seconds:.0f} s (mean load {run.load:.1f})", flush=True)
            runs.append(run)
            stop_local_processes(Path(work) / f"home-{size}")
    lines = table(runs)
    print("\n".join(lines))
    if args.write:
        write_section(section(lines, "bench/bench_demo.py --sizes " + " ".join(map(str, args.sizes))))
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
