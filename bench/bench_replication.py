"""Replication throughput: the local DMS stand-in against a naive baseline, in one run.

Full load: ``LocalReplicator.full_load`` (trigger install, consistent snapshot, streamed
Parquet in the DMS layout) against the baseline a script would do without DMS:
``pandas.read_sql`` of each table and ``DataFrame.to_parquet``.
CDC: one ``cdc_batch`` carrying the changes of some days of OLTP activity, against the
baseline of capturing the same changes by reloading every table in full.
Validation: ``LocalReplicator.validate`` (every column of every row, key-range digests, one
consistent source read) after that batch, against the baseline a script would do: read each
source table and its latest lake state whole into pandas and compare them row by row.

Backlog drain (``--case backlog``, issue 15.1): after the full load, the demo's drift knob (half
as many drifted orders again, appended with capture on) leaves a backlog of some millions of
changes. ``LocalReplicator.drain`` applies it in batches of ``replication.cdc_batch_max_changes``
until caught up, against the baseline of one batch holding the whole backlog
(``cdc_batch(max_changes=<all>)``), both from copies of the same state in the same run.

Source writers (``--case source``): the source's own writes the demo makes (generation, OLTP activity, the
drift knob with capture on, so each row also writes its change-log row) and the full load between them, with
SQLite's page cache at the shipped ``mlops.source.db.SQLITE_CACHE_KIB`` against SQLite's default (2 MiB), each
repeat from an empty home, the two alternating.

Crash safety (``--case kill``): the replicator is killed with SIGKILL at a random moment of a
full reload, of a reload of one table, or of a CDC drain after some OLTP activity, ``--kills``
times; after each kill the same operation runs again to the end, and DMS validation must find
every table equal to the source (every column of every row) with nothing pending.

Each phase runs in its own process so peak memory (max RSS) is per phase. Medians over
``--repeat`` runs; rows/s counts source rows read (full load) or changes applied (CDC).

    .venv/bin/python bench/bench_replication.py --orders 1000000 --repeat 3
    .venv/bin/python bench/bench_replication.py --case backlog --orders 1000000 --repeat 3
    .venv/bin/python bench/bench_replication.py --case kill --orders 100000 --kills 30
    .venv/bin/python bench/bench_replication.py --case source --orders 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _replicator():
    import pandas  # noqa: F401 - warm imports, so no phase is charged for them
    import pyarrow.parquet  # noqa: F401

    from mlops.local_stack import local_replicator

    return local_replicator()


def phase_generate(orders: int) -> dict:
    from mlops.source.db import make_engine, reset_schema
    from mlops.source.generator import generate

    engine = make_engine(None)
    reset_schema(engine)
    result = generate(engine, orders=orders, seed=42)
    return {"rows": sum(result.counts.values()), "seconds": result.seconds}


def phase_full_load() -> dict:
    result = _replicator().full_load()
    return {"rows": result.rows, "seconds": result.elapsed_seconds}


def phase_pandas_export(out: str) -> dict:
    import pandas as pd
    import pyarrow.parquet  # noqa: F401

    from mlops.source.db import make_engine
    from mlops.source.schema import TABLES

    engine = make_engine(None)
    started = time.perf_counter()
    rows = 0
    for name in TABLES:
        frame = pd.read_sql_table(name, engine)
        frame.to_parquet(Path(out) / f"{name}.parquet", index=False)
        rows += len(frame)
    return {"rows": rows, "seconds": time.perf_counter() - started}


def phase_activity(steps: int) -> dict:
    from mlops.source.activity import simulate_activity
    from mlops.source.db import make_engine

    result = simulate_activity(make_engine(None), seed=7, steps=steps)
    changes = sum(result.inserts.values()) + sum(result.updates.values()) + sum(result.deletes.values())
    return {"rows": changes, "seconds": result.seconds}


def phase_cdc_batch() -> dict:
    result = _replicator().cdc_batch(max_changes=10_000_000)
    return {"rows": result.rows, "seconds": result.elapsed_seconds}


def phase_drift(orders: int) -> dict:
    """The demo's drift knob: half as many drifted orders again, appended while capture is on."""
    from mlops.source.db import make_engine
    from mlops.source.generator import DriftSpec, generate

    result = generate(make_engine(None), orders=max(orders // 2, 500), seed=44, append=True,
                      drift=DriftSpec(covariate=0.8, concept=0.8))  # fmt: skip
    return {"rows": _replicator().pending_changes(), "seconds": result.seconds}


def phase_drain() -> dict:
    replicator = _replicator()
    started = time.perf_counter()
    result = replicator.drain(deadline_seconds=24 * 3600, report=lambda line: print(line, file=sys.stderr))
    if result.pending_changes:
        raise SystemExit(f"drain left {result.pending_changes} changes pending")
    return {"rows": result.changes, "seconds": time.perf_counter() - started, "batches": result.batches}


def phase_one_batch() -> dict:
    replicator = _replicator()
    started = time.perf_counter()
    result = replicator.cdc_batch(max_changes=10**12)
    if replicator.pending_changes():
        raise SystemExit("one batch did not apply the whole backlog")
    return {"rows": result.changes, "seconds": time.perf_counter() - started, "batches": 1}


KILL_OPERATIONS = {
    "reload every table": "reload()",
    "reload orders": "reload(['orders'])",
    "CDC drain": "sync_until_caught_up()",
}


def _operation(home: Path, code: str) -> subprocess.Popen:
    env = {**os.environ, "MLOPS_HOME": str(home), "PYTHONPATH": f"{ROOT / 'include'}:{ROOT / 'plugins'}",
           "MLOPS__REPLICATION__CDC_BATCH_MAX_CHANGES": "20000"}  # fmt: skip
    script = f"from mlops.local_stack import local_replicator; local_replicator().{code}"
    return subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True)


