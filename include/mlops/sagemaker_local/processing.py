"""Run a CreateProcessingJob request locally: inputs staged under /opt/ml/processing, the
container entrypoint run with /opt/ml paths remapped into the job dir, outputs published to
their S3Uri keys (staged, then swapped in) only when the job succeeds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.sagemaker_local.layout import CONTAINER_ROOT, HOST, LOCAL_ACCOUNT, JobDir, failure_reason, stage_input
from mlops.sagemaker_local.logs import container_env, run_logged
from mlops.training.lake_io import copy_tree_local


def run_processing_job(request: dict[str, Any], *, root: Path | None = None, region: str = "local") -> dict[str, Any]:
    """Execute a CreateProcessingJob request; return a DescribeProcessingJob-shaped dict."""
    name = request["ProcessingJobName"]
    app = request["AppSpecification"]
    if not app.get("ContainerEntrypoint"):
        raise ValueError(f"processing job {name}: AppSpecification.ContainerEntrypoint is required to run it locally")
    job = JobDir.fresh("processing", name, root)
    started = datetime.now(UTC)
    job.write_json(f"{CONTAINER_ROOT}/config/processingjobconfig.json", request)
    job.write_json(f"{CONTAINER_ROOT}/config/resourceconfig.json", {"current_host": HOST, "hosts": [HOST]})
    for item in request.get("ProcessingInputs", []):
        source = item["S3Input"]
        stage_input(source["S3Uri"], job.container(source["LocalPath"]))
    outputs = request.get("ProcessingOutputConfig", {}).get("Outputs", [])
    for item in outputs:
        job.container(item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
    command = [job.remap(token) for token in [*app["ContainerEntrypoint"], *app.get("ContainerArguments", [])]]
    timeout = request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
    returncode, log_text = run_logged(
        command,
        cwd=job.opt_ml,
        env=container_env({**request.get("Environment", {}), "PROCESSING_JOB_NAME": name}),
        log_file=job.log_file,
        timeout=timeout,
    )
    ended = datetime.now(UTC)
    describe: dict[str, Any] = {
        "ProcessingJobName": name,
        "ProcessingJobArn": f"arn:aws:sagemaker:{region}:{LOCAL_ACCOUNT}:processing-job/{name}",
        "ProcessingInputs": request.get("ProcessingInputs", []),
        "ProcessingOutputConfig": request.get("ProcessingOutputConfig", {}),
        "ProcessingResources": request["ProcessingResources"],
        "StoppingCondition": request.get("StoppingCondition", {}),
        "AppSpecification": app,
        "Environment": request.get("Environment", {}),
        "RoleArn": request.get("RoleArn"),
        "CreationTime": started.isoformat(),
        "ProcessingStartTime": started.isoformat(),
        "ProcessingEndTime": ended.isoformat(),
        "LocalJobDir": str(job.root),
    }
    if returncode == 0:
        for item in outputs:
            copy_tree_local(job.container(item["S3Output"]["LocalPath"]), item["S3Output"]["S3Uri"])
        describe.update(ProcessingJobStatus="Completed", ExitMessage="")
    else:
        tail = "\n".join(log_text.splitlines()[-15:])
        reason = failure_reason(job, returncode, tail)
        status = "Stopped" if timeout and returncode < 0 else "Failed"
        describe.update(ProcessingJobStatus=status, FailureReason=reason, ExitMessage=reason)
    job.describe_file.write_text(json.dumps(describe, indent=2, default=str))
    return describe
