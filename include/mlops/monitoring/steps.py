"""The monitoring stage's steps as plain functions: the model and window of a run, the code bundle,
the drift job's request, and the policy decision after it (the baseline's steps are in
:mod:`mlops.monitoring.baseline_steps`). The mlops_monitor DAG's tasks call these; tests call them
directly.

Worker-side: these run in the Airflow task process, so they read and write only small objects
(pointers, JSON summaries, the policy state) and list keys; S3 goes through the client passed in
(the provider hook's on aws; a client or a zero-argument factory of one). Whatever reads training
data or capture content is a processing job's code (``baseline_job``, ``drift_job``).

Lake keys (``<monitoring>`` = ``lake.monitoring_prefix``)::

    <monitoring>/baselines/<group>/v<version>/  statistics.json constraints.json feature_spec.json baseline_info.json
    <staging>/monitoring/baselines/<group>/v<version>/<job name>/   the baseline job's output, before the swap
    <monitoring>/code/<sha16>/                  the jobs' code bundle (baseline_job.py, drift_job.py, quality_job.py)
    <monitoring>/runs/<endpoint>/<job name>/    statistics.json, constraint_violations.json,
                                                drift_summary.json, report.html
    <monitoring>/runs/<endpoint>/<job name>-reporting/aggregates.json
    <monitoring>/state/<endpoint>/policy.json   windows and drift episodes (see mlops.monitoring.policy)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.config import PipelineConfig
from mlops.lake import Lake, local_path
from mlops.monitoring import policy as drift_policy
from mlops.monitoring.capture_keys import keys_in_window
from mlops.training import lake_io

log = logging.getLogger(__name__)
MONITORING_DIR = Path(__file__).resolve().parent
ENTRY_POINTS = ("baseline_job.py", "drift_job.py", "quality_job.py")
BUNDLED_MODULES = (
    "__init__.py",
    "job_args.py",
    "statistics.py",
    "feature_spec.py",
    "baseline.py",
    "baseline_job.py",
    "capture_lines.py",
    "capture_reader.py",
    "drift.py",
    "violations.py",
    "report.py",
    "drift_job.py",
    "ground_truth.py",
    "predictions.py",
    "quality.py",
    "quality_job.py",
)
TRAINING_MODULES = ("__init__.py", "gate.py", "metrics.py")  # the evaluation's metric code (numpy only)


class MonitoringError(RuntimeError):
    """The monitor cannot run; the message says what to do."""


# ---- the model -----------------------------------------------------------------------------------


def monitored_model(events: list[dict[str, Any]], params: dict[str, Any], endpoint_name: str) -> dict[str, Any]:
    """The model behind the endpoint: Params (model_version + model_data_url) win, else the newest
    endpoint-live event for this endpoint. Raises MonitoringError when neither says."""
    if params.get("model_data_url"):
        return {
            "version": str(params.get("model_version") or "manual"),
            "model_data_url": params["model_data_url"],
            "model_package_group": params.get("model_package_group") or "manual",
        }
    for extra in reversed(events):
        if extra.get("model_data_url") and extra.get("endpoint_name", endpoint_name) == endpoint_name:
            return {
                "version": str(extra.get("model_version")),
                "model_data_url": extra["model_data_url"],
                "model_package_group": extra.get("model_package_group") or "manual",
                **{k: extra[k] for k in ("training_data_uri", "curated_uri") if extra.get(k)},
            }
    raise MonitoringError(
        f"no model is known to serve {endpoint_name}: deploy one with mlops_deploy (it emits "
        "mlops_endpoint_live), or trigger mlops_monitor with the model_version and model_data_url params"
    )


# ---- code, window, capture -------------------------------------------------------------------------


def client_of(given: Any, service: str) -> Any:
    """``given`` (a boto3 client, or a zero-argument factory of one), else boto3's default ``service`` client."""
    if given is None:
        import boto3

        return boto3.client(service)
    return given() if callable(given) and not hasattr(given, "meta") else given


