"""`make demo`: the closed MLOps loop on the local target, with a summary at the end.

From a clean local state it runs the same DAG files the scheduler runs, with ``dag.test()``:

1. generate the source DB, replicate it (full load, OLTP activity, CDC) and check replication;
2. build features, train, register and deploy;
3. send traffic to the endpoint and evaluate a monitoring window (no drift);
4. turn the drift knob on: new source orders with covariate and concept shift arrive, and
   drifted traffic reaches the endpoint;
5. monitoring windows detect the drift and emit ``mlops_drift_detected``; the model-quality window
   joins the scored orders (inference id = order id) with their terminal status in the lake and
   reports mAP against the registered model's (``mlops_model_quality_degraded`` when it dropped);
6. retrain on the fresh data (CDC, features, train);
7. register the new version and deploy it blue/green (canary), only if it passes the gate.

The summary (stages, durations, key figures, model versions, the endpoint URL, the reports) is
printed, written to ``<MLOPS_HOME>/summary.json``, and an HTML index of every report is written
to ``<MLOPS_HOME>/lake/reports/index.html`` (see :mod:`mlops_tools.demo_report`).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.config import load_config, mlops_home
from mlops_tools.dag_runner import DagRunResult, run_dag
from mlops_tools.demo_report import console, plain, report

STATE_TO_RESET: tuple[str, ...] = (
    "lake", "source.db", "source.db-wal", "source.db-shm", "dms", "catalog", "registry", "sagemaker", "serving",
    "logs/demo",
)  # fmt: skip
DRIFT = {"covariate": 0.8, "concept": 0.8}
TRAFFIC_ROWS = 400
_TRAFFIC_SEEDS = itertools.count(1)  # each traffic batch samples different held-out rows


class GateClosed(Exception):
    """A gate stopped the loop on purpose (the challenger lost); later stages skip, the demo passes."""


@dataclass
class StageResult:
    name: str
    status: str  # ok | failed | gated | skipped
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

    @property
    def stopped(self) -> bool:
        return any(s.status in ("failed", "gated") for s in self.stages)

    def run_stage(self, name: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run one stage unless an earlier one failed or closed a gate; record status, duration, figures."""
        if self.stopped:
            reason = "an earlier stage failed" if self.failed else "a gate closed earlier"
            self.stages.append(StageResult(name, "skipped", 0.0, detail=reason))
            return {}
        console.print(f"[bold cyan]==>[/bold cyan] {name}")
        started = time.monotonic()
        try:
            result = StageResult(name, "ok", time.monotonic() - started, action())
            result.seconds = time.monotonic() - started
        except GateClosed as exc:
            result = StageResult(name, "gated", time.monotonic() - started, detail=str(exc))
        except Exception as exc:  # a stage failure is reported in the summary, not re-raised
            result = StageResult(name, "failed", time.monotonic() - started, detail=f"{type(exc).__name__}: {exc}")
        self.stages.append(result)
        colour = {"ok": "green", "gated": "yellow"}.get(result.status, "red")
        console.print(f"    [{colour}]{result.status}[/{colour}] in {result.seconds:.1f}s {result.detail}")
        return result.figures


def reset_local_state(home: Path) -> None:
    """Stop the previous demo's endpoints and remove its lake, source DB, registry and job state."""
    from mlops.serving.runtime import delete_endpoint, list_endpoints

    if (home / "serving").exists():
        for endpoint in list_endpoints():
            delete_endpoint(endpoint["EndpointName"])
    for name in STATE_TO_RESET:
        path = home / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def dag_stage(
    dag_id: str, log_dir: Path, conf: dict[str, Any] | None = None, gate: str | None = None
) -> Callable[[], dict[str, Any]]:
    """A stage that runs one DAG; a failure whose message contains ``gate`` closes the loop instead."""

    def action() -> dict[str, Any]:
        result: DagRunResult = run_dag(dag_id, conf=conf, log_path=log_dir / f"{dag_id}.log")
        if not result.succeeded:
            if gate and gate in (result.error or ""):
                raise GateClosed(result.error)
            failed = [t for t, s in result.task_states.items() if s not in ("success", "skipped")]
            raise RuntimeError(f"{dag_id} {result.state} at {failed}: {result.error or 'see'} ({result.log_path})")
        figures: dict[str, Any] = {"run_id": result.run_id, "events": sorted(result.asset_extras)}
        for extra in result.asset_extras.values():
            figures.update(extra)
        figures["xcoms"] = result.xcoms
        return figures

    return action