def kill_case(args: argparse.Namespace) -> int:
    """SIGKILL the replicator mid-operation ``--kills`` times; after each, finish and require exact validation."""
    import random

    rng = random.Random(13)
    with tempfile.TemporaryDirectory(prefix="bench-replication-") as tmp:
        home = Path(tmp) / "home"
        run_phase("generate", home, orders=args.orders)
        run_phase("full_load", home)
        landed, lost = {name: 0 for name in KILL_OPERATIONS}, 0
        for kill in range(args.kills):
            name = list(KILL_OPERATIONS)[kill % len(KILL_OPERATIONS)]
            if name == "CDC drain":
                run_phase("activity", home, steps=3)
            started = time.perf_counter()
            process = _operation(home, KILL_OPERATIONS[name])
            time.sleep(rng.uniform(0.5, 6.0))
            if process.poll() is None:
                process.kill()
                landed[name] += 1
            process.wait()
            finished = _operation(home, KILL_OPERATIONS[name])
            if finished.wait() != 0:
                raise SystemExit(f"{name} did not finish after the kill:\n{finished.stderr.read()[-2000:]}")
            check = run_phase("validate", home)
            lost += 0 if check["rows"] else 1
            print(f"  kill {kill + 1} ({name}, {time.perf_counter() - started:.1f}s): validated {check['rows']:,} rows",
                  flush=True)  # fmt: skip
    print(
        f"\n{sum(landed.values())} of {args.kills} SIGKILLs landed mid-operation ({landed}); after each, the same "
        f"operation finished and DMS validation found every table equal to the source; records lost: {lost}"
    )
    return 0


def phase_validate() -> dict:
    replicator = _replicator()
    started = time.perf_counter()
    outcomes = replicator.validate()
    seconds = time.perf_counter() - started
    states = {v.state for v in outcomes.values()}
    if states != {"Validated"}:
        raise SystemExit(f"validation did not pass: {states}")
    from mlops.replication.checks import replicated_rows

    statistics_ = replicator.status()["table_statistics"]["TableStatistics"]
    return {"rows": sum(replicated_rows(statistics_, list(outcomes)).values()), "seconds": seconds}