def code_files() -> dict[str, bytes]:
    """The jobs' bundle: the entry points at the root and the modules they import, the training
    evaluation's metrics included (pandas, numpy and pyarrow come with the processing image)."""
    files = {name: (MONITORING_DIR / name).read_bytes() for name in ENTRY_POINTS}
    files["mlops/__init__.py"] = (MONITORING_DIR.parent / "__init__.py").read_bytes()
    files.update({f"mlops/monitoring/{name}": (MONITORING_DIR / name).read_bytes() for name in BUNDLED_MODULES})
    training = MONITORING_DIR.parent / "training"
    files.update({f"mlops/training/{name}": (training / name).read_bytes() for name in TRAINING_MODULES})
    return files


def publish_code(lake: Lake, s3: Any = None) -> str:
    """Upload the bundle under its content hash (once); return its prefix URI (with a trailing '/')."""
    files = code_files()
    digest = hashlib.sha256(b"".join(name.encode() + data for name, data in sorted(files.items()))).hexdigest()
    prefix = lake.monitoring("code", digest[:16])
    if not all(lake_io.exists(lake_io.join(prefix, name), s3) for name in ENTRY_POINTS):
        lake_io.upload_tree(files, prefix, s3)
    return prefix + "/"


def state_uri(lake: Lake, endpoint: str) -> str:
    return lake.monitoring("state", endpoint, "policy.json")


def load_state(lake: Lake, endpoint: str, s3: Any = None) -> dict[str, Any]:
    uri = state_uri(lake, endpoint)
    return json.loads(lake_io.read_bytes(uri, s3)) if lake_io.exists(uri, s3) else drift_policy.empty_state()


def save_state(lake: Lake, endpoint: str, state: dict[str, Any], s3: Any = None) -> str:
    return lake_io.write_bytes(state_uri(lake, endpoint), json.dumps(state, indent=2).encode(), s3)


def as_time(value: datetime | str) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def plan_window(
    lake: Lake, endpoint: str, *, run_id: str, end: datetime | str, window_minutes: int, s3: Any = None
) -> dict[str, str]:
    """This run's window (see :func:`mlops.monitoring.policy.next_window`) as ISO strings. Windows that
    earlier runs left ``started`` (killed before recording a result) are recorded as failed first."""
    state, failed = drift_policy.fail_unfinished(load_state(lake, endpoint, s3), run_id)
    if failed:
        save_state(lake, endpoint, state, s3)
        for record in failed:
            log.error("window %s .. %s of run %s recorded as failed: %s", record["window_start"],
                      record["window_end"], record["run_id"], record["reason"])  # fmt: skip
    start, stop = drift_policy.next_window(state, run_id=run_id, end=as_time(end), window_minutes=window_minutes)
    return {"window_start": start.isoformat(), "window_end": stop.isoformat()}


def record_started_window(
    lake: Lake, endpoint: str, *, run_id: str, window: dict[str, str], model: dict[str, Any], name: str, s3: Any = None
) -> None:
    """Record this run's window as ``started`` before its drift job is requested, so a run killed before it
    records a result (e.g. by its dagrun_timeout) leaves a trace the next run turns into a failed window."""
    record = {
        "run_id": run_id,
        "window_start": window["window_start"],
        "window_end": window["window_end"],
        "model_version": str(model.get("version")),
        "job_name": name,
    }
    save_state(lake, endpoint, drift_policy.mark_started(load_state(lake, endpoint, s3), record), s3)


def list_capture_keys(capture_uri: str, s3: Any = None) -> list[str]:
    """Keys (relative to ``capture_uri``) of every capture file under it; names only, no content read."""
    if lake_io.is_s3(capture_uri):
        bucket, prefix = capture_uri[5:].split("/", 1)
        prefix = prefix.rstrip("/") + "/"
        client = client_of(s3, "s3")
        keys = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [item["Key"][len(prefix) :] for item in page.get("Contents", []) if item["Key"].endswith(".jsonl")]
        return sorted(keys)
    root = local_path(capture_uri)
    keys = []
    for folder, _dirs, names in os.walk(root):
        rel = Path(folder).relative_to(root).as_posix()
        keys += [f"{rel}/{n}" if rel != "." else n for n in names if n.endswith(".jsonl") and not n.startswith(".")]
    return sorted(keys)


def window_folders(keys: list[str], start: datetime | str, end: datetime | str) -> list[str]:
    """The ``<variant>/yyyy/mm/dd/hh`` folders holding files of the window."""
    return sorted({k.rsplit("/", 1)[0] for k in keys_in_window(keys, as_time(start), as_time(end))})


# ---- the drift job and the decision ----------------------------------------------------------------


