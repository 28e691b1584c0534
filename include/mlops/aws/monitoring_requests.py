"""CreateProcessingJob for the monitoring stage's jobs: the baseline job
(``mlops/monitoring/baseline_job.py``), the drift job (``mlops/monitoring/drift_job.py``) and the
model-quality job (``mlops/monitoring/quality_job.py``).

Pure functions of the pipeline config and the run's values; tests validate them against
botocore's service model and the local runner (:mod:`mlops.sagemaker_local`) executes the same
dicts. Both run the monitoring code bundle on the monitoring processing instance.

- Baseline job inputs: the code bundle, the model.tar.gz (its feature_spec.json) and the model's
  training data; output: the baseline files, to a staging prefix (the worker swaps them in).
- Drift job inputs: the code bundle, the model's baseline, the window's capture folders (one input
  per variant and hour, or the endpoint's whole capture prefix when that would exceed
  SageMaker's 10 inputs; none when the window has no capture files) and, optionally, the
  real-time aggregates.
- Model-quality job inputs: the code bundle, the raw DMS ``orders`` table (the delayed ground truth)
  and the window's capture folders; output: Model Monitor's model-quality files.
"""

from __future__ import annotations

from typing import Any

from mlops.aws.sagemaker_requests import CODE_DIR, PROCESSING, network_config, processing_job_request
from mlops.aws.sagemaker_requests import processing_input as _input
from mlops.config import PipelineConfig

DRIFT_ENTRY_POINT = "drift_job.py"
BASELINE_ENTRY_POINT = "baseline_job.py"
QUALITY_ENTRY_POINT = "quality_job.py"
MAX_INPUTS = 10
FAILURE_FILE = "/opt/ml/output/failure"


def threshold_arguments(config: PipelineConfig) -> list[str]:
    """The Model Monitor thresholds both jobs take (the baseline writes them into constraints.json)."""
    monitoring = config.monitoring
    return [
        "--comparison-method",
        monitoring.comparison_method,
        "--comparison-threshold",
        str(monitoring.comparison_threshold),
        "--categorical-comparison-threshold",
        str(monitoring.categorical_comparison_threshold),
        "--datatype-check-threshold",
        str(monitoring.datatype_check_threshold),
        "--domain-content-threshold",
        str(monitoring.domain_content_threshold),
    ]