def phase_pandas_compare() -> dict:
    import pandas as pd

    from mlops.local_stack import local_lake, source_engine
    from mlops.replication.reconcile import latest_state
    from mlops.source.schema import TABLES, primary_key

    engine, lake = source_engine(), local_lake()
    started = time.perf_counter()
    rows = 0
    for name in TABLES:
        key = primary_key(name)
        source = pd.read_sql_table(name, engine)
        latest = latest_state(lake.raw_table("shop", name), key).to_pandas()
        merged = source.merge(latest, on=key, how="outer", suffixes=("_source", "_lake"), indicator=True)
        columns = [c for c in source.columns if c != key]
        differs = merged["_merge"] != "both"
        for column in columns:
            differs |= merged[f"{column}_source"].astype(str) != merged[f"{column}_lake"].astype(str)
        rows += len(source)
    return {"rows": rows, "seconds": time.perf_counter() - started}


PHASES = {
    "generate": lambda a: phase_generate(a.orders),
    "full_load": lambda a: phase_full_load(),
    "pandas_export": lambda a: phase_pandas_export(a.out),
    "activity": lambda a: phase_activity(a.steps),
    "cdc_batch": lambda a: phase_cdc_batch(),
    "validate": lambda a: phase_validate(),
    "pandas_compare": lambda a: phase_pandas_compare(),
    "drift": lambda a: phase_drift(a.orders),
    "drain": lambda a: phase_drain(),
    "one_batch": lambda a: phase_one_batch(),
}


