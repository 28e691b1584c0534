"""The baseline steps of mlops_monitor: a model version's baseline is computed once, by a
processing job (our "suggest baseline" job, ``baseline_job.py``), then reused.

1. :func:`plan_baseline`: when the version's baseline is already in place (its marker
   ``baseline_info.json`` exists) there is nothing to run; else resolve the training data, check
   that the inputs exist, publish the code bundle and build the CreateProcessingJob request,
   whose output goes to a staging prefix.
2. The job runs (SageMakerProcessingOperator on aws, the local processing runner locally).
3. :func:`finish_baseline`: copy the staged files into the version's folder and write the marker
   last, so a half-written baseline is recomputed, never used; with no job, return the cached one.

Worker-side, like :mod:`mlops.monitoring.steps`: existence checks, key listings and small JSON
files only (the training data is read by the job); AWS calls go through the clients passed in.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mlops.config import PipelineConfig
from mlops.lake import Lake
from mlops.monitoring.steps import MonitoringError, client_of, image_uri, job_name, publish_code, role_arn
from mlops.training import lake_io

log = logging.getLogger(__name__)
BASELINE_FILES = ("statistics.json", "constraints.json", "feature_spec.json")
SUMMARY = "baseline_summary.json"
MARKER = "baseline_info.json"


def baseline_uri(lake: Lake, model: dict[str, Any]) -> str:
    """The version's baseline folder: ``<monitoring>/baselines/<group>/v<version>``."""
    return lake.monitoring("baselines", str(model["model_package_group"]), f"v{model['version']}")


def staging_uri(lake: Lake, model: dict[str, Any], name: str) -> str:
    """Where baseline job ``name`` writes, before its files are swapped in."""
    return lake.staging("monitoring", "baselines", str(model["model_package_group"]), f"v{model['version']}", name)


def cached_baseline(lake: Lake, model: dict[str, Any], s3: Any = None) -> dict[str, Any] | None:
    """The version's baseline record (``created: False``) when it is in place, else None."""
    marker = lake_io.join(baseline_uri(lake, model), MARKER)
    if not lake_io.exists(marker, s3):
        return None
    return {**json.loads(lake_io.read_bytes(marker, s3)), "created": False}


def training_job_channel(model_data_url: str, channel: str = "train", sagemaker: Any = None) -> str | None:
    """The ``channel`` S3Uri of the training job that produced ``<output>/<job>/output/model.tar.gz``
    (local: the job's describe.json; s3: DescribeTrainingJob with ``sagemaker``, a client or a factory
    of one). None when it cannot be told."""
    parts = model_data_url.rstrip("/").split("/")
    if len(parts) < 3 or parts[-2] != "output":
        return None
    job = parts[-3]
    if model_data_url.startswith("file://"):
        from mlops.sagemaker_local.layout import jobs_root

        path = jobs_root() / "training" / job / "describe.json"
        described = json.loads(path.read_text()) if path.exists() else None
    else:
        try:
            described = client_of(sagemaker, "sagemaker").describe_training_job(TrainingJobName=job)
        except Exception as exc:  # no permission or no such job: fall back
            log.warning("cannot describe training job %s: %s", job, exc)
            described = None
    for item in (described or {}).get("InputDataConfig", []):
        if item["ChannelName"] == channel:
            return item["DataSource"]["S3DataSource"]["S3Uri"]
    return None


def training_data_uri(
    model: dict[str, Any], lake: Lake, params: dict[str, Any] | None = None, *, s3: Any = None, sagemaker: Any = None
) -> str:
    """Where the model's training data is: Param, event extra, its training job's train channel,
    else the validated curated snapshot (a pointer file)."""
    params = params or {}
    for candidate in (params.get("training_data_uri"), model.get("training_data_uri"), model.get("curated_uri")):
        if candidate:
            return candidate
    channel = training_job_channel(model["model_data_url"], sagemaker=sagemaker)
    if channel:
        return channel
    curated = lake.curated("features")
    for pointer in ("_validated.json", "_current.json"):
        uri = lake_io.join(curated, pointer)
        if lake_io.exists(uri, s3):
            return json.loads(lake_io.read_bytes(uri, s3))["uri"]
    raise MonitoringError(f"cannot tell where model v{model['version']} was trained from; pass training_data_uri")


def require_inputs(model: dict[str, Any], training_uri: str, s3: Any = None) -> None:
    """Fail before any job starts when the model package or the training data is not there."""
    checks = (
        ("model package", model["model_data_url"], "pass the model_data_url of a registered model, or redeploy"),
        ("training data", training_uri, "pass the training_data_uri Param (a curated snapshot)"),
    )
    for what, uri, fix in checks:
        if not lake_io.exists(uri, s3):
            raise MonitoringError(f"the {what} of model v{model['version']} is missing: nothing at {uri}; {fix}")


