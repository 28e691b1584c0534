"""The training stage on the aws target: the provider's SageMaker operators and the SageMaker Model Registry.

Each class is its step's shared class (:mod:`.training`) plus a provider operator; the mlops_train
DAG's doc_md says what each step does. Image URIs come from :mod:`mlops.aws.framework_images` (a
table sagemaker-core wrote at build time); nothing imports the SageMaker SDK at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerProcessingOperator,
    SageMakerTrainingOperator,
    serialize,
)
from airflow.sdk.exceptions import AirflowFailException

from mlops_airflow.operators.aws_hooks import S3ThroughHook, describe_or_none
from mlops_airflow.operators.training import JOB_KEYS, FindChampionStep, RegisterModelStep, SageMakerJobStep
from mlops_airflow.rendered import as_dict

if TYPE_CHECKING:
    from airflow.sdk import Context


def require_role(config: dict[str, Any]) -> None:
    """Fail at once when the request still carries the local stand-in's placeholder role."""
    from mlops.training.steps import LOCAL_ROLE_ARN

    if config.get("RoleArn") == LOCAL_ROLE_ARN:
        raise AirflowFailException(
            "training.role_arn is not set: put the SageMaker execution role ARN (CloudFormation output) in "
            "include/pipeline.yaml or MLOPS__TRAINING__ROLE_ARN"
        )


class AwsSageMakerJobStep(SageMakerJobStep):
    """Cache check, then the provider's operator (deferrable); a Completed job of the same name is reused.

    Comes before the provider's operator class in a subclass's bases: its ``execute`` wraps theirs.
    """

    hook: SageMakerHook

    def describe_existing(self) -> dict[str, Any] | None:
        """The job of this name, if a retry of this run already created it."""
        describe = self.hook.describe_training_job if self.kind == "training" else self.hook.describe_processing_job
        return describe_or_none(describe, self.job_name())

    def execute(self, context: Context) -> dict[str, Any]:
        self.config = as_dict(self.config)
        require_role(self.config)
        cached, key, prints = self.lookup()
        if cached is not None:
            return self.finish(cached, key, prints, hit=True)
        existing = self.describe_existing()
        if existing is not None:
            status = existing[JOB_KEYS[self.kind][2]]
            if status != "Completed":
                raise AirflowFailException(
                    f"SageMaker {self.kind} job {self.job_name()} already exists with status {status}; "
                    "job names come from the run, so start a new DAG run to train again"
                )
            self.log.info("%s job %s already completed (a retry of this run); reusing it", self.kind, self.job_name())
            return self.finish(serialize(existing), key, prints, hit=False)
        result = super().execute(context)  # defers when deferrable; then execute_complete runs
        return self.finish(result[JOB_KEYS[self.kind][0]], key, prints, hit=False)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        self.config = as_dict(self.config)
        result = super().execute_complete(context, event)
        key, prints = self.cache_key()
        return self.finish(result[JOB_KEYS[self.kind][0]], key, prints, hit=False)


class AwsTrainingJobOperator(AwsSageMakerJobStep, SageMakerTrainingOperator, S3ThroughHook):
    """aws ``train``: the provider's SageMakerTrainingOperator, deferrable, with step caching."""

    kind = "training"
    template_fields: Sequence[str] = (*SageMakerTrainingOperator.template_fields, "force")
    # the job of this run's name is checked (and reused when Completed) before creating it
    provider_defaults = {"deferrable": True, "check_if_job_exists": False}


class AwsProcessingJobOperator(AwsSageMakerJobStep, SageMakerProcessingOperator, S3ThroughHook):
    """aws ``evaluate``, ``baseline_job``, ``drift_job``: the provider's SageMakerProcessingOperator, deferrable,
    with step caching."""

    kind = "processing"
    template_fields: Sequence[str] = (*SageMakerProcessingOperator.template_fields, "force")
    provider_defaults = {"deferrable": True, "action_if_job_exists": "fail"}


class SageMakerRegistryOperator(AwsBaseOperator[SageMakerHook], S3ThroughHook):
    """The SageMaker Model Registry through the provider's SageMakerHook (also read by the serving stage)."""

    aws_hook_class = SageMakerHook

    def registry_client(self) -> Any:
        """The boto3 ``sagemaker`` client of the task's connection."""
        return self.hook.conn


class AwsFindChampionOperator(FindChampionStep, SageMakerRegistryOperator):
    """aws ``find_champion``: the newest Approved version in the SageMaker Model Registry."""

    template_fields: Sequence[str] = (*AwsBaseOperator.template_fields, *FindChampionStep.template_fields)


class AwsRegisterModelOperator(RegisterModelStep, SageMakerRegistryOperator):
    """aws ``register``: the gate, then CreateModelPackage in the SageMaker Model Registry."""

    template_fields: Sequence[str] = (*AwsBaseOperator.template_fields, *RegisterModelStep.template_fields)