def baseline_job_request(
    config: PipelineConfig,
    *,
    name: str,
    image_uri: str,
    role_arn: str,
    code_uri: str,
    model_data_url: str,
    training_data_uri: str,
    output_uri: str,
    split: str = "train",
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """CreateProcessingJob computing a model version's baseline from its training data ("suggest baseline")."""
    inputs = [
        _input("code", code_uri, CODE_DIR),
        _input("model", model_data_url, f"{PROCESSING}/input/model"),
        _input("train", training_data_uri, f"{PROCESSING}/input/train"),
    ]
    arguments = [
        "--model",
        f"{PROCESSING}/input/model",
        "--train",
        f"{PROCESSING}/input/train",
        "--split",
        split,
        *threshold_arguments(config),
        "--output",
        f"{PROCESSING}/output",
        "--failure-file",
        FAILURE_FILE,
    ]
    return monitoring_job_request(
        config,
        name=name,
        inputs=inputs,
        output=("baseline", output_uri, f"{PROCESSING}/output"),
        image_uri=image_uri,
        entry_point=BASELINE_ENTRY_POINT,
        arguments=arguments,
        role_arn=role_arn,
        tags=tags,
    )


def capture_inputs(capture_root: str, endpoint: str, folders: list[str], room: int) -> list[dict[str, Any]]:
    """One input per ``<variant>/yyyy/mm/dd/hh`` folder, or the endpoint's prefix if they do not fit in ``room``;
    none for a window without capture files (the job then reports an empty, insufficient window)."""
    base = f"{capture_root.rstrip('/')}/{endpoint}"
    if not folders:
        return []
    if len(folders) > room:
        return [_input("capture", base, f"{PROCESSING}/input/capture")]
    return [
        _input(f"capture-{i}", f"{base}/{folder}", f"{PROCESSING}/input/capture/{folder}")
        for i, folder in enumerate(sorted(folders))
    ]


def drift_job_arguments(
    config: PipelineConfig, window_start: str, window_end: str, model_version: str | int
) -> list[str]:
    """The drift job's command line: the window, the monitoring settings, its folders."""
    monitoring = config.monitoring
    settings = {
        "--robust-alpha": monitoring.robust_alpha,
        "--psi-threshold": monitoring.psi_threshold,
        "--completeness-tolerance": monitoring.completeness_tolerance,
        "--drift-share-threshold": monitoring.drift_share_threshold,
        "--min-window-records": monitoring.min_window_records,
        "--min-distinct-sources": monitoring.min_distinct_sources,
        "--max-source-share": monitoring.max_source_share,
    }
    folders = {
        "--baseline": f"{PROCESSING}/input/baseline",
        "--capture": f"{PROCESSING}/input/capture",
        "--reporting": f"{PROCESSING}/input/reporting",
        "--output": f"{PROCESSING}/output",
        "--failure-file": FAILURE_FILE,
    }
    window = {
        "--window-start": window_start,
        "--window-end": window_end,
        "--model-version": str(model_version),
        "--endpoint-name": config.serving.endpoint_name,
    }
    return [*_flags(window), *threshold_arguments(config), *_flags(settings), *_flags(folders)]


def _flags(values: dict[str, Any]) -> list[str]:
    """``{"--name": value}`` as ``["--name", "value", ...]``."""
    return [part for name, value in values.items() for part in (name, str(value))]


def drift_job_request(
    config: PipelineConfig,
    *,
    name: str,
    image_uri: str,
    role_arn: str,
    code_uri: str,
    baseline_uri: str,
    capture_root: str,
    capture_folders: list[str],
    output_uri: str,
    window_start: str,
    window_end: str,
    model_version: str | int,
    aggregates_uri: str | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """CreateProcessingJob running the drift job on one window of captured traffic."""
    endpoint = config.serving.endpoint_name
    # The baseline as a folder ("v3/", not "v3"): an S3Prefix "v3" would also take "v30/..." objects.
    baseline_folder = baseline_uri.rstrip("/") + "/"
    inputs = [_input("code", code_uri, CODE_DIR), _input("baseline", baseline_folder, f"{PROCESSING}/input/baseline")]
    if aggregates_uri:
        inputs.append(_input("reporting", aggregates_uri, f"{PROCESSING}/input/reporting"))
    inputs += capture_inputs(capture_root, endpoint, capture_folders, MAX_INPUTS - len(inputs))
    arguments = drift_job_arguments(config, window_start, window_end, model_version)
    return monitoring_job_request(
        config,
        name=name,
        inputs=inputs,
        output=("monitoring", output_uri, f"{PROCESSING}/output"),
        image_uri=image_uri,
        entry_point=DRIFT_ENTRY_POINT,
        arguments=arguments,
        role_arn=role_arn,
        tags=tags,
    )


def quality_job_request(
    config: PipelineConfig,
    *,
    name: str,
    image_uri: str,
    role_arn: str,
    code_uri: str,
    capture_root: str,
    capture_folders: list[str],
    ground_truth_uri: str,
    output_uri: str,
    window_start: str,
    window_end: str,
    model_version: str | int,
    evaluated_map: float,
    labels_after: str = "",
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """CreateProcessingJob running the model-quality job: the window's captured predictions joined with
    the raw ``orders`` table (``ground_truth_uri``, every order's CDC history) by inference id. With
    ``labels_after`` (the model's training data cut-off) the job also counts the orders labelled since."""
    quality = config.monitoring.quality
    inputs = [
        _input("code", code_uri, CODE_DIR),
        _input("ground_truth", ground_truth_uri.rstrip("/") + "/", f"{PROCESSING}/input/ground_truth"),
    ]
    inputs += capture_inputs(capture_root, config.serving.endpoint_name, capture_folders, MAX_INPUTS - len(inputs))
    arguments = [
        *("--window-start", window_start, "--window-end", window_end),
        *("--model-version", str(model_version), "--endpoint-name", config.serving.endpoint_name),
        *("--baseline-map", f"{evaluated_map:.6f}", "--max-map-drop", str(quality.max_map_drop)),
        *("--confidence-z", str(quality.confidence_z)),
        *("--min-labelled-rows", str(quality.min_labelled_rows)),
        *("--min-label-coverage", str(quality.min_label_coverage)),
        *(("--labels-after", labels_after) if labels_after else ()),
        *("--capture", f"{PROCESSING}/input/capture", "--ground-truth", f"{PROCESSING}/input/ground_truth"),
        *("--output", f"{PROCESSING}/output", "--failure-file", FAILURE_FILE),
    ]
    return monitoring_job_request(
        config,
        name=name,
        inputs=inputs,
        output=("quality", output_uri, f"{PROCESSING}/output"),
        image_uri=image_uri,
        entry_point=QUALITY_ENTRY_POINT,
        arguments=arguments,
        role_arn=role_arn,
        tags=tags,
    )


def monitoring_job_request(
    config: PipelineConfig,
    *,
    name: str,
    inputs: list[dict[str, Any]],
    output: tuple[str, str, str],
    image_uri: str,
    entry_point: str,
    arguments: list[str],
    role_arn: str,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """CreateProcessingJob for one of the monitoring jobs: sized by ``monitoring``, in the jobs' network."""
    monitoring = config.monitoring
    return processing_job_request(
        name=name,
        inputs=inputs,
        output=output,
        instance_type=monitoring.processing_instance_type,
        volume_gb=monitoring.processing_volume_gb,
        max_runtime_seconds=monitoring.max_runtime_seconds,
        image_uri=image_uri,
        entry_point=entry_point,
        arguments=arguments,
        role_arn=role_arn,
        tags=tags,
        network=network_config(config.aws),
    )