def image_uri(config: PipelineConfig) -> str:
    """The processing image: configured, else the sklearn framework image (the resolved table)."""
    from mlops.aws.framework_images import framework_image_uri

    return config.monitoring.image_uri or framework_image_uri(
        config.monitoring.framework_version, config.aws.region, "training"
    )


def job_name(config: PipelineConfig, run_id: str, run_after: datetime | str, step: str = "drift") -> str:
    """The run's job name for ``step`` (``drift`` or ``baseline``): the same for every try of one run."""
    from mlops.aws.sagemaker_requests import job_name as make_name

    return make_name(config.training.job_name_prefix, step, run_id, run_after)


def role_arn(config: PipelineConfig) -> str:
    """The SageMaker execution role (``training.role_arn``); unset, the local stand-in's placeholder,
    which the aws job operator refuses with the fix."""
    if config.training.role_arn:
        return config.training.role_arn
    from mlops.training.steps import LOCAL_ROLE_ARN

    return LOCAL_ROLE_ARN


def publish_aggregates(
    config: PipelineConfig, lake: Lake, name: str, window: dict[str, str], s3: Any = None, dynamodb: Any = None
) -> str | None:
    """Write the window's real-time per-minute aggregates next to the run's outputs; None when there are none.

    A small read: at most one row per minute of the window and variant, from the store
    ``config.reporting`` names (DynamoDB Query through ``dynamodb``, a client or a factory of one;
    else the local SQLite table). The capture itself is read by the drift job.
    """
    from mlops.reporting.store import open_store, read_window

    try:
        endpoint = config.serving.endpoint_name
        pks = [f"{endpoint}#{v.name}" for v in config.serving.variants] + [f"{endpoint}#events"]
        store = open_store(config.reporting, dynamodb)
        rows = read_window(store, pks, as_time(window["window_start"]), as_time(window["window_end"]))
    except Exception as exc:  # reporting is informative; the drift job runs without it
        log.warning("real-time aggregates unavailable: %s", exc)
        return None
    if not rows:
        return None
    prefix = lake.monitoring("runs", config.serving.endpoint_name, f"{name}-reporting")
    lake_io.write_bytes(lake_io.join(prefix, "aggregates.json"), json.dumps(rows, indent=2).encode(), s3)
    return prefix


def drift_request(
    config: PipelineConfig,
    lake: Lake,
    *,
    run_id: str,
    run_after: datetime | str,
    model: dict[str, Any],
    baseline: dict[str, Any],
    window: dict[str, str],
    folders: list[str],
    image: str,
    code_uri: str,
    aggregates_uri: str | None = None,
) -> dict[str, Any]:
    """The CreateProcessingJob request of this run's drift job."""
    from mlops.aws.monitoring_requests import drift_job_request

    name = job_name(config, run_id, run_after)
    return drift_job_request(
        config,
        name=name,
        image_uri=image,
        role_arn=role_arn(config),
        code_uri=code_uri,
        baseline_uri=baseline["baseline_uri"],
        capture_root=lake.capture(),
        capture_folders=folders,
        output_uri=lake.monitoring("runs", config.serving.endpoint_name, name),
        window_start=window["window_start"],
        window_end=window["window_end"],
        model_version=model["version"],
        aggregates_uri=aggregates_uri,
        tags={"mlops:run_id": run_id[:256], "mlops:stage": "monitoring", "mlops:model_version": str(model["version"])},
    )


def job_outputs(processing: dict[str, Any]) -> dict[str, str]:
    """URIs of a finished drift job's outputs."""
    output = processing["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    return {
        name.split(".")[0] + "_uri": lake_io.join(output, name)
        for name in ("statistics.json", "constraint_violations.json", "drift_summary.json", "report.html")
    }


