"""`make demo`: the pipeline end to end on the local target, with a summary at the end.

Starts from a clean local state, generates the source DB, then runs each pipeline DAG with
``dag.test()`` in chain order (the same DAG files the scheduler runs), with OLTP activity
between replication runs so CDC has real inserts, updates and deletes to carry. Prints a
summary table and writes the same as JSON to ``<MLOPS_HOME>/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mlops.config import load_config, mlops_home
from mlops_airflow.dag_runner import DAGS_FOLDER, DagRunResult, run_dag

console = Console()
# Pipeline DAGs in chain order after ingest; each joins the demo once its file exists.
DOWNSTREAM_DAGS: tuple[str, ...] = ("mlops_features", "mlops_train", "mlops_deploy")
STATE_TO_RESET: tuple[str, ...] = ("lake", "source.db", "source.db-wal", "source.db-shm", "dms", "logs/demo")


@dataclass
class StageResult:
    name: str
    status: str  # ok | failed | skipped
    seconds: float
    figures: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


@dataclass
class Demo:
    size: int
    seed: int
    stages: list[StageResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(s.status == "failed" for s in self.stages)

    def run_stage(self, name: str, action: Callable[[], dict[str, Any]]) -> None:
        """Run one stage unless an earlier one failed; record status, duration and figures."""
        if self.failed:
            self.stages.append(StageResult(name, "skipped", 0.0, detail="an earlier stage failed"))
            return
        console.print(f"[bold cyan]==>[/bold cyan] {name}")
        started = time.monotonic()
        try:
            figures = action()
            result = StageResult(name, "ok", time.monotonic() - started, figures)
        except Exception as exc:
            result = StageResult(name, "failed", time.monotonic() - started, detail=f"{type(exc).__name__}: {exc}")
        self.stages.append(result)
        colour = "green" if result.status == "ok" else "red"
        console.print(f"    [{colour}]{result.status}[/{colour}] in {result.seconds:.1f}s {result.detail}")


def reset_local_state(home: Path) -> None:
    """Remove the demo's previous lake, source DB and replication state (never the venv)."""
    for name in STATE_TO_RESET:
        path = home / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _dag_stage(dag_id: str, log_dir: Path) -> Callable[[], dict[str, Any]]:
    def action() -> dict[str, Any]:
        result: DagRunResult = run_dag(dag_id, log_path=log_dir / f"{dag_id}.log")
        if not result.succeeded:
            failed = [t for t, s in result.task_states.items() if s not in ("success", "skipped")]
            raise RuntimeError(f"{dag_id} {result.state} at {failed}: {result.error or 'see'} ({result.log_path})")
        figures: dict[str, Any] = {"run_id": result.run_id}
        for extra in result.asset_extras.values():
            figures.update(extra)
        return figures

    return action


def run(size: int, seed: int) -> Demo:
    """Run every stage in order; returns the demo with its stage results."""
    from mlops.local_stack import source_engine
    from mlops.source.activity import simulate_activity
    from mlops.source.db import reset_schema
    from mlops.source.generator import generate

    home = mlops_home()
    config = load_config()
    log_dir = home / "logs" / "demo"
    reset_local_state(home)
    console.print(f"local state: {home} (reset); task logs: {log_dir}")
    demo = Demo(size=size, seed=seed)

    def generate_source() -> dict[str, Any]:
        engine = source_engine(config)
        reset_schema(engine)
        result = generate(
            engine,
            orders=size,
            seed=seed,
            start_date=config.source.start_date,
            days=config.source.days,
            progress=_progress_printer("orders"),
        )
        return _plain(result)

    def source_activity() -> dict[str, Any]:
        return _plain(
            simulate_activity(source_engine(config), seed=seed + 1, steps=3, progress=_progress_printer("steps"))
        )

    demo.run_stage("source: generate", generate_source)
    demo.run_stage("ingest: DMS full load + checks", _dag_stage("mlops_ingest", log_dir))
    demo.run_stage("source: OLTP activity", source_activity)
    demo.run_stage("ingest: DMS CDC + checks", _dag_stage("mlops_ingest", log_dir))
    for dag_id in DOWNSTREAM_DAGS:
        if (DAGS_FOLDER / f"{dag_id}.py").exists():
            demo.run_stage(dag_id.removeprefix("mlops_"), _dag_stage(dag_id, log_dir))
    return demo


def _progress_printer(unit: str) -> Callable[[int, int], None]:
    last = {"pct": -25}

    def report(done: int, total: int) -> None:
        pct = int(100 * done / total) if total else 100
        if pct >= last["pct"] + 25 or done == total:
            last["pct"] = pct
            console.print(f"    {done:,}/{total:,} {unit} ({pct}%)")

    return report


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _figures_text(figures: dict[str, Any], limit: int = 6) -> str:
    shown = [(k, v) for k, v in figures.items() if k != "run_id" and not isinstance(v, dict | list)][:limit]
    nested = [
        (k, v) for k, v in figures.items() if isinstance(v, dict) and all(not isinstance(x, dict) for x in v.values())
    ]
    parts = [f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in shown]
    parts += [f"{k}: " + ", ".join(f"{kk}={vv}" for kk, vv in v.items()) for k, v in nested[:2]]
    return "\n".join(parts)


def report(demo: Demo, started_at: datetime) -> Path:
    """Print the summary table and write it as JSON under the state folder."""
    table = Table("stage", "status", "seconds", "key figures", title=f"make demo SIZE={demo.size}")
    for stage in demo.stages:
        colour = {"ok": "green", "failed": "red"}.get(stage.status, "yellow")
        table.add_row(
            stage.name,
            f"[{colour}]{stage.status}[/{colour}]",
            f"{stage.seconds:.1f}",
            _figures_text(stage.figures) or stage.detail,
        )
    console.print(table)
    summary = {
        "target": "local",
        "size": demo.size,
        "seed": demo.seed,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "ok": not demo.failed,
        "stages": [_plain(stage) for stage in demo.stages],
    }
    path = mlops_home() / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=str))
    tmp.replace(path)
    console.print(f"summary JSON: {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=None, help="source orders (default: source.orders)")
    parser.add_argument("--seed", type=int, default=None, help="generator seed (default: source.seed)")
    args = parser.parse_args(argv)
    config = load_config()
    size = args.size or config.source.orders
    if not 100 <= size <= 5_000_000:
        parser.error(f"SIZE={size} is out of range; use 100 to 5000000 orders")
    started_at = datetime.now(UTC)
    demo = run(size, config.source.seed if args.seed is None else args.seed)
    report(demo, started_at)
    return 1 if demo.failed else 0


if __name__ == "__main__":
    sys.exit(main())