def plan_baseline(
    config: PipelineConfig,
    lake: Lake,
    model: dict[str, Any],
    *,
    run_id: str,
    run_after: datetime | str,
    training_uri: str | None = None,
    s3: Any = None,
    sagemaker: Any = None,
) -> dict[str, Any] | None:
    """The baseline job's CreateProcessingJob request, or None when the version's baseline is in place."""
    from mlops.aws.monitoring_requests import baseline_job_request

    cached = cached_baseline(lake, model, s3)
    if cached is not None:
        log.info("baseline of v%s is in place at %s: reusing it, no job", model["version"], cached["baseline_uri"])
        return None
    source = training_uri or training_data_uri(model, lake, s3=s3, sagemaker=sagemaker)
    require_inputs(model, source, s3)
    name = job_name(config, run_id, run_after, "baseline")
    return baseline_job_request(
        config,
        name=name,
        image_uri=image_uri(config),
        role_arn=role_arn(config),
        code_uri=publish_code(lake, s3),
        model_data_url=model["model_data_url"],
        training_data_uri=source,
        output_uri=staging_uri(lake, model, name),
        tags={"mlops:run_id": run_id[:256], "mlops:stage": "monitoring", "mlops:model_version": str(model["version"])},
    )


def _staged_files(processing: dict[str, Any], s3: Any = None) -> dict[str, bytes]:
    """The finished baseline job's output files; raises MonitoringError naming a missing one."""
    staged = processing["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    files = {}
    for name in (*BASELINE_FILES, SUMMARY):
        uri = lake_io.join(staged, name)
        if not lake_io.exists(uri, s3):
            raise MonitoringError(
                f"baseline job {processing['ProcessingJobName']} finished without {name} under {staged}; "
                "its log says why. Start a new mlops_monitor run to compute the baseline again"
            )
        files[name] = lake_io.read_bytes(uri, s3)
    return files


def finish_baseline(
    lake: Lake, model: dict[str, Any], processing: dict[str, Any] | None = None, s3: Any = None
) -> dict[str, Any]:
    """Swap a finished baseline job's files in (marker last; ``created: True``); with no job, the cached baseline."""
    uri = baseline_uri(lake, model)
    if processing is None:
        cached = cached_baseline(lake, model, s3)
        if cached is None:
            raise MonitoringError(f"no baseline at {uri} and no baseline job ran; start a new mlops_monitor run")
        return cached
    files = _staged_files(processing, s3)
    summary = json.loads(files.pop(SUMMARY))
    for name, data in files.items():
        lake_io.write_bytes(lake_io.join(uri, name), data, s3)
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in processing.get("ProcessingInputs", [])}
    info = {
        "baseline_uri": uri,
        "model_version": str(model["version"]),
        "model_data_url": model["model_data_url"],
        "training_data_uri": inputs.get("train"),
        "item_count": int(summary["item_count"]),
        "features": int(summary["features"]),
        "statistics_uri": lake_io.join(uri, "statistics.json"),
        "constraints_uri": lake_io.join(uri, "constraints.json"),
        "job_name": processing["ProcessingJobName"],
    }
    lake_io.write_bytes(lake_io.join(uri, MARKER), json.dumps(info, indent=2).encode(), s3)
    log.info("baseline of v%s: %s rows, %s features -> %s", model["version"], info["item_count"], info["features"], uri)
    return {**info, "created": True}


def ensure_baseline(
    config: PipelineConfig,
    lake: Lake,
    model: dict[str, Any],
    *,
    run_job: Callable[[dict[str, Any]], dict[str, Any]],
    run_id: str,
    run_after: datetime | str,
    training_uri: str | None = None,
    s3: Any = None,
) -> dict[str, Any]:
    """The three steps without Airflow: the cached baseline, else plan, ``run_job(request)`` (a runner of
    CreateProcessingJob returning the Describe, e.g. :func:`mlops.sagemaker_local.run_processing_job`), swap in."""
    request = plan_baseline(config, lake, model, run_id=run_id, run_after=run_after, training_uri=training_uri, s3=s3)
    if request is None:
        return finish_baseline(lake, model, None, s3)
    described = run_job(request)
    if described.get("ProcessingJobStatus") != "Completed":
        raise MonitoringError(
            f"baseline job {request['ProcessingJobName']} {described.get('ProcessingJobStatus')}: "
            f"{described.get('FailureReason')}"
        )
    return finish_baseline(lake, model, described, s3)