def traffic_stage(live: dict[str, Any], drifted: bool) -> Callable[[], dict[str, Any]]:
    """Send held-out rows (shifted when ``drifted``) to the live endpoint, feeding the reporting handler."""

    def action() -> dict[str, Any]:
        from mlops.local_stack import local_lake
        from mlops.monitoring.traffic import curated_source, local_reporter, send_traffic

        if not live.get("invocation_url"):
            raise RuntimeError("no live endpoint: the deploy stage emitted no invocation_url")
        result = send_traffic(
            live["invocation_url"], TRAFFIC_ROWS, drifted=drifted, source=curated_source(local_lake()),
            model_data_url=live.get("model_data_url"), seed=next(_TRAFFIC_SEEDS), reporter=local_reporter(),
        )  # fmt: skip
        if result["failed_requests"]:
            raise RuntimeError(
                f"{result['failed_requests']} of {result['requests']} requests failed: {result['errors']}"
            )
        flushed = wait_for_capture_flush(result["endpoint_name"], datetime.now(UTC))
        figures = {k: result[k] for k in ("rows", "requests", "failed_requests", "drifted", "labels", "variants")}
        return {**figures, "capture_flushed_through": flushed.isoformat()}

    return action


def wait_for_capture_flush(endpoint: str, last_request: datetime, deadline_seconds: float = 60.0) -> datetime:
    """Wait until the endpoint's capture watermark passes ``last_request`` plus the window's flush lag.

    Then every request sent so far is in a capture file, and a monitoring window triggered now (it ends
    ``monitoring.capture_flush_lag_seconds`` before its trigger time) holds all of them.
    """
    from datetime import timedelta

    from mlops.local_stack import local_lake
    from mlops.serving.capture import read_watermark

    target = last_request + timedelta(seconds=load_config().monitoring.flush_lag_seconds("local"))
    root = local_lake().capture()
    give_up = time.monotonic() + deadline_seconds
    while (flushed := read_watermark(root, endpoint)) is None or flushed <= target:
        if time.monotonic() > give_up:
            raise RuntimeError(
                f"the capture writer of {endpoint} has not flushed past {target.isoformat()} within "
                f"{deadline_seconds:g}s (watermark: {flushed}); is the endpoint's router running? see `mlops status`"
            )
        time.sleep(0.2)  # polls the writer's published watermark
    return flushed


def monitor_stage(log_dir: Path, expect_drift: bool) -> Callable[[], dict[str, Any]]:
    """Evaluate the traffic captured since the last window; check drift fired exactly when expected."""
    run = dag_stage("mlops_monitor", log_dir, conf={"force": True})

    def action() -> dict[str, Any]:
        figures = run()
        fired = "mlops_drift_detected" in figures["events"]
        if not fired:
            decision = figures["xcoms"].get("evaluate_policy") or {}
            figures.update({k: v for k, v in decision.items() if not isinstance(v, dict | list)})
        if fired != expect_drift:
            raise RuntimeError(
                f"drift {'was' if fired else 'was not'} detected, expected {'drift' if expect_drift else 'none'}; "
                f"see the drift reports under {mlops_home() / 'lake' / 'monitoring'}"
            )
        return figures

    return action


def quality_stage(log_dir: Path) -> Callable[[], dict[str, Any]]:
    """Join the scored orders with their labels: the window's status, mAP vs threshold, and whether it fired."""
    run = dag_stage("mlops_model_quality", log_dir)

    def action() -> dict[str, Any]:
        figures = run()
        decision = figures["xcoms"].get("evaluate_quality") or {}
        extra = decision.get("extra") or {}
        keys = ("map", "threshold", "baseline_map", "labelled", "predictions", "label_coverage", "report_uri",
                "violations_uri")  # fmt: skip
        figures.update({k: extra[k] for k in keys if k in extra})
        figures.update(status=decision.get("status"), fired=bool(decision.get("fire")), reason=decision.get("reason"))
        return figures

    return action