def run_phase(name: str, home: Path, **options: object) -> dict:
    """Run one phase in a child process; returns its figures plus the child's peak RSS."""
    args = [sys.executable, __file__, "--phase", name]
    for key, value in options.items():
        args += [f"--{key}", str(value)]
    env = {**os.environ, "MLOPS_HOME": str(home), "PYTHONPATH": f"{ROOT / 'include'}:{ROOT / 'plugins'}"}
    out = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if out.returncode:
        raise SystemExit(f"phase {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def snapshot(home: Path, name: str) -> Path:
    """Copy the MLOPS_HOME state so each repeat starts from the same point."""
    target = home.parent / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(home, target)
    return target


def median_of(runs: list[dict]) -> dict:
    return {
        "rows": runs[0]["rows"],
        "seconds": statistics.median(r["seconds"] for r in runs),
        "rows_per_second": statistics.median(r["rows"] / r["seconds"] for r in runs),
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
    }


def backlog_case(args: argparse.Namespace) -> int:
    """Full load, drift knob, then the backlog drained in bounded batches vs applied as one batch."""
    with tempfile.TemporaryDirectory(prefix="bench-replication-") as tmp:
        base = Path(tmp) / "generated"
        print(f"generating {args.orders:,} orders, full load, drift knob ...", flush=True)
        gen = run_phase("generate", base, orders=args.orders)
        full = run_phase("full_load", base)
        drift = run_phase("drift", base, orders=args.orders)
        print(f"  {gen['rows']:,} source rows in {gen['seconds']:.1f}s, full load {full['seconds']:.1f}s, "
              f"drift knob {drift['seconds']:.1f}s: {drift['rows']:,} changes pending", flush=True)  # fmt: skip
        drain, one = [], []
        for i in range(args.repeat):
            for runs, phase in ((drain, "drain"), (one, "one_batch")):
                home = snapshot(base, f"{phase}{i}")
                runs.append(run_phase(phase, home))
                shutil.rmtree(home)
            print(f"  repeat {i + 1}: drain {drain[-1]['seconds']:.1f}s in {drain[-1]['batches']} batches, "
                  f"{drain[-1]['peak_rss_mb']:.0f} MB; one batch {one[-1]['seconds']:.1f}s, "
                  f"{one[-1]['peak_rss_mb']:.0f} MB", flush=True)  # fmt: skip
    dr, ob = median_of(drain), median_of(one)
    print(f"\nmedians of {args.repeat} runs, {args.orders:,} orders + drift knob, {dr['rows']:,} changes:")
    print(f"{'phase':<44}{'seconds':>9}{'changes/s':>12}{'peak MB':>9}")
    for label, r in ((f"drain, batches of {_batch_size():,} ({drain[0]['batches']} batches)", dr),
                     ("baseline: the whole backlog as one batch", ob)):  # fmt: skip
        print(f"{label:<44}{r['seconds']:>9.2f}{r['rows_per_second']:>12,.0f}{r['peak_rss_mb']:>9.0f}")
    print(
        f"drain vs one batch: {ob['seconds'] / dr['seconds']:.2f}x the speed, "
        f"{ob['peak_rss_mb'] / dr['peak_rss_mb']:.2f}x less peak memory"
    )
    print(json.dumps({"orders": args.orders, "drift": drift, "drain": dr, "baseline_one_batch": ob}))
    return 0


SQLITE_DEFAULT_CACHE_KIB = 2000  # SQLite's default_cache_size (-2000: KiB)
SOURCE_PHASES = ("generate", "full_load", "activity", "drift")


def source_case(args: argparse.Namespace) -> int:
    """The source writers and the full load with the shipped page cache vs SQLite's default, alternating."""
    from mlops.source.db import SQLITE_CACHE_KIB

    shipped_label = f"page cache {SQLITE_CACHE_KIB // 1024} MiB (shipped)"
    baseline_label = "baseline: SQLite's default 2 MiB"
    caches = {shipped_label: SQLITE_CACHE_KIB, baseline_label: SQLITE_DEFAULT_CACHE_KIB}
    runs: dict[str, dict[str, list[dict]]] = {label: {p: [] for p in SOURCE_PHASES} for label in caches}
    with tempfile.TemporaryDirectory(prefix="bench-replication-") as tmp:
        for i in range(args.repeat):
            for label, kib in caches.items():
                home = Path(tmp) / f"home{i}-{kib}"
                options = {"orders": args.orders, "steps": args.steps, "sqlite_cache_kib": kib}
                for phase in SOURCE_PHASES:
                    runs[label][phase].append(run_phase(phase, home, **options))
                shutil.rmtree(home)
                done = ", ".join(f"{p} {runs[label][p][-1]['seconds']:.1f}s" for p in SOURCE_PHASES)
                print(f"  repeat {i + 1}, {label}: {done}", flush=True)
    medians = {label: {p: median_of(r) for p, r in phases.items()} for label, phases in runs.items()}
    print(f"\nmedians of {args.repeat} runs, {args.orders:,} orders (drift knob: {max(args.orders // 2, 500):,} more):")
    print(f"{'phase':<12}" + "".join(f"{label:>40}" for label in caches) + f"{'speed-up':>10}")
    shipped, baseline = medians[shipped_label], medians[baseline_label]
    for phase in SOURCE_PHASES:
        cells = "".join(f"{m[phase]['seconds']:>32.2f}s {m[phase]['peak_rss_mb']:>4.0f}MB" for m in (shipped, baseline))
        print(f"{phase:<12}{cells}{baseline[phase]['seconds'] / shipped[phase]['seconds']:>9.2f}x")
    together = [sum(m[p]["seconds"] for p in SOURCE_PHASES) for m in (shipped, baseline)]
    print(f"together: {together[0]:.1f}s vs {together[1]:.1f}s ({together[1] / together[0]:.2f}x)")
    print(json.dumps({"orders": args.orders, "medians": medians}))
    return 0


def _batch_size() -> int:
    from mlops.config import load_config

    return load_config().replication.cdc_batch_max_changes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=3, help="days of OLTP activity in the CDC batch")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", choices=("throughput", "backlog", "kill", "source"), default="throughput")
    parser.add_argument("--kills", type=int, default=30, help="SIGKILLs of the kill case")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--sqlite_cache_kib", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        if args.sqlite_cache_kib:
            from mlops.source import db

            db.SQLITE_CACHE_KIB = args.sqlite_cache_kib
        figures = PHASES[args.phase](args)
        figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(figures))
        return 0
    if args.case == "backlog":
        return backlog_case(args)
    if args.case == "kill":
        return kill_case(args)
    if args.case == "source":
        return source_case(args)

    with tempfile.TemporaryDirectory(prefix="bench-replication-") as tmp:
        base = Path(tmp) / "generated"
        print(f"generating {args.orders:,} orders ...", flush=True)
        gen = run_phase("generate", base, orders=args.orders)
        print(f"  {gen['rows']:,} source rows in {gen['seconds']:.1f}s")
        full, export, cdc, reload, check, compare = [], [], [], [], [], []
        for i in range(args.repeat):
            home = snapshot(base, f"run{i}")
            out = Path(tmp) / f"export{i}"
            out.mkdir()
            export.append(run_phase("pandas_export", home, out=out))
            full.append(run_phase("full_load", home))
            act = run_phase("activity", home, steps=args.steps)
            cdc.append(run_phase("cdc_batch", home))
            reload.append(run_phase("pandas_export", home, out=out))
            check.append(run_phase("validate", home))
            compare.append(run_phase("pandas_compare", home))
            print(
                f"  repeat {i + 1}: full load {full[-1]['seconds']:.1f}s, pandas export {export[-1]['seconds']:.1f}s, "
                f"{act['rows']:,} changes -> CDC {cdc[-1]['seconds']:.2f}s, full reload {reload[-1]['seconds']:.1f}s, "
                f"validate {check[-1]['seconds']:.1f}s, pandas compare {compare[-1]['seconds']:.1f}s",
                flush=True,
            )
            shutil.rmtree(home)
        results = {
            "orders": args.orders,
            "full_load": median_of(full),
            "baseline_pandas_export": median_of(export),
            "cdc_batch": median_of(cdc),
            "baseline_full_reload": median_of(reload),
            "validate": median_of(check),
            "baseline_pandas_compare": median_of(compare),
        }
    fl, ex, cb, rl = (results[k] for k in ("full_load", "baseline_pandas_export", "cdc_batch", "baseline_full_reload"))
    va, pc = results["validate"], results["baseline_pandas_compare"]
    print(f"\nmedians of {args.repeat} runs, {args.orders:,} orders ({fl['rows']:,} source rows):")
    print(f"{'phase':<34}{'seconds':>9}{'rows/s':>12}{'peak MB':>9}")
    for label, r in (
        ("full load (DMS layout)", fl),
        ("baseline: pandas read_sql+parquet", ex),
        (f"CDC batch ({cb['rows']:,} changes)", cb),
        ("baseline: full reload for changes", rl),
        ("validate (every column, by range)", va),
        ("baseline: pandas whole-table compare", pc),
    ):
        print(f"{label:<34}{r['seconds']:>9.2f}{r['rows_per_second']:>12,.0f}{r['peak_rss_mb']:>9.0f}")
    print(
        f"full load vs pandas export: {ex['seconds'] / fl['seconds']:.2f}x faster, "
        f"{ex['peak_rss_mb'] / fl['peak_rss_mb']:.2f}x less peak memory"
    )
    print(f"CDC batch vs full reload to pick up the same changes: {rl['seconds'] / cb['seconds']:.1f}x faster")
    print(
        f"validation vs pandas whole-table compare: {pc['seconds'] / va['seconds']:.2f}x faster, "
        f"{pc['peak_rss_mb'] / va['peak_rss_mb']:.2f}x less peak memory"
    )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
