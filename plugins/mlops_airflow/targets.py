"""The one target switch.

``MLOPS_TARGET`` (``local`` by default, or ``aws``) is read here and nowhere else. This module
maps each pipeline step to its operator class (the Amazon provider's on ``aws``, a local
stand-in on ``local``; both take the same arguments) and resolves the few target-dependent
values (the lake root and the DMS task ARN). DAG files ask for a step by its task id.
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

OPERATORS = "mlops_airflow.operators"
# SageMaker Processing: the evaluation job of mlops_train, both jobs of mlops_monitor, mlops_model_quality's job.
PROCESSING_JOB = (
    f"{OPERATORS}.training_aws:AwsProcessingJobOperator",
    f"{OPERATORS}.training_local:LocalProcessingJobOperator",
)

# step (= the task id in its DAG) -> (aws operator, local operator), as "module:Class": each target's
# classes live in their own module (<stage>_aws / <stage>_local), so only the chosen one is imported.
STEPS: dict[str, tuple[str, str]] = {
    # mlops_ingest
    "dms_sync": (
        f"{OPERATORS}.replication_aws:DmsReplicationReadySensor",
        f"{OPERATORS}.replication_local:LocalDmsSyncOperator",
    ),
    "check_replication": (
        f"{OPERATORS}.replication_aws:AwsReplicationCheckOperator",
        f"{OPERATORS}.replication_local:LocalReplicationCheckOperator",
    ),
    # mlops_features
    "build_features": (
        f"{OPERATORS}.features_aws:AwsGlueFeaturesJobOperator",
        f"{OPERATORS}.features_local:LocalGlueFeaturesJobOperator",
    ),
    "register_catalog": (
        f"{OPERATORS}.features_aws:AwsCatalogRegisterOperator",
        f"{OPERATORS}.features_local:LocalCatalogRegisterOperator",
    ),
    "eda_query": (
        f"{OPERATORS}.features_aws:AwsAthenaEdaQueryOperator",
        f"{OPERATORS}.features_local:LocalAthenaEdaQueryOperator",
    ),
    "eda_report": (
        f"{OPERATORS}.features:FeaturesEdaReportOperator",
        f"{OPERATORS}.features:FeaturesEdaReportOperator",
    ),
    "validate_features": (
        f"{OPERATORS}.features_aws:AwsValidateFeaturesJobOperator",
        f"{OPERATORS}.features_local:LocalValidateFeaturesOperator",
    ),
    # mlops_train
    "find_champion": (
        f"{OPERATORS}.training_aws:AwsFindChampionOperator",
        f"{OPERATORS}.training_local:LocalFindChampionOperator",
    ),
    "train": (
        f"{OPERATORS}.training_aws:AwsTrainingJobOperator",
        f"{OPERATORS}.training_local:LocalTrainingJobOperator",
    ),
    "evaluate": PROCESSING_JOB,
    "register": (
        f"{OPERATORS}.training_aws:AwsRegisterModelOperator",
        f"{OPERATORS}.training_local:LocalRegisterModelOperator",
    ),
    # mlops_deploy
    "resolve_model": (
        f"{OPERATORS}.serving_aws:AwsResolveDeployModelOperator",
        f"{OPERATORS}.serving_local:LocalResolveDeployModelOperator",
    ),
    "stage_target_models": (
        f"{OPERATORS}.serving_aws:AwsStageTargetModelsOperator",
        f"{OPERATORS}.serving_local:LocalStageTargetModelsOperator",
    ),
    "create_model": (
        f"{OPERATORS}.serving_aws:AwsSageMakerModelOperator",
        f"{OPERATORS}.serving_local:LocalSageMakerModelOperator",
    ),
    "create_endpoint_config": (
        f"{OPERATORS}.serving_aws:AwsSageMakerEndpointConfigOperator",
        f"{OPERATORS}.serving_local:LocalSageMakerEndpointConfigOperator",
    ),
    "deploy_endpoint": (
        f"{OPERATORS}.serving_aws:AwsSageMakerEndpointOperator",
        f"{OPERATORS}.serving_local:LocalSageMakerEndpointOperator",
    ),
    "smoke_test": (
        f"{OPERATORS}.serving_aws:AwsEndpointSmokeTestOperator",
        f"{OPERATORS}.serving_local:LocalEndpointSmokeTestOperator",
    ),
    # mlops_ab_test
    "ab_analysis_job": PROCESSING_JOB,
    "promote_winner": (
        f"{OPERATORS}.serving_aws:AwsPromoteWinnerOperator",
        f"{OPERATORS}.serving_local:LocalPromoteWinnerOperator",
    ),
    # mlops_monitor
    "baseline_job": PROCESSING_JOB,
    "wait_for_capture": (
        f"{OPERATORS}.monitoring_aws:AwsCaptureSensor",
        f"{OPERATORS}.monitoring_local:LocalCaptureSensor",
    ),
    "drift_job": PROCESSING_JOB,
    # mlops_model_quality
    "quality_job": PROCESSING_JOB,
}

# Not a step: what the UI plugin reads the lake, the registry and the endpoint with.
UI_BACKEND = ("mlops_airflow.ui.backends:AwsUiBackend", "mlops_airflow.ui.backends:LocalUiBackend")


class TargetError(ValueError):
    """MLOPS_TARGET or a step name is invalid."""


def current_target() -> Target:
    """The target this process runs against, validated."""
    value = os.environ.get(TARGET_ENV, "local").strip().lower() or "local"
    if value not in TARGETS:
        raise TargetError(f"{TARGET_ENV}={value!r} is not a target; set it to one of {', '.join(TARGETS)}")
    return value  # type: ignore[return-value]


def step_operator(step: str) -> type:
    """The operator class that runs ``step`` (a task id) on the current target."""
    try:
        aws_path, local_path = STEPS[step]
    except KeyError:
        raise TargetError(f"unknown pipeline step {step!r}; known steps: {', '.join(sorted(STEPS))}") from None
    return _for_target(aws_path, local_path)


def ui_backend_class() -> type:
    """The UI plugin's reader class on the current target."""
    return _for_target(*UI_BACKEND)


def _for_target(aws_path: str, local_path: str) -> type:
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
