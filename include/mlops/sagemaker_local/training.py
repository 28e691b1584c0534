"""Run a CreateTrainingJob request locally, the way the SageMaker training toolkit runs script mode.

- ``/opt/ml/input/config``: hyperparameters.json, inputdataconfig.json, resourceconfig.json;
- ``/opt/ml/input/data/<channel>``: each channel's S3Prefix copied from the local lake;
- ``/opt/ml/code``: ``sagemaker_submit_directory`` (a sourcedir.tar.gz) unpacked;
- the entry point ``sagemaker_program`` runs as ``python <program> --<hp> <value> ...`` with the
  ``SM_*`` variables; afterwards ``/opt/ml/model`` becomes
  ``<S3OutputPath>/<job>/output/model.tar.gz`` and ``/opt/ml/output/data`` ``.../output.tar.gz``.
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.lake import local_path
from mlops.sagemaker_local.layout import CONTAINER_ROOT, HOST, LOCAL_ACCOUNT, JobDir, failure_reason, stage_input
from mlops.sagemaker_local.logs import container_env, parse_metrics, run_logged

TOOLKIT_KEYS = ("sagemaker_program", "sagemaker_submit_directory", "sagemaker_region", "sagemaker_container_log_level")


def _decode(value: str) -> Any:
    """Hyperparameter values are JSON-encoded strings by the SDK's convention; plain strings pass."""
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def script_arguments(hyperparameters: dict[str, str]) -> list[str]:
    """``--name value`` for each user hyperparameter (the toolkit's SM_USER_ARGS)."""
    args: list[str] = []
    for name, raw in sorted(hyperparameters.items()):
        if name in TOOLKIT_KEYS:
            continue
        value = _decode(raw)
        args += [f"--{name}", json.dumps(value) if isinstance(value, dict | list) else str(value)]
    return args


