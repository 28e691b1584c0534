"""The A/B test's steps as plain functions (DAG mlops_ab_test): plan the analysis job, then decide.

Worker-side: these run in the Airflow task process, so they list capture keys, read the curated
pointer and the job's small ``ab_summary.json``, and write the report; the captured traffic and the
labels are read by the analysis job (:mod:`mlops.monitoring.ab_job`). S3 goes through the client passed
in (the provider hook's on aws; a client or a zero-argument factory of one).

Lake keys::

    <monitoring>/code/ab-<sha16>/                    the job's code bundle (ab_job.py + the modules it imports)
    <monitoring>/ab-tests/<endpoint>/<job name>/     ab_summary.json (the job's output)
    <reports>/ab-tests/<endpoint>/<job name>/        ab_test_report.json (summary + decision; the UI shows it)
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mlops.config import PipelineConfig
from mlops.lake import Lake
from mlops.monitoring import steps
from mlops.serving.ab_decision import PROMOTE, comparison_table, decide
from mlops.training import lake_io

log = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parents[1]
BUNDLE = {
    "ab_job.py": "monitoring/ab_job.py",
    "mlops/__init__.py": "__init__.py",
    "mlops/monitoring/__init__.py": "monitoring/__init__.py",
    "mlops/monitoring/ab_stats.py": "monitoring/ab_stats.py",
    "mlops/monitoring/job_args.py": "monitoring/job_args.py",
    "mlops/training/__init__.py": "training/__init__.py",
    "mlops/training/metrics.py": "training/metrics.py",
    "mlops/training/gate.py": "training/gate.py",
}
REPORT_NAME = "ab_test_report.json"


def code_files() -> dict[str, bytes]:
    """The job's bundle: the entry point at the root and the modules it imports (numpy and pyarrow come with
    the processing image)."""
    return {name: (PACKAGE / source).read_bytes() for name, source in BUNDLE.items()}


def publish_code(lake: Lake, s3: Any = None) -> str:
    """Upload the bundle under its content hash (once); return its prefix URI (with a trailing '/')."""
    files = code_files()
    digest = hashlib.sha256(b"".join(name.encode() + data for name, data in sorted(files.items()))).hexdigest()
    prefix = lake.monitoring("code", f"ab-{digest[:16]}")
    if not lake_io.exists(lake_io.join(prefix, "ab_job.py"), s3):
        lake_io.upload_tree(files, prefix, s3)
    return prefix + "/"


def labels_uri(lake: Lake, s3: Any = None) -> str | None:
    """The curated snapshot holding matured labels (terminal orders): the validated one, else the current one."""
    curated = lake.curated("features")
    for pointer in ("_validated.json", "_current.json"):
        uri = lake_io.join(curated, pointer)
        if lake_io.exists(uri, s3):
            return json.loads(lake_io.read_bytes(uri, s3))["uri"]
    return None


def plan_request(
    config: PipelineConfig, lake: Lake, *, run_id: str, run_after: datetime | str, image: str, s3: Any = None
) -> dict[str, Any]:
    """The CreateProcessingJob of this run's analysis: the last ``ab_test.window_hours`` of capture."""
    from mlops.aws.ab_test_requests import ab_job_request

    endpoint = config.serving.endpoint_name
    end = steps.as_time(run_after)
    start = end - timedelta(hours=config.serving.ab_test.window_hours)
    keys = steps.list_capture_keys(lake.capture(endpoint), s3)
    name = steps.job_name(config, run_id, run_after, step="ab")
    return ab_job_request(
        config,
        name=name,
        image_uri=image,
        role_arn=steps.role_arn(config),
        code_uri=publish_code(lake, s3),
        capture_root=lake.capture(),
        capture_folders=steps.window_folders(keys, start, end),
        labels_uri=labels_uri(lake, s3),
        output_uri=lake.monitoring("ab-tests", endpoint, name),
        window_start=start.isoformat(),
        window_end=end.isoformat(),
        tags={"mlops:run_id": run_id[:256], "mlops:stage": "ab-test"},
    )


def variant_latency(config: PipelineConfig, summary: dict[str, Any], dynamodb: Any = None) -> dict[str, float]:
    """Mean latency (ms) per variant over the summary's window, from the real-time reporting aggregates (the
    clients' observed latency; data capture has none); empty when the store has none or cannot be read."""
    from mlops.reporting.store import open_store, read_window

    endpoint = config.serving.endpoint_name
    try:
        store = open_store(config.reporting, dynamodb)
        start, end = steps.as_time(summary["window_start"]), steps.as_time(summary["window_end"])
        latency = {}
        for name in summary["variants"]:
            rows = read_window(store, [f"{endpoint}#{name}"], start, end)
            count = sum(float(r.get("latency_count", 0)) for r in rows)
            if count:
                latency[name] = round(sum(float(r.get("latency_ms_sum", 0)) for r in rows) / count, 3)
        return latency
    except Exception as exc:  # latency is informative; the decision does not depend on it
        log.warning("per-variant latency unavailable: %s", exc)
        return {}


def decide_and_report(
    config: PipelineConfig, lake: Lake, *, processing: dict[str, Any], s3: Any = None, dynamodb: Any = None
) -> dict[str, Any]:
    """Read the job's summary, add per-variant latency, apply ``serving.ab_test`` and write the report; returns
    the decision with ``report_uri`` and the ``comparison`` table (both shown by the UI plugin)."""
    output = processing["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    summary = json.loads(lake_io.read_bytes(lake_io.join(output, "ab_summary.json"), s3))
    for name, mean_ms in variant_latency(config, summary, dynamodb).items():
        summary["variants"][name]["latency_ms"] = mean_ms
    decision = decide(summary, config.serving.ab_test)
    loser = summary["champion"] if decision["action"] == PROMOTE else summary["challenger"]
    decision = {**decision, "loser": loser, "endpoint_name": config.serving.endpoint_name}
    report = {"decision": decision, "rule": config.serving.ab_test.model_dump(), "summary": summary}
    report_uri = lake.reports("ab-tests", config.serving.endpoint_name, processing["ProcessingJobName"], REPORT_NAME)
    lake_io.write_bytes(report_uri, json.dumps(report, indent=2).encode(), s3)
    return {**decision, "report_uri": report_uri, "comparison": comparison_table(summary, decision)}
