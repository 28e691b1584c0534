"""The monitoring stage's steps as plain functions: the model and window of a run, the model's
baseline (computed once per model version, then cached), the drift job's request, and the
policy decision after it. The mlops_monitor DAG's tasks call these; tests call them directly.

Lake keys (``<monitoring>`` = ``lake.monitoring_prefix``)::

    <monitoring>/baselines/<group>/v<version>/  statistics.json constraints.json feature_spec.json baseline_info.json
    <monitoring>/code/<sha16>/                  the drift job's code bundle
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
from mlops.training import lake_io

log = logging.getLogger(__name__)
MONITORING_DIR = Path(__file__).resolve().parent
BUNDLED_MODULES = (
    "__init__.py",
    "statistics.py",
    "capture_reader.py",
    "drift.py",
    "violations.py",
    "report.py",
    "drift_job.py",
)
BASELINE_FILES = ("statistics.json", "constraints.json", "feature_spec.json")
MARKER = "baseline_info.json"


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


def feature_spec(model_data_url: str, s3: Any = None) -> dict[str, Any]:
    """``feature_spec.json`` of a model.tar.gz."""
    from mlops.serving.runtime import read_archive_member

    raw = read_archive_member(lake_io.read_bytes(model_data_url, s3), ("feature_spec.json",))
    if raw is None:
        raise MonitoringError(f"{model_data_url} has no feature_spec.json; it is not a model package of this pipeline")
    return normalise_spec(json.loads(raw))


def normalise_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """``{"numeric": [...], "categorical": [...], ...}`` from either feature-spec layout
    (the training stage's, or ``{"features": [{"name", "type"}]}``)."""
    if "features" in spec and "numeric" not in spec:
        return {
            **spec,
            "numeric": [f["name"] for f in spec["features"] if f["type"] == "numeric"],
            "categorical": [f["name"] for f in spec["features"] if f["type"] != "numeric"],
        }
    return spec


def training_job_channel(model_data_url: str, channel: str = "train", s3_client_factory: Any = None) -> str | None:
    """The ``channel`` S3Uri of the training job that produced ``<output>/<job>/output/model.tar.gz``
    (local: the job's describe.json; s3: DescribeTrainingJob). None when it cannot be told."""
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
            import boto3

            client = s3_client_factory() if s3_client_factory else boto3.client("sagemaker")
            described = client.describe_training_job(TrainingJobName=job)
        except Exception as exc:  # no permission or no such job: fall back
            log.warning("cannot describe training job %s: %s", job, exc)
            described = None
    for item in (described or {}).get("InputDataConfig", []):
        if item["ChannelName"] == channel:
            return item["DataSource"]["S3DataSource"]["S3Uri"]
    return None


def training_data_uri(model: dict[str, Any], lake: Lake, params: dict[str, Any] | None = None) -> str:
    """Where the model's training data is: Param, event extra, its training job's train channel,
    else the validated curated snapshot."""
    params = params or {}
    for candidate in (params.get("training_data_uri"), model.get("training_data_uri"), model.get("curated_uri")):
        if candidate:
            return candidate
    channel = training_job_channel(model["model_data_url"])
    if channel:
        return channel
    curated = lake.curated("features")
    for pointer in ("_validated.json", "_current.json"):
        uri = lake_io.join(curated, pointer)
        if lake_io.exists(uri):
            return json.loads(lake_io.read_bytes(uri))["uri"]
    raise MonitoringError(f"cannot tell where model v{model['version']} was trained from; pass training_data_uri")


def read_training_frame(uri: str) -> Any:
    """The ``train`` split of a Parquet dataset (hive-partitioned or with a ``split`` column)."""
    import pyarrow.dataset as ds

    source = str(local_path(uri)) if uri.startswith("file://") else uri
    frame = ds.dataset(source, format="parquet", partitioning="hive", exclude_invalid_files=True).to_table().to_pandas()
    if "split" in frame.columns and uri.rstrip("/").split("/")[-1] != "split=train":
        frame = frame[frame["split"].astype(str) == "train"]
    if frame.empty:
        raise MonitoringError(f"no training rows under {uri}")
    return frame


# ---- the baseline --------------------------------------------------------------------------------


def baseline_uri(lake: Lake, model: dict[str, Any]) -> str:
    return lake.monitoring("baselines", str(model["model_package_group"]), f"v{model['version']}")


def thresholds(config: PipelineConfig) -> Any:
    from mlops.monitoring.baseline import Thresholds

    m = config.monitoring
    return Thresholds(
        m.comparison_threshold,
        m.categorical_comparison_threshold,
        m.comparison_method,
        m.datatype_check_threshold,
        m.domain_content_threshold,
    )


def ensure_baseline(
    config: PipelineConfig, lake: Lake, model: dict[str, Any], *, training_uri: str | None = None, s3: Any = None
) -> dict[str, Any]:
    """The model version's baseline, computed from its training data on first use, then reused.

    Files are written first and the marker ``baseline_info.json`` last, so a half-written baseline
    is recomputed rather than used.
    """
    from mlops.monitoring.baseline import compute_baseline

    uri = baseline_uri(lake, model)
    marker = lake_io.join(uri, MARKER)
    if lake_io.exists(marker, s3):
        return {**json.loads(lake_io.read_bytes(marker, s3)), "created": False}
    spec = feature_spec(model["model_data_url"], s3)
    source = training_uri or training_data_uri(model, lake)
    frame = read_training_frame(source)
    statistics, constraints = compute_baseline(
        frame, list(spec["numeric"]), list(spec["categorical"]), thresholds(config)
    )
    for name, doc in (("statistics.json", statistics), ("constraints.json", constraints), ("feature_spec.json", spec)):
        lake_io.write_bytes(lake_io.join(uri, name), json.dumps(doc, indent=2).encode(), s3)
    info = {
        "baseline_uri": uri,
        "model_version": str(model["version"]),
        "model_data_url": model["model_data_url"],
        "training_data_uri": source,
        "item_count": int(statistics["dataset"]["item_count"]),
        "features": len(statistics["features"]),
        "statistics_uri": lake_io.join(uri, "statistics.json"),
        "constraints_uri": lake_io.join(uri, "constraints.json"),
    }
    lake_io.write_bytes(marker, json.dumps(info, indent=2).encode(), s3)
    log.info(
        "baseline of v%s from %s: %s rows, %s features -> %s",
        model["version"],
        source,
        info["item_count"],
        info["features"],
        uri,
    )
    return {**info, "created": True}


# ---- code, window, capture -------------------------------------------------------------------------


def code_files() -> dict[str, bytes]:
    """The drift job's bundle: ``drift_job.py`` at the root and the modules it imports."""
    files = {
        "drift_job.py": (MONITORING_DIR / "drift_job.py").read_bytes(),
        "mlops/__init__.py": (MONITORING_DIR.parent / "__init__.py").read_bytes(),
    }
    files.update({f"mlops/monitoring/{name}": (MONITORING_DIR / name).read_bytes() for name in BUNDLED_MODULES})
    return files


def publish_code(lake: Lake, s3: Any = None) -> str:
    """Upload the bundle under its content hash (once); return its prefix URI (with a trailing '/')."""
    files = code_files()
    digest = hashlib.sha256(b"".join(name.encode() + data for name, data in sorted(files.items()))).hexdigest()
    prefix = lake.monitoring("code", digest[:16])
    if not lake_io.exists(lake_io.join(prefix, "drift_job.py"), s3):
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
    """This run's window (see :func:`mlops.monitoring.policy.next_window`) as ISO strings."""
    start, stop = drift_policy.next_window(
        load_state(lake, endpoint, s3), run_id=run_id, end=as_time(end), window_minutes=window_minutes
    )
    return {"window_start": start.isoformat(), "window_end": stop.isoformat()}


def list_capture_keys(capture_uri: str, s3: Any = None) -> list[str]:
    """Keys (relative to ``capture_uri``) of every capture file under it; names only, no content read."""
    if lake_io.is_s3(capture_uri):
        bucket, prefix = capture_uri[5:].split("/", 1)
        prefix = prefix.rstrip("/") + "/"
        client = s3 or __import__("boto3").client("s3")
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
    from mlops.monitoring.capture_reader import keys_in_window

    return sorted({k.rsplit("/", 1)[0] for k in keys_in_window(keys, as_time(start), as_time(end))})


# ---- the drift job and the decision ----------------------------------------------------------------


def image_uri(config: PipelineConfig) -> str:
    """The processing image: configured, else the sklearn framework image (the resolved table)."""
    from mlops.aws.framework_images import framework_image_uri

    return config.monitoring.image_uri or framework_image_uri(
        config.monitoring.framework_version, config.aws.region, "training"
    )


def job_name(config: PipelineConfig, run_id: str, run_after: datetime | str) -> str:
    from mlops.aws.sagemaker_requests import job_name as make_name

    return make_name(config.training.job_name_prefix, "drift", run_id, run_after)


def publish_aggregates(
    config: PipelineConfig, lake: Lake, name: str, window: dict[str, str], s3: Any = None
) -> str | None:
    """Write the window's real-time per-minute aggregates next to the run's outputs; None when there are none."""
    from mlops.reporting.store import open_store, read_window

    try:
        endpoint = config.serving.endpoint_name
        pks = [f"{endpoint}#{v.name}" for v in config.serving.variants] + [f"{endpoint}#events"]
        rows = read_window(
            open_store(config.reporting), pks, as_time(window["window_start"]), as_time(window["window_end"])
        )
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
    from mlops.training.steps import role_arn

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
        "violations_uri": outputs["constraint_violations_uri"],
        "report_uri": outputs["report_uri"],
    }
    endpoint = config.serving.endpoint_name
    state, decision = drift_policy.apply(load_state(lake, endpoint, s3), record, rules)
    save_state(lake, endpoint, state, s3)
    extra = {
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
        **outputs,
    }