def _tar_into(folder: Path, destination_uri: str) -> str:
    """``tar czf`` a folder straight to a local lake URI (staged, then renamed)."""
    target = local_path(destination_uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    with tarfile.open(tmp, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    os.replace(tmp, target)
    return destination_uri


def _environment(job: JobDir, request: dict[str, Any], channels: list[str], program: str) -> dict[str, str]:
    hyperparameters = {k: _decode(v) for k, v in request.get("HyperParameters", {}).items() if k not in TOOLKIT_KEYS}
    user_args = script_arguments(request.get("HyperParameters", {}))
    opt = job.opt_ml
    env = {
        "SM_MODEL_DIR": str(opt / "model"),
        "SM_INPUT_DIR": str(opt / "input"),
        "SM_INPUT_CONFIG_DIR": str(opt / "input" / "config"),
        "SM_OUTPUT_DIR": str(opt / "output"),
        "SM_OUTPUT_DATA_DIR": str(opt / "output" / "data"),
        "SM_OUTPUT_INTERMEDIATE_DIR": str(opt / "output" / "intermediate"),
        "SM_MODULE_DIR": str(opt / "code"),
        "SM_USER_ENTRY_POINT": program,
        "SM_CHANNELS": json.dumps(channels),
        "SM_HPS": json.dumps(hyperparameters),
        "SM_USER_ARGS": json.dumps(user_args),
        "SM_HOSTS": json.dumps([HOST]),
        "SM_CURRENT_HOST": HOST,
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        "SM_TRAINING_ENV": json.dumps({"job_name": request["TrainingJobName"], "hyperparameters": hyperparameters}),
        "TRAINING_JOB_NAME": request["TrainingJobName"],
    }
    env.update({f"SM_CHANNEL_{c.upper()}": str(opt / "input" / "data" / c) for c in channels})
    env.update(
        {f"SM_HP_{k.upper()}": json.dumps(v) if not isinstance(v, str) else v for k, v in hyperparameters.items()}
    )
    env.update(request.get("Environment", {}))
    return env


def run_training_job(request: dict[str, Any], *, root: Path | None = None, region: str = "local") -> dict[str, Any]:
    """Execute a CreateTrainingJob request; return a DescribeTrainingJob-shaped dict (Completed or Failed)."""
    name = request["TrainingJobName"]
    hyperparameters = request.get("HyperParameters", {})
    program = _decode(hyperparameters.get("sagemaker_program", '"train.py"'))
    submit = _decode(hyperparameters.get("sagemaker_submit_directory", "null"))
    if not submit:
        raise ValueError(
            f"training job {name}: HyperParameters lacks sagemaker_submit_directory (the sourcedir.tar.gz)"
        )
    job = JobDir.fresh("training", name, root)
    started = datetime.now(UTC)
    channels = [c["ChannelName"] for c in request.get("InputDataConfig", [])]
    _lay_out(job, request, submit)
    timeout = request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
    returncode, log_text = run_logged(
        ["python", program, *script_arguments(hyperparameters)],
        cwd=job.opt_ml / "code",
        env=container_env(_environment(job, request, channels, program)),
        log_file=job.log_file,
        timeout=timeout,
    )
    describe = _describe(request, job, region, started, log_text)
    output_root = f"{request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}/output"
    if returncode == 0:
        describe["ModelArtifacts"] = {
            "S3ModelArtifacts": _tar_into(job.opt_ml / "model", f"{output_root}/model.tar.gz")
        }
        _tar_into(job.opt_ml / "output" / "data", f"{output_root}/output.tar.gz")
        describe.update(TrainingJobStatus="Completed", SecondaryStatus="Completed")
    elif timeout and returncode < 0:
        describe.update(
            TrainingJobStatus="Stopped",
            SecondaryStatus="MaxRuntimeExceeded",
            FailureReason=f"MaxRuntimeExceeded: the job ran longer than {timeout} s",
        )
    else:
        tail = "\n".join(log_text.splitlines()[-15:])
        describe.update(
            TrainingJobStatus="Failed", SecondaryStatus="Failed", FailureReason=failure_reason(job, returncode, tail)
        )
    job.describe_file.write_text(json.dumps(describe, indent=2, default=str))
    return describe


def _lay_out(job: JobDir, request: dict[str, Any], submit: str) -> None:
    """The container's ``/opt/ml``: input config files, the channels' data, the code, empty output folders."""
    config_dir = f"{CONTAINER_ROOT}/input/config"
    job.write_json(f"{config_dir}/hyperparameters.json", request.get("HyperParameters", {}))
    job.write_json(
        f"{config_dir}/inputdataconfig.json",
        {
            c["ChannelName"]: {
                "ContentType": c.get("ContentType", "application/x-parquet"),
                "TrainingInputMode": c.get(
                    "InputMode", request["AlgorithmSpecification"].get("TrainingInputMode", "File")
                ),
                "S3DistributionType": c["DataSource"]["S3DataSource"].get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": c.get("RecordWrapperType", "None"),
            }
            for c in request.get("InputDataConfig", [])
        },
    )
    job.write_json(f"{config_dir}/resourceconfig.json", {"current_host": HOST, "hosts": [HOST]})
    job.write_json(f"{config_dir}/trainingjobconfig.json", request)
    for channel in request.get("InputDataConfig", []):
        stage_input(
            channel["DataSource"]["S3DataSource"]["S3Uri"], job.opt_ml / "input" / "data" / channel["ChannelName"]
        )
    code = job.opt_ml / "code"
    code.mkdir(parents=True)
    with tarfile.open(local_path(submit), "r:gz") as tar:
        tar.extractall(code, filter="data")
    for folder in ("model", "output/data", "output/intermediate"):
        (job.opt_ml / folder).mkdir(parents=True, exist_ok=True)


def _describe(request: dict[str, Any], job: JobDir, region: str, started: datetime, log_text: str) -> dict[str, Any]:
    """DescribeTrainingJob of the finished run, before its status: times, metrics from the log, the request."""
    name, ended = request["TrainingJobName"], datetime.now(UTC)
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:{region}:{LOCAL_ACCOUNT}:training-job/{name}",
        "AlgorithmSpecification": request["AlgorithmSpecification"],
        "RoleArn": request.get("RoleArn"),
        "HyperParameters": request.get("HyperParameters", {}),
        "InputDataConfig": request.get("InputDataConfig", []),
        "OutputDataConfig": request["OutputDataConfig"],
        "ResourceConfig": request["ResourceConfig"],
        "StoppingCondition": request.get("StoppingCondition", {}),
        "CreationTime": started.isoformat(),
        "TrainingStartTime": started.isoformat(),
        "TrainingEndTime": ended.isoformat(),
        "TrainingTimeInSeconds": max(1, round((ended - started).total_seconds())),
        "FinalMetricDataList": parse_metrics(
            log_text, request["AlgorithmSpecification"].get("MetricDefinitions", []), ended
        ),
        "LocalJobDir": str(job.root),
    }
