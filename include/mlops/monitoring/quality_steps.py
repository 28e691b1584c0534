"""The model-quality stage's steps as plain functions (worker-side; the mlops_model_quality DAG calls them).

They read and write only small objects: the quality state, the model's evaluated mAP from the
registry, capture key names, and the job's ``quality_summary.json``. The captured predictions and
the orders table are read by the processing job (:mod:`mlops.monitoring.quality_job`).

Lake keys (``<monitoring>`` = ``lake.monitoring_prefix``)::

    <monitoring>/runs/<endpoint>/<job name>/    statistics.json constraints.json constraint_violations.json
                                                quality_summary.json report.html
    <monitoring>/state/<endpoint>/quality.json  quality windows and firings (mlops.monitoring.quality_policy)
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from mlops.config import PipelineConfig
from mlops.lake import Lake
from mlops.monitoring import quality_policy
from mlops.monitoring.policy import UNFINISHED_REASON
from mlops.monitoring.steps import (
    MonitoringError,
    as_time,
    client_of,
    image_uri,
    job_failure_reason,
    job_name,
    role_arn,
)
from mlops.training import lake_io

log = logging.getLogger(__name__)
TRIGGER = quality_policy.MODEL_QUALITY
OUTPUT_FILES = (
    "statistics.json",
    "constraints.json",
    "constraint_violations.json",
    "quality_summary.json",
    "report.html",
)


def policy_of(config: PipelineConfig) -> quality_policy.QualityPolicy:
    quality, new_labels = config.monitoring.quality, config.monitoring.retrain_on_new_labels
    return quality_policy.QualityPolicy(
        quality.window_hours,
        quality.max_label_wait_hours,
        quality.cooldown_hours,
        new_labels.min_new_labelled_orders if new_labels.enabled else None,
    )


def state_uri(lake: Lake, endpoint: str) -> str:
    return lake.monitoring("state", endpoint, "quality.json")


def load_state(lake: Lake, endpoint: str, s3: Any = None) -> dict[str, Any]:
    uri = state_uri(lake, endpoint)
    return json.loads(lake_io.read_bytes(uri, s3)) if lake_io.exists(uri, s3) else quality_policy.empty_state()


def save_state(lake: Lake, endpoint: str, state: dict[str, Any], s3: Any = None) -> str:
    return lake_io.write_bytes(state_uri(lake, endpoint), json.dumps(state, indent=2).encode(), s3)


def plan_window(
    config: PipelineConfig, lake: Lake, *, run_id: str, end: datetime | str, s3: Any = None
) -> dict[str, str]:
    """This run's quality window (see :func:`mlops.monitoring.quality_policy.next_window`) as ISO strings."""
    endpoint = config.serving.endpoint_name
    state, failed = quality_policy.fail_unfinished(load_state(lake, endpoint, s3), run_id, UNFINISHED_REASON)
    if failed:
        save_state(lake, endpoint, state, s3)
        for record in failed:
            log.error("quality window %s .. %s of run %s recorded as failed: %s", record["window_start"],
                      record["window_end"], record["run_id"], record["reason"])  # fmt: skip
    start, stop = quality_policy.next_window(state, run_id=run_id, end=as_time(end), policy=policy_of(config))
    return {"window_start": start.isoformat(), "window_end": stop.isoformat(), "endpoint_name": endpoint}


def record_window(
    config: PipelineConfig,
    lake: Lake,
    *,
    run_id: str,
    window: dict[str, str],
    model: dict[str, Any],
    name: str,
    status: str = quality_policy.STARTED,
    reason: str = "",
    s3: Any = None,
) -> dict[str, Any]:
    """Record this run's window as ``started`` (before its job is requested) or ``failed`` (with ``reason``)."""
    record = {
        "run_id": run_id,
        "window_start": window["window_start"],
        "window_end": window["window_end"],
        "model_version": str(model.get("version")),
        "status": status,
        "job_name": name,
        **({"reason": reason[:1024]} if reason else {}),
    }
    endpoint = config.serving.endpoint_name
    save_state(lake, endpoint, quality_policy.mark(load_state(lake, endpoint, s3), record), s3)
    return record


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
    """Record this run's window as ``failed``, with the quality job's failure reason; returns the record."""
    name = job_name(config, run_id, run_after, step="quality")
    reason = job_failure_reason(lake, name, sagemaker, kind="quality")
    record = record_window(
        config, lake, run_id=run_id, window=window, model=model, name=name, status=quality_policy.FAILED,
        reason=reason, s3=s3,
    )  # fmt: skip
    log.error("quality window %s .. %s recorded as failed: %s", record["window_start"], record["window_end"], reason)
    return record