def evaluate(
    config: PipelineConfig, lake: Lake, *, run_id: str, processing: dict[str, Any], s3: Any = None
) -> dict[str, Any]:
    """Record the window in the policy state and decide whether drift triggers retraining.

    Returns the decision with the DRIFT_DETECTED event's ``extra`` (used only when ``fire``).
    """
    outputs = job_outputs(processing)
    summary = json.loads(lake_io.read_bytes(outputs["drift_summary_uri"], s3))
    settings = config.monitoring
    rules = drift_policy.Policy(settings.drift_share_threshold, settings.consecutive_windows, settings.cooldown_hours)
    record = {
        "run_id": run_id,
        "window_start": summary["window_start"],
        "window_end": summary["window_end"],
        "model_version": str(summary["model_version"]),
        "status": drift_policy.window_status(summary, rules),
        "drift_share": float(summary["drift_share"]),
        "rows": summary["rows"],
        "drifted_features": summary["drifted_features"],
        "flooded": summary.get("flooded"),
        "violations_uri": outputs["constraint_violations_uri"],
        "report_uri": outputs["report_uri"],
    }
    endpoint = config.serving.endpoint_name
    state, decision = drift_policy.apply(load_state(lake, endpoint, s3), record, rules)
    save_state(lake, endpoint, state, s3)
    quarantined = summary.get("quarantined") or {}
    if quarantined.get("total"):
        log.warning(
            "%d capture line(s) of the window could not be read and were quarantined (%s): %s",
            quarantined["total"],
            ", ".join(f"{n} {reason}" for reason, n in quarantined.get("by_reason", {}).items()),
            lake_io.join(outputs["drift_summary_uri"].rsplit("/", 1)[0], quarantined.get("file") or ""),
        )
    extra = {
        "trigger": "input_drift",
        "drift_share": record["drift_share"],
        "drifted_features": record["drifted_features"],
        "windows": decision.windows,
        "model_version": record["model_version"],
        "violations_uri": record["violations_uri"],
        "report_uri": record["report_uri"],
        "endpoint_name": endpoint,
        "episode": decision.episode,
        "window_start": record["window_start"],
        "window_end": record["window_end"],
        "rows": record["rows"],
    }
    return {
        "fire": decision.fire,
        "reason": decision.reason,
        "status": record["status"],
        "extra": extra,
        "violation_counts": summary.get("violation_counts", {}),
        "quarantined_lines": int(quarantined.get("total", 0)),
        **outputs,
    }


def job_failure_reason(lake: Lake, name: str, sagemaker: Any = None, kind: str = "drift") -> str:
    """Why processing job ``name`` (the ``kind`` job: drift, quality) failed: DescribeProcessingJob's
    FailureReason (local: the job's describe.json)."""
    if not lake_io.is_s3(lake.monitoring()):
        from mlops.sagemaker_local.layout import jobs_root

        path = jobs_root() / "processing" / name / "describe.json"
        described = json.loads(path.read_text()) if path.exists() else {}
    else:
        try:
            described = client_of(sagemaker, "sagemaker").describe_processing_job(ProcessingJobName=name)
        except Exception as exc:  # never started (an upstream task failed), or no permission
            return f"{kind} job {name} cannot be described ({type(exc).__name__}: {exc})"
    if not described:
        return f"{kind} job {name} did not run (an upstream task failed)"
    reason = described.get("FailureReason") or "no reason given"
    return f"{kind} job {name} {described.get('ProcessingJobStatus')}: {reason}"


def record_failed_window(
    config: PipelineConfig,
    lake: Lake,
    *,
    run_id: str,
    run_after: datetime | str,
    window: dict[str, str],
    model: dict[str, Any],
    s3: Any = None,
    sagemaker: Any = None,
) -> dict[str, Any]:
    """Record this run's window as ``failed`` in the policy state, with the drift job's failure reason.

    The window is then accounted for (the next run's window starts after it, and it neither extends nor
    breaks a drift streak) instead of being retried forever or silently skipped. Returns the record.
    """
    name = job_name(config, run_id, run_after)
    record = {
        "run_id": run_id,
        "window_start": window["window_start"],
        "window_end": window["window_end"],
        "model_version": str(model.get("version")),
        "status": drift_policy.FAILED,
        "drift_share": 0.0,
        "rows": 0,
        "drifted_features": [],
        "reason": job_failure_reason(lake, name, sagemaker)[:1024],
        "job_name": name,
    }
    settings = config.monitoring
    rules = drift_policy.Policy(settings.drift_share_threshold, settings.consecutive_windows, settings.cooldown_hours)
    endpoint = config.serving.endpoint_name
    state, _decision = drift_policy.apply(load_state(lake, endpoint, s3), record, rules)
    save_state(lake, endpoint, state, s3)
    log.error("window %s .. %s recorded as failed: %s", record["window_start"], record["window_end"], record["reason"])
    return record
