"""The one target switch (DESIGN.md §1.1).

``MLOPS_TARGET`` (``local`` by default, or ``aws``) is read here and nowhere else. This module
maps each pipeline step to its operator class (the Amazon provider's on ``aws``, a local
stand-in on ``local``; both take the same arguments) and resolves the few target-dependent
values (the lake root and the DMS task ARN). DAG files ask for steps by name.
"""

from __future__ import annotations

import importlib
import os
from functools import cache
from typing import Literal

from mlops.config import PipelineConfig, load_config
from mlops.lake import Lake

Target = Literal["local", "aws"]
TARGET_ENV = "MLOPS_TARGET"
TARGETS: tuple[Target, ...] = ("local", "aws")

# step name -> (aws operator, local operator), as "module:Class" so only the chosen one imports.
STEPS: dict[str, tuple[str, str]] = {
    "capture_sensor": (
        "mlops_airflow.operators.monitoring:AwsCaptureSensor",
        "mlops_airflow.operators.monitoring:LocalCaptureSensor",
    ),
    "sagemaker_training": (
        "mlops_airflow.operators.training:AwsTrainingJobOperator",
        "mlops_airflow.operators.training:LocalTrainingJobOperator",
    ),
    "sagemaker_processing": (
        "mlops_airflow.operators.training:AwsProcessingJobOperator",
        "mlops_airflow.operators.training:LocalProcessingJobOperator",
    ),
    "find_champion": (
        "mlops_airflow.operators.training:AwsFindChampionOperator",
        "mlops_airflow.operators.training:LocalFindChampionOperator",
    ),
    "register_model": (
        "mlops_airflow.operators.training:AwsRegisterModelOperator",
        "mlops_airflow.operators.training:LocalRegisterModelOperator",
    ),
    "dms_sync": (
        "mlops_airflow.operators.replication_aws:DmsReplicationReadySensor",
        "mlops_airflow.operators.replication_local:LocalDmsSyncOperator",
    ),
    "replication_check": (
        "mlops_airflow.operators.replication_aws:AwsReplicationCheckOperator",
        "mlops_airflow.operators.replication_local:LocalReplicationCheckOperator",
    ),
    "resolve_deploy_model": (
        "mlops_airflow.operators.serving:AwsResolveDeployModelOperator",
        "mlops_airflow.operators.serving:LocalResolveDeployModelOperator",
    ),
    "sagemaker_model": (
        "mlops_airflow.operators.serving:AwsSageMakerModelOperator",
        "mlops_airflow.operators.serving:LocalSageMakerModelOperator",
    ),
    "sagemaker_endpoint_config": (
        "mlops_airflow.operators.serving:AwsSageMakerEndpointConfigOperator",
        "mlops_airflow.operators.serving:LocalSageMakerEndpointConfigOperator",
    ),
    "sagemaker_endpoint": (
        "mlops_airflow.operators.serving:AwsSageMakerEndpointOperator",
        "mlops_airflow.operators.serving:LocalSageMakerEndpointOperator",
    ),
    "endpoint_smoke_test": (
        "mlops_airflow.operators.serving:AwsEndpointSmokeTestOperator",
        "mlops_airflow.operators.serving:LocalEndpointSmokeTestOperator",
    ),
    "glue_etl": (
        "mlops_airflow.operators.features:AwsGlueFeaturesJobOperator",
        "mlops_airflow.operators.features:LocalGlueFeaturesJobOperator",
    ),
    "catalog_register": (
        "mlops_airflow.operators.features:GlueCatalogRegisterOperator",
        "mlops_airflow.operators.features:LocalCatalogRegisterOperator",
    ),
    "athena_eda": (
        "mlops_airflow.operators.features:AwsAthenaEdaQueryOperator",
        "mlops_airflow.operators.features:LocalAthenaEdaQueryOperator",
    ),
    "eda_report": (
        "mlops_airflow.operators.features:FeaturesEdaReportOperator",
        "mlops_airflow.operators.features:FeaturesEdaReportOperator",
    ),
    "validate_features": (
        "mlops_airflow.operators.features:AwsValidateFeaturesJobOperator",
        "mlops_airflow.operators.features:LocalValidateFeaturesOperator",
    ),
    # not an operator: what the UI plugin reads the lake, the registry and the endpoint with
    "ui_backend": ("mlops_airflow.ui.backends:AwsUiBackend", "mlops_airflow.ui.backends:LocalUiBackend"),
}


class TargetError(ValueError):
    """MLOPS_TARGET or a step name is invalid."""


def current_target() -> Target:
    """The target this process runs against, validated."""
    value = os.environ.get(TARGET_ENV, "local").strip().lower() or "local"
    if value not in TARGETS:
        raise TargetError(f"{TARGET_ENV}={value!r} is not a target; set it to one of {', '.join(TARGETS)}")
    return value  # type: ignore[return-value]


def step_operator(step: str) -> type:
    """The operator class that runs ``step`` on the current target."""
    try:
        aws_path, local_path = STEPS[step]
    except KeyError:
        raise TargetError(f"unknown pipeline step {step!r}; known steps: {', '.join(sorted(STEPS))}") from None
    module_name, _, class_name = (aws_path if current_target() == "aws" else local_path).partition(":")
    return getattr(importlib.import_module(module_name), class_name)


@cache
def pipeline_config() -> PipelineConfig:
    """The validated pipeline config (loaded once per process, at task run time)."""
    return load_config()


def lake(config: PipelineConfig | None = None) -> Lake:
    """The lake of the current target."""
    return Lake.for_target(config or pipeline_config(), current_target())


def replication_task_arn(config: PipelineConfig | None = None) -> str:
    """ARN of the DMS replication task: from config on aws, a local ARN on local."""
    config = config or pipeline_config()
    if current_target() == "aws":
        if not config.aws.dms_replication_task_arn:
            raise TargetError(
                "aws.dms_replication_task_arn is not set; put the stack's ReplicationTaskArn output in "
                "include/pipeline.yaml or MLOPS__AWS__DMS_REPLICATION_TASK_ARN"
            )
        return config.aws.dms_replication_task_arn
    from mlops.replication.status import local_task_arn

    return local_task_arn(config.replication.task_id)
