"""Local stand-ins of the serving stage: the same request dicts, executed by the local SageMaker stand-in.

:class:`mlops.serving.manager.LocalSageMaker` records models and endpoint configs and runs the
endpoint as model-server and router processes on 127.0.0.1 (blue/green with health check and
rollback); the registry is the training stage's SQLite one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from mlops_airflow.operators.base import AWS_CONNECTION, DEFERRAL, SAGEMAKER_JOB, LocalSageMakerStandIn, LocalStandIn
from mlops_airflow.operators.serving import (
    PromoteWinnerStep,
    ResolveModelStep,
    SmokeTestStep,
    StageTargetModelsStep,
)
from mlops_airflow.operators.training_local import SqliteRegistry

if TYPE_CHECKING:
    from airflow.sdk import Context

LOCAL_ONLY_FIELDS = ("CreationTime", "ModelArn", "EndpointConfigArn")  # what the stand-in adds to a description


def local_sagemaker() -> Any:
    from mlops.serving.manager import LocalSageMaker
    from mlops_airflow.targets import pipeline_config

    return LocalSageMaker(pipeline_config().serving)


class LocalResolveDeployModelOperator(ResolveModelStep, LocalStandIn, SqliteRegistry):
    """local ``resolve_model``: the SQLite model registry."""


class LocalCreateOnce(LocalSageMakerStandIn):
    """Create a resource from the request once; a re-run of the run reuses it if its definition is the same."""

    def create_once(self, kind: str, name: str, describe: Callable[[str], Any], create: Callable[..., Any]) -> None:
        sagemaker = local_sagemaker()
        if not sagemaker.store.exists(kind, name):
            create(**self.config)
            return
        if {k: v for k, v in describe(name).items() if k not in LOCAL_ONLY_FIELDS} != self.config:
            raise ValueError(
                f"{name} ({kind}) exists with a different definition; names come from the run, so clear this "
                "run's tasks or delete it (`mlops` CLI)"
            )
        self.log.info("%s %s already exists with the same definition; reusing it", kind, name)


class LocalSageMakerModelOperator(LocalCreateOnce):
    """local ``create_model``: CreateModel on the local stand-in."""

    def execute(self, context: Context) -> dict[str, Any]:
        sagemaker, name = local_sagemaker(), self.config["ModelName"]
        self.create_once("models", name, sagemaker.describe_model, sagemaker.create_model)
        self.log.info("model %s from %s", name, self.config["PrimaryContainer"]["ModelDataUrl"])
        return {"Model": sagemaker.describe_model(name)}


class LocalSageMakerEndpointConfigOperator(LocalCreateOnce):
    """local ``create_endpoint_config``: CreateEndpointConfig on the local stand-in."""

    def execute(self, context: Context) -> dict[str, Any]:
        sagemaker, name = local_sagemaker(), self.config["EndpointConfigName"]
        self.create_once("endpoint-configs", name, sagemaker.describe_endpoint_config, sagemaker.create_endpoint_config)
        return {"EndpointConfig": sagemaker.describe_endpoint_config(name)}


class LocalSageMakerEndpointOperator(LocalSageMakerStandIn):
    """local ``deploy_endpoint``: create the endpoint, or blue/green-update it when it exists.

    The local update is synchronous: it returns when blue is terminated, and raises after an automatic
    rollback (blue keeps serving).
    """

    ignored_provider_args = (*AWS_CONNECTION, *DEFERRAL, *SAGEMAKER_JOB)

    def __init__(self, *, config: dict[str, Any], operation: str = "create", **kwargs: Any) -> None:
        super().__init__(config=config, **kwargs)
        if operation.lower() not in ("create", "update"):
            raise ValueError('Invalid value! Argument operation has to be one of "create" and "update"')
        self.operation = operation.lower()

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.serving.errors import DeploymentError

        sagemaker = local_sagemaker()
        self.create_dependencies(sagemaker)
        endpoint = dict(self.config.get("Endpoint", self.config))
        name = endpoint["EndpointName"]
        try:
            self.deploy(sagemaker, endpoint)
        except DeploymentError as exc:  # failed or rolled back (blue serves): a retry would redeploy the same model
            raise AirflowFailException(str(exc)) from None
        described = sagemaker.describe_endpoint(name)
        self.log.info("endpoint %s is %s at %s", name, described["EndpointStatus"], described["LocalInvocationUrl"])
        return {
            "EndpointConfig": sagemaker.describe_endpoint_config(described["EndpointConfigName"]),
            "Endpoint": described,
        }

    def create_dependencies(self, sagemaker: Any) -> None:
        """The model and endpoint config a combined request (``Model``/``EndpointConfig`` keys) brings along."""
        for model in [self.config["Model"]] if "Model" in self.config else []:
            if not sagemaker.store.exists("models", model["ModelName"]):
                sagemaker.create_model(**model)
        if "EndpointConfig" in self.config and not sagemaker.store.exists(
            "endpoint-configs", self.config["EndpointConfig"]["EndpointConfigName"]
        ):
            sagemaker.create_endpoint_config(**self.config["EndpointConfig"])

    def deploy(self, sagemaker: Any, endpoint: dict[str, Any]) -> None:
        """CreateEndpoint, or (the endpoint exists, or ``operation="update"``) a blue/green UpdateEndpoint."""
        name = endpoint["EndpointName"]
        if self.operation == "create" and not sagemaker.store.exists("endpoints", name):
            self.log.info("creating endpoint %s on %s", name, endpoint["EndpointConfigName"])
            sagemaker.create_endpoint(**endpoint)
            return
        if self.operation == "create":
            self.log.warning("cannot create already existing endpoint %s, updating it with the given config", name)
            endpoint.pop("Tags", None)
        self.log.info(
            "blue/green update of %s to %s: %s",
            name,
            endpoint["EndpointConfigName"],
            json.dumps(endpoint.get("DeploymentConfig")),
        )
        sagemaker.update_endpoint(**endpoint)


class LocalStageTargetModelsOperator(StageTargetModelsStep, LocalStandIn):
    """local ``stage_target_models``: copy each package under the local lake's multi-model prefix."""

    def copy(self, source: str, target: str) -> None:
        import shutil

        from mlops.lake import local_path

        package, destination = local_path(source), local_path(target)
        if not package.is_file():
            raise FileNotFoundError(f"model package {source} does not exist; check the version's ModelDataUrl")
        destination.parent.mkdir(parents=True, exist_ok=True)
        staged = destination.with_name(f".{destination.name}.tmp")
        shutil.copyfile(package, staged)
        staged.replace(destination)  # a model server never sees half a package


class LocalEndpointSmokeTestOperator(SmokeTestStep, LocalStandIn):
    """local ``smoke_test``: boto3's sagemaker-runtime client against the local router."""

    def runtime(self) -> tuple[Any, str, dict[str, Any]]:
        from mlops.serving.runtime import runtime_client

        description = local_sagemaker().describe_endpoint(self.endpoint_name)
        return (
            runtime_client(f"http://127.0.0.1:{description['LocalPort']}"),
            description["LocalInvocationUrl"],
            description,
        )

    def read_archive(self, model_data_url: str) -> bytes:
        from mlops.serving.runtime import read_local_archive

        return read_local_archive(model_data_url)

    def replay_command(self, url: str, request: Any, target_model: str | None = None) -> str:
        from mlops.serving.runtime import replay_commands

        return replay_commands(url, self.endpoint_name, request, target_model)["curl"]


class LocalPromoteWinnerOperator(PromoteWinnerStep, LocalStandIn):
    """local ``promote_winner``: the same request on the local endpoint (the router's weights change at once)."""

    def update_weights(self, request: dict[str, Any]) -> None:
        local_sagemaker().update_endpoint_weights_and_capacities(**request)