def run(size: int, seed: int) -> Demo:
    """Run the closed loop stage by stage; returns the demo with its stage results."""
    from mlops.local_stack import source_engine
    from mlops.source.activity import simulate_activity
    from mlops.source.db import reset_schema
    from mlops.source.generator import DriftSpec, generate

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
            engine, orders=size, seed=seed, start_date=config.source.start_date, days=config.source.days,
            progress=_progress_printer("orders"),
        )  # fmt: skip
        return plain(result)

    def source_activity() -> dict[str, Any]:
        engine = source_engine(config)
        return plain(simulate_activity(engine, seed=seed + 1, steps=3, progress=_progress_printer("steps")))

    def drift_arrives() -> dict[str, Any]:
        result = generate(
            source_engine(config), orders=max(size // 2, 500), seed=seed + 2, append=True,
            drift=DriftSpec(**DRIFT), progress=_progress_printer("drifted orders"),
        )  # fmt: skip
        return {**plain(result), "drift": DRIFT}

    demo.run_stage("source: generate", generate_source)
    demo.run_stage("ingest: DMS full load + checks", dag_stage("mlops_ingest", log_dir))
    demo.run_stage("source: OLTP activity", source_activity)
    demo.run_stage("ingest: DMS CDC + checks", dag_stage("mlops_ingest", log_dir))
    demo.run_stage("features: Glue ETL, catalog, EDA, validation", dag_stage("mlops_features", log_dir))
    demo.run_stage("train: SageMaker training, mAP gate, registry", dag_stage("mlops_train", log_dir))
    live = demo.run_stage("deploy: endpoint + smoke test", dag_stage("mlops_deploy", log_dir))
    demo.run_stage("traffic: normal requests", traffic_stage(live, drifted=False))
    demo.run_stage("monitor: window of normal traffic", monitor_stage(log_dir, expect_drift=False))
    demo.run_stage("drift knob: drifted source orders arrive", drift_arrives)
    windows = config.monitoring.consecutive_windows
    for window in range(1, windows + 1):
        demo.run_stage(f"traffic: drifted requests ({window})", traffic_stage(live, drifted=True))
        demo.run_stage(f"monitor: drifted window {window}", monitor_stage(log_dir, expect_drift=window == windows))
    demo.run_stage("model quality: scored orders joined with their labels", quality_stage(log_dir))
    demo.run_stage("retrain: DMS CDC of the fresh data", dag_stage("mlops_ingest", log_dir))
    demo.run_stage("retrain: features on fresh data", dag_stage("mlops_features", log_dir))
    demo.run_stage("retrain: train + gate (challenger vs champion)", dag_stage("mlops_train", log_dir, gate="gate"))
    demo.run_stage(
        "retrain: blue/green canary deploy",
        dag_stage("mlops_deploy", log_dir, conf={"strategy": "canary", "canary_percent": 20, "bake_seconds": 5}),
    )
    return demo


def _progress_printer(unit: str) -> Callable[[int, int], None]:
    last = {"pct": -25}

    def show(done: int, total: int) -> None:
        pct = int(100 * done / total) if total else 100
        if pct >= last["pct"] + 25 or done == total:
            last["pct"] = pct
            console.print(f"    {done:,}/{total:,} {unit} ({pct}%)")

    return show


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=None, help="source orders (default: source.orders)")
    parser.add_argument("--seed", type=int, default=None, help="generator seed (default: source.seed)")
    args = parser.parse_args(argv)
    config = load_config()
    size = config.source.orders if args.size is None else args.size
    if not 100 <= size <= 5_000_000:
        parser.error(f"SIZE={size} is out of range; use 100 to 5000000 orders, e.g. make demo SIZE=20000")
    if args.seed is not None and args.seed < 0:
        parser.error(f"SEED={args.seed} must be a non-negative integer, e.g. make demo SEED=7")
    started_at = datetime.now(UTC)
    demo = run(size, config.source.seed if args.seed is None else args.seed)
    report(demo, started_at)
    return 1 if demo.failed else 0


if __name__ == "__main__":
    sys.exit(main())
