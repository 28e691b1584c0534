"""The serving stage on the aws target: the provider's SageMaker operators, the Model Registry and Runtime.

CreateModel and CreateEndpointConfig are idempotent per run (names come from the run, so a retry
finds what it created); the endpoint step fails when SageMaker rolled a blue/green update back.
The mlops_deploy DAG's doc_md says what each step does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointConfigOperator,
    SageMakerEndpointOperator,
    SageMakerModelOperator,
    serialize,
)

from mlops_airflow.operators.aws_hooks import describe_or_none
from mlops_airflow.operators.serving import (
    PromoteWinnerStep,
    ResolveModelStep,
    SmokeTestStep,
    StageTargetModelsStep,
)
from mlops_airflow.operators.training_aws import SageMakerRegistryOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class AwsResolveDeployModelOperator(ResolveModelStep, SageMakerRegistryOperator):
    """aws ``resolve_model``: the SageMaker Model Registry of the task's connection."""

    template_fields: Sequence[str] = (*AwsBaseOperator.template_fields, *ResolveModelStep.template_fields)


class AwsSageMakerModelOperator(SageMakerModelOperator):
    """aws ``create_model``: the provider's CreateModel; the model this run already created is reused."""

    def execute(self, context: Context) -> dict[str, Any]:
        existing = describe_or_none(self.hook.describe_model, self.config["ModelName"])
        if existing is None:
            return super().execute(context)
        self.log.info("model %s exists (re-run); reusing it", self.config["ModelName"])
        return {"Model": serialize(existing)}


class AwsSageMakerEndpointConfigOperator(SageMakerEndpointConfigOperator):
    """aws ``create_endpoint_config``: the provider's CreateEndpointConfig, idempotent per run."""

    def execute(self, context: Context) -> dict[str, Any]:
        existing = describe_or_none(self.hook.describe_endpoint_config, self.config["EndpointConfigName"])
        return super().execute(context) if existing is None else {"EndpointConfig": serialize(existing)}


class AwsSageMakerEndpointOperator(SageMakerEndpointOperator):
    """aws ``deploy_endpoint``: create, or blue/green update; fails if SageMaker rolled the update back."""

    def execute(self, context: Context) -> dict[str, Any]:
        return self._verify(super().execute(context))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._verify(super().execute_complete(context, event))

    def _verify(self, result: dict[str, Any]) -> dict[str, Any]:
        wanted = self.config.get("Endpoint", self.config)["EndpointConfigName"]
        endpoint = result["Endpoint"]
        if endpoint.get("EndpointConfigName") != wanted:
            raise RuntimeError(
                f"endpoint {endpoint.get('EndpointName')} still runs {endpoint.get('EndpointConfigName')}"
                f": the update to {wanted} was rolled back ({endpoint.get('FailureReason')})"
            )
        return result


class AwsStageTargetModelsOperator(StageTargetModelsStep, AwsBaseOperator[S3Hook]):
    """aws ``stage_target_models``: S3 CopyObject (server-side) of each package under the multi-model prefix."""

    aws_hook_class = S3Hook
    template_fields: Sequence[str] = (*AwsBaseOperator.template_fields, *StageTargetModelsStep.template_fields)

    def copy(self, source: str, target: str) -> None:
        from mlops.aws.endpoint_requests import copy_object_request

        self.hook.conn.copy_object(**copy_object_request(source, target))


class AwsEndpointSmokeTestOperator(SmokeTestStep, AwsBaseOperator[SageMakerHook]):
    """aws ``smoke_test``: the sagemaker-runtime client of the task's connection."""

    aws_hook_class = SageMakerHook
    template_fields: Sequence[str] = (*AwsBaseOperator.template_fields, *SmokeTestStep.template_fields)

    def runtime(self) -> tuple[Any, str, dict[str, Any]]:
        runtime = AwsBaseHook(
            aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type="sagemaker-runtime"
        ).conn
        description = self.hook.conn.describe_endpoint(EndpointName=self.endpoint_name)
        url = f"{runtime.meta.endpoint_url}/endpoints/{self.endpoint_name}/invocations"
        return runtime, url, serialize(description)

    def read_archive(self, model_data_url: str) -> bytes:
        hook = S3Hook(aws_conn_id=self.aws_conn_id)
        bucket, key = hook.parse_s3_url(model_data_url)
        return hook.get_key(key, bucket).get()["Body"].read()


class AwsPromoteWinnerOperator(PromoteWinnerStep, AwsBaseOperator[SageMakerHook]):
    """aws ``promote_winner``: UpdateEndpointWeightsAndCapacities through the task connection's SageMaker client."""

    aws_hook_class = SageMakerHook
    template_fields: Sequence[str] = (*AwsBaseOperator.template_fields, *PromoteWinnerStep.template_fields)

    def update_weights(self, request: dict[str, Any]) -> None:
        self.hook.conn.update_endpoint_weights_and_capacities(**request)