def registered_package(model: dict[str, Any], sagemaker: Any = None) -> dict[str, Any] | None:
    """The model version's package in the registry (by model data, else version), or None.

    The registry is SageMaker's when the model lives on S3 (``sagemaker``: a client or a factory of
    one), else the local one.
    """
    from mlops import registry

    client = client_of(sagemaker, "sagemaker") if lake_io.is_s3(model["model_data_url"]) else None
    group = model.get("model_package_group") or "manual"
    for package in registry.list_packages(group, client):
        if package["model_data_url"] == model["model_data_url"] or str(package["version"]) == str(model["version"]):
            return package
    return None


def training_cutoff(package: dict[str, Any] | None) -> str:
    """The package's training data cut-off (``training_data_cutoff`` metadata, from the features ETL's
    ``orders_through``); "" when it was registered without one."""
    return str(((package or {}).get("metadata") or {}).get("training_data_cutoff") or "")


def evaluated_map(model: dict[str, Any], sagemaker: Any = None, package: dict[str, Any] | None = None) -> float:
    """The model version's mAP as evaluated at registration (the registry's ``map`` metadata).

    ``package``: the version's package when already looked up (:func:`registered_package`). Raises
    MonitoringError with the fix when the version is not registered.
    """
    package = package or registered_package(model, sagemaker)
    if package is not None and package["map"] is not None:
        return float(package["map"])
    group = model.get("model_package_group") or "manual"
    raise MonitoringError(
        f"model v{model.get('version')} ({model['model_data_url']}) has no evaluated mAP in model package group "
        f"{group}: register it with mlops_train, or trigger mlops_model_quality with the evaluated_map param"
    )


def quality_request(
    config: PipelineConfig,
    lake: Lake,
    *,
    run_id: str,
    run_after: datetime | str,
    model: dict[str, Any],
    window: dict[str, str],
    folders: list[str],
    baseline_map: float,
    code_uri: str,
    image: str | None = None,
    labels_after: str = "",
) -> dict[str, Any]:
    """The CreateProcessingJob request of this run's model-quality job (``labels_after``: the model's
    training data cut-off, when the new-labelled-data trigger is on)."""
    from mlops.aws.monitoring_requests import quality_job_request

    name = job_name(config, run_id, run_after, step="quality")
    return quality_job_request(
        config,
        name=name,
        image_uri=image or image_uri(config),
        role_arn=role_arn(config),
        code_uri=code_uri,
        capture_root=lake.capture(),
        capture_folders=folders,
        ground_truth_uri=lake.raw_table(config.source.schema_name, "orders"),
        output_uri=lake.monitoring("runs", config.serving.endpoint_name, name),
        window_start=window["window_start"],
        window_end=window["window_end"],
        model_version=model["version"],
        evaluated_map=baseline_map,
        labels_after=labels_after if config.monitoring.retrain_on_new_labels.enabled else "",
        tags={"mlops:run_id": run_id[:256], "mlops:stage": "monitoring", "mlops:model_version": str(model["version"])},
    )


def job_outputs(processing: dict[str, Any]) -> dict[str, str]:
    """URIs of a finished quality job's outputs."""
    output = processing["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    return {name.split(".")[0] + "_uri": lake_io.join(output, name) for name in OUTPUT_FILES}


def evaluate(
    config: PipelineConfig, lake: Lake, *, run_id: str, processing: dict[str, Any], s3: Any = None
) -> dict[str, Any]:
    """Record the window in the quality state and decide whether it triggers retraining.

    Returns the decision with the event's ``extra`` (the trigger, its evidence and the files).
    """
    outputs = job_outputs(processing)
    summary = json.loads(lake_io.read_bytes(outputs["quality_summary_uri"], s3))
    record = window_record(summary, run_id, outputs)
    endpoint = config.serving.endpoint_name
    state, triggers, reason = quality_policy.apply(load_state(lake, endpoint, s3), record, policy_of(config))
    save_state(lake, endpoint, state, s3)
    extra = {
        "trigger": triggers[0] if triggers else TRIGGER,
        "triggers": triggers,
        "reason": reason,
        "endpoint_name": endpoint,
        "per_class_ap": summary.get("per_class_ap", {}),
        **{k: v for k, v in record.items() if k not in ("run_id", "status", "violated")},
        "new_labelled_threshold": policy_of(config).min_new_labelled_orders,
    }
    return {"fire": bool(triggers), "reason": reason, "status": summary["status"], "extra": extra, **outputs}


def window_record(summary: dict[str, Any], run_id: str, outputs: dict[str, str]) -> dict[str, Any]:
    """The quality state's record of a window, from the job's ``quality_summary.json``."""
    keys = ("window_start", "window_end", "status", "labelled", "predictions", "label_coverage", "map")
    new_labels = summary.get("new_labelled_orders") or {}
    return {
        "run_id": run_id,
        **{k: summary[k] for k in keys},
        "model_version": str(summary["model_version"]),
        "threshold": summary["threshold"],
        "baseline_map": summary["baseline_map"],
        "violated": bool(summary["violated"]),
        "new_labelled": new_labels.get("count"),
        "labels_after": new_labels.get("after"),
        "violations_uri": outputs["constraint_violations_uri"],
        "report_uri": outputs["report_uri"],
    }
