"""Requests the training stage makes to SageMaker (CreateTrainingJob, CreateProcessingJob,
CreateModelPackageGroup, CreateModelPackage, UpdateModelPackage).

Pure functions of the pipeline config and the run's values; tests validate each against
botocore's service model, and the local stand-ins execute the very same dicts. Image URIs come
from the table sagemaker-core resolved at build time (:mod:`mlops.aws.framework_images`).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from mlops.config import AwsConfig, PipelineConfig, TrainingConfig

PROCESSING = "/opt/ml/processing"
CODE_DIR = f"{PROCESSING}/input/code"
ENTRY_POINT = "train.py"
EVALUATE_SCRIPT = "evaluate.py"
APPROVAL = {"auto": "Approved", "manual": "PendingManualApproval"}
_NAME_OK = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def job_name(prefix: str, step: str, run_id: str, run_after: datetime | str) -> str:
    """``<prefix>-<step>-<YYYYmmddHHMMSS>-<sha1(run_id)[:8]>``: the same for every try of one run."""
    stamp = run_after if isinstance(run_after, str) else run_after.strftime("%Y%m%d%H%M%S")
    stamp = re.sub(r"[^0-9]", "", stamp)[:14]
    digest = hashlib.sha1(run_id.encode(), usedforsecurity=False).hexdigest()[:8]
    name = f"{prefix}-{step}-{stamp}-{digest}"
    if not _NAME_OK.match(name):
        raise ValueError(f"job name {name!r} breaks SageMaker's naming rule; shorten training.job_name_prefix")
    return name


def encode_hyperparameters(values: dict[str, Any]) -> dict[str, str]:
    """SageMaker HyperParameters are strings; JSON-encode each value as the SageMaker SDK does."""
    return {str(k): json.dumps(v) for k, v in sorted(values.items())}


def resolve_image_uri(training: TrainingConfig, region: str) -> str:
    """The configured image, else the sklearn framework training image for the region (the resolved table)."""
    from mlops.aws.framework_images import framework_image_uri

    return training.image_uri or framework_image_uri(training.framework_version, region, "training")


def _s3_channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
        },
        "ContentType": "application/x-parquet",
        "CompressionType": "None",
        "InputMode": "File",
    }


def vpc_config(aws: AwsConfig) -> dict[str, Any]:
    """``{"VpcConfig": ...}`` of a training job in the configured private subnets, or ``{}`` (no VPC)."""
    if not aws.subnet_ids:
        return {}
    return {"VpcConfig": {"SecurityGroupIds": list(aws.security_group_ids), "Subnets": list(aws.subnet_ids)}}


def network_config(aws: AwsConfig) -> dict[str, Any]:
    """``{"NetworkConfig": {"VpcConfig": ...}}`` of a processing job in the configured subnets, or ``{}``."""
    vpc = vpc_config(aws)
    return {"NetworkConfig": vpc} if vpc else {}


def training_job_request(
    config: PipelineConfig,
    *,
    name: str,
    image_uri: str,
    role_arn: str,
    source_uri: str,
    channels: dict[str, str],
    output_uri: str,
    hyperparameters: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """CreateTrainingJob for script-mode ``train.py`` from ``source_uri`` (a sourcedir.tar.gz)."""
    training = config.training
    values: dict[str, Any] = {**training.hyperparameters, **(hyperparameters or {})}
    values["parity_tolerance"] = training.parity_tolerance
    values["parity_rows"] = training.parity_rows
    values["decision_objective"] = training.decision.objective
    if training.decision.cost_matrix:
        values["cost_matrix"] = json.dumps(training.decision.cost_matrix, sort_keys=True)  # one string argument
    encoded = encode_hyperparameters(values)
    encoded.update(
        sagemaker_program=json.dumps(ENTRY_POINT),
        sagemaker_submit_directory=json.dumps(source_uri),
        sagemaker_region=json.dumps(config.aws.region),
    )
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": [m.model_dump() for m in training.metric_definitions],
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "RoleArn": role_arn,
        "HyperParameters": encoded,
        "InputDataConfig": [_s3_channel(name_, uri) for name_, uri in channels.items()],
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "ResourceConfig": {
            "InstanceType": training.instance_type,
            "InstanceCount": training.instance_count,
            "VolumeSizeInGB": training.volume_size_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": training.max_runtime_seconds},
        **vpc_config(config.aws),
        "Tags": [{"Key": k, "Value": v} for k, v in sorted((tags or {}).items())],
    }


def processing_input(name: str, uri: str, local: str) -> dict[str, Any]:
    """A ProcessingInput copying an S3 prefix to ``local`` inside the container."""
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def evaluation_job_request(
    config: PipelineConfig,
    *,
    name: str,
    image_uri: str,
    role_arn: str,
    code_uri: str,
    model_uri: str,
    test_uri: str,
    output_uri: str,
    champion_model_uri: str | None = None,
    tags: dict[str, str] | None = None,
    recent: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """CreateProcessingJob running ``evaluate.py`` on the test split (and the champion, when given).

    ``recent`` (``{"trigger", "since"}`` from the run's triggering event) tells the job which rows are
    recent; it always measures them (orders from ``since``, else the split's last ``recent_days``)."""
    training = config.training
    inputs = [
        processing_input("code", code_uri, CODE_DIR),
        processing_input("model", model_uri, f"{PROCESSING}/model"),
        processing_input("test", test_uri, f"{PROCESSING}/test"),
    ]
    arguments = [
        "--model",
        f"{PROCESSING}/model",
        "--test",
        f"{PROCESSING}/test",
        "--output",
        f"{PROCESSING}/evaluation",
    ]
    if champion_model_uri:
        inputs.append(processing_input("champion", champion_model_uri, f"{PROCESSING}/champion"))
        arguments += ["--champion", f"{PROCESSING}/champion"]
    arguments += ["--recent-days", str(training.recent_days), "--min-recent-rows", str(training.min_recent_rows)]
    for flag, key in (("--trigger", "trigger"), ("--recent-since", "since")):
        if (recent or {}).get(key):
            arguments += [flag, str(recent[key])]
    arguments += ["--failure-file", "/opt/ml/output/failure"]
    return processing_job_request(
        name=name,
        inputs=inputs,
        output=("evaluation", output_uri, f"{PROCESSING}/evaluation"),
        instance_type=training.processing_instance_type,
        volume_gb=training.volume_size_gb,
        max_runtime_seconds=training.max_runtime_seconds,
        image_uri=image_uri,
        entry_point=EVALUATE_SCRIPT,
        arguments=arguments,
        role_arn=role_arn,
        tags=tags,
        network=network_config(config.aws),
    )


def processing_job_request(
    *,
    name: str,
    inputs: list[dict[str, Any]],
    output: tuple[str, str, str],
    instance_type: str,
    volume_gb: int,
    max_runtime_seconds: int,
    image_uri: str,
    entry_point: str,
    arguments: list[str],
    role_arn: str,
    tags: dict[str, str] | None = None,
    network: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """CreateProcessingJob running ``<code input>/<entry_point>`` with ``python3`` on one instance.

    ``output`` is ``(name, s3_uri, local_path)``: what the script writes under ``local_path`` is
    uploaded to ``s3_uri`` when the job ends. ``network`` is :func:`network_config` of the config.
    """
    output_name, output_uri, output_local = output
    return {
        "ProcessingJobName": name,
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": output_name,
                    "S3Output": {"S3Uri": output_uri, "LocalPath": output_local, "S3UploadMode": "EndOfJob"},
                }
            ]
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": instance_type, "VolumeSizeInGB": volume_gb}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
        "AppSpecification": {
            "ImageUri": image_uri,
            "ContainerEntrypoint": ["python3", f"{CODE_DIR}/{entry_point}"],
            "ContainerArguments": arguments,
        },
        "Environment": {"PYTHONUNBUFFERED": "1"},
        "RoleArn": role_arn,
        **(network or {}),
        "Tags": [{"Key": k, "Value": v} for k, v in sorted((tags or {}).items())],
    }


def model_package_group_request(group: str, description: str) -> dict[str, Any]:
    """CreateModelPackageGroup."""
    return {"ModelPackageGroupName": group, "ModelPackageGroupDescription": description[:1024]}


def model_package_request(
    config: PipelineConfig,
    *,
    image_uri: str,
    model_data_url: str,
    evaluation_uri: str,
    description: str,
    metadata: dict[str, str],
    training_job_arn: str | None = None,
) -> dict[str, Any]:
    """CreateModelPackage (a version in the group) with ModelMetrics pointing at evaluation.json."""
    registry = config.registry
    request: dict[str, Any] = {
        "ModelPackageGroupName": registry.model_package_group,
        "ModelPackageDescription": description[:1024],
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": image_uri,
                    "ModelDataUrl": model_data_url,
                    "Environment": {
                        "SAGEMAKER_PROGRAM": "inference.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                    },
                }
            ],
            "SupportedContentTypes": list(registry.content_types),
            "SupportedResponseMIMETypes": list(registry.content_types),
            "SupportedRealtimeInferenceInstanceTypes": list(registry.inference_instance_types),
            "SupportedTransformInstanceTypes": list(registry.inference_instance_types),
        },
        "ModelApprovalStatus": APPROVAL[registry.approval_policy],
        "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}}},
        # SageMaker rejects empty values (length 1..256): omit keys without one (e.g. no champion yet).
        "CustomerMetadataProperties": {k: str(v)[:256] for k, v in sorted(metadata.items()) if str(v)},
    }
    if training_job_arn:
        request["MetadataProperties"] = {"GeneratedBy": training_job_arn[:1024]}
    return request


def update_approval_request(model_package_arn: str, status: str, description: str | None = None) -> dict[str, Any]:
    """UpdateModelPackage changing the approval status (Approved | Rejected | PendingManualApproval)."""
    if status not in ("Approved", "Rejected", "PendingManualApproval"):
        raise ValueError(f"approval status {status!r} must be Approved, Rejected or PendingManualApproval")
    request = {"ModelPackageArn": model_package_arn, "ModelApprovalStatus": status}
    if description:
        request["ApprovalDescription"] = description[:1024]
    return request
