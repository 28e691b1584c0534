"""Operators for the serving stage (DESIGN.md §1.1: one class per step and target, same arguments).

- ``sagemaker_model``: aws ``AwsSageMakerModelOperator`` (the provider's SageMakerModelOperator,
  idempotent per run); local :class:`LocalSageMakerModelOperator`.
- ``sagemaker_endpoint_config``: aws ``AwsSageMakerEndpointConfigOperator``; local
  :class:`LocalSageMakerEndpointConfigOperator`.
- ``sagemaker_endpoint``: aws ``AwsSageMakerEndpointOperator`` (the provider's
  SageMakerEndpointOperator, deferrable; fails when SageMaker rolled the update back); local
  :class:`LocalSageMakerEndpointOperator`.
- ``endpoint_smoke_test``: aws ``AwsEndpointSmokeTestOperator``; local
  :class:`LocalEndpointSmokeTestOperator`.

The aws classes subclass the Amazon provider's operators; they are built on first attribute
access (module ``__getattr__``) so a local run never imports the provider's SageMaker module.
The local classes execute the same request dicts with :class:`mlops.serving.manager.LocalSageMaker`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from mlops_airflow.assets import ENDPOINT_LIVE

if TYPE_CHECKING:
    from airflow.sdk import Context

AWS_ONLY_ARGS = (
    "aws_conn_id",
    "region_name",
    "verify",
    "botocore_config",
    "wait_for_completion",
    "check_interval",
    "max_ingestion_time",
    "deferrable",
)


def _local_sagemaker() -> Any:
    from mlops.serving.manager import LocalSageMaker
    from mlops_airflow.targets import pipeline_config

    return LocalSageMaker(pipeline_config().serving)


def _strip_local(request: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in request.items() if k not in ("CreationTime", "ModelArn", "EndpointConfigArn")}


class _LocalSageMakerOperator(BaseOperator):
    """Base of the local SageMaker operators: ``config`` is the request dict, AWS-only args are accepted."""

    template_fields: Sequence[str] = ("config",)
    template_fields_renderers = {"config": "json"}
    ui_color = "#ededed"

    def __init__(self, *, config: dict[str, Any], **kwargs: Any) -> None:
        self.aws_args = {name: kwargs.pop(name) for name in AWS_ONLY_ARGS if name in kwargs}
        super().__init__(**kwargs)
        self.config = config


class LocalSageMakerModelOperator(_LocalSageMakerOperator):
    """local ``sagemaker_model``: CreateModel on the local stand-in (re-running the same run reuses it)."""

    def execute(self, context: Context) -> dict[str, Any]:
        sagemaker = _local_sagemaker()
        name = self.config["ModelName"]
        if sagemaker.store.exists("models", name):
            if _strip_local(sagemaker.describe_model(name)) != self.config:
                raise ValueError(
                    f"model {name} exists with a different definition; names come from the run, so "
                    "clear this run's tasks or delete the model (`mlops` CLI)"
                )
            self.log.info("model %s already exists with the same definition; reusing it", name)
        else:
            sagemaker.create_model(**self.config)
            self.log.info("created model %s from %s", name, self.config["PrimaryContainer"]["ModelDataUrl"])
        return {"Model": sagemaker.describe_model(name)}


class LocalSageMakerEndpointConfigOperator(_LocalSageMakerOperator):
    """local ``sagemaker_endpoint_config``: CreateEndpointConfig on the local stand-in (idempotent per run)."""

    def execute(self, context: Context) -> dict[str, Any]:
        sagemaker = _local_sagemaker()
        name = self.config["EndpointConfigName"]
        if sagemaker.store.exists("endpoint-configs", name):
            if _strip_local(sagemaker.describe_endpoint_config(name)) != self.config:
                raise ValueError(f"endpoint config {name} exists with a different definition")
            self.log.info("endpoint config %s already exists; reusing it", name)
        else:
            sagemaker.create_endpoint_config(**self.config)
        return {"EndpointConfig": sagemaker.describe_endpoint_config(name)}


class LocalSageMakerEndpointOperator(_LocalSageMakerOperator):
    """local ``sagemaker_endpoint``: create the endpoint, or blue/green-update it when it exists.

    Takes the provider's arguments (``operation``, ``wait_for_completion``, ``check_interval``,
    ``max_ingestion_time``, ``deferrable``); the local update is synchronous: it returns when
    blue is terminated, and raises after an automatic rollback (blue keeps serving).
    """

    def __init__(self, *, config: dict[str, Any], operation: str = "create", **kwargs: Any) -> None:
        super().__init__(config=config, **kwargs)
        if operation.lower() not in ("create", "update"):
            raise ValueError('Invalid value! Argument operation has to be one of "create" and "update"')
        self.operation = operation.lower()

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from mlops.serving.errors import DeploymentError

        sagemaker = _local_sagemaker()
        for model in [self.config["Model"]] if "Model" in self.config else []:
            if not sagemaker.store.exists("models", model["ModelName"]):
                sagemaker.create_model(**model)
        if "EndpointConfig" in self.config and not sagemaker.store.exists(
            "endpoint-configs", self.config["EndpointConfig"]["EndpointConfigName"]
        ):
            sagemaker.create_endpoint_config(**self.config["EndpointConfig"])
        endpoint = dict(self.config.get("Endpoint", self.config))
        name = endpoint["EndpointName"]
        exists = sagemaker.store.exists("endpoints", name)
        try:
            if self.operation == "create" and not exists:
                self.log.info("creating endpoint %s on %s", name, endpoint["EndpointConfigName"])
                sagemaker.create_endpoint(**endpoint)
            else:
                if self.operation == "create":
                    self.log.warning(
                        "cannot create already existing endpoint %s, updating it with the given config instead", name
                    )
                    endpoint.pop("Tags", None)
                self.log.info(
                    "blue/green update of %s to %s: %s",
                    name,
                    endpoint["EndpointConfigName"],
                    json.dumps(endpoint.get("DeploymentConfig")),
                )
                sagemaker.update_endpoint(**endpoint)
        except DeploymentError as exc:  # failed or rolled back (blue serves): a retry would redeploy the same model
            raise AirflowFailException(str(exc)) from None
        described = sagemaker.describe_endpoint(name)
        self.log.info("endpoint %s is %s at %s", name, described["EndpointStatus"], described["LocalInvocationUrl"])
        return {
            "EndpointConfig": sagemaker.describe_endpoint_config(described["EndpointConfigName"]),
            "Endpoint": described,
        }


class EndpointSmokeTestOperator(BaseOperator):
    """Invoke the live endpoint through the SageMaker Runtime path, check the answer, emit ENDPOINT_LIVE.

    :param endpoint_name: the endpoint to call.
    :param model: the deployed model (``version``, ``model_data_url``, ``model_package_group``, ...).
    :param sample_request: a JSON request body (str or dict); empty = the package's
        ``input_example.json``, else a row built from its ``feature_spec.json``.
    """

    template_fields: Sequence[str] = ("endpoint_name", "model", "sample_request")

    def __init__(
        self,
        *,
        endpoint_name: str,
        model: dict[str, Any],
        sample_request: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [ENDPOINT_LIVE])
        self.aws_args = {name: kwargs.pop(name) for name in AWS_ONLY_ARGS if name in kwargs}
        super().__init__(**kwargs)
        self.endpoint_name = endpoint_name
        self.model = model
        self.sample_request = sample_request

    def runtime(self) -> tuple[Any, str, dict[str, Any]]:
        """(sagemaker-runtime client, invocation URL, DescribeEndpoint) of the target."""
        raise NotImplementedError

    def read_archive(self, model_data_url: str) -> bytes:
        raise NotImplementedError

    def replay_command(self, url: str, request: Any) -> str:
        """A shell command that sends ``request`` to the endpoint again (AWS CLI; the local class uses curl)."""
        body = json.dumps(request)
        return (
            f"aws sagemaker-runtime invoke-endpoint --endpoint-name {self.endpoint_name} --content-type "
            f"application/json --cli-binary-format raw-in-base64-out --body '{body}' /dev/stdout"
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.serving.runtime import check_predictions, invoke, sample_request

        request = self.sample_request
        if isinstance(request, str) and request.strip() and request.strip() != "None":
            request = json.loads(request)
        if not request:
            request = sample_request(self.read_archive(self.model["model_data_url"]))
        client, url, description = self.runtime()
        if description["EndpointStatus"] != "InService":
            raise RuntimeError(
                f"endpoint {self.endpoint_name} is {description['EndpointStatus']}: "
                f"{description.get('FailureReason') or 'see the deploy task log'}"
            )
        response = invoke(client, self.endpoint_name, request)
        rows = len(request["instances"]) if isinstance(request, dict) and "instances" in request else 1
        check_predictions(json.dumps(response["Body"]).encode(), rows)
        extra = {  # scalar keys first: the demo summary table shows the first few
            "invocation_url": url,
            "sample_request": json.dumps(request),
            "sample_response": json.dumps(response["Body"]),
            "replay": self.replay_command(url, request),
            "model_version": self.model.get("version"),
            "invoked_variant": response["InvokedProductionVariant"],
            "endpoint_name": self.endpoint_name,
            "endpoint_config_name": description["EndpointConfigName"],
            "model_package_group": self.model.get("model_package_group"),
            "model_data_url": self.model.get("model_data_url"),
            "variant_weights": {v["VariantName"]: v.get("CurrentWeight") for v in description["ProductionVariants"]},
        }
        self.log.info(
            "endpoint live: %s\nsample request: %s\nresponse (%s): %s",
            url,
            json.dumps(request),
            response["InvokedProductionVariant"],
            json.dumps(response["Body"]),
        )
        context["outlet_events"][ENDPOINT_LIVE].extra = extra
        return extra


class LocalEndpointSmokeTestOperator(EndpointSmokeTestOperator):
    """local ``endpoint_smoke_test``: boto3 sagemaker-runtime against the local router."""

    def runtime(self) -> tuple[Any, str, dict[str, Any]]:
        from mlops.serving.runtime import runtime_client

        description = _local_sagemaker().describe_endpoint(self.endpoint_name)
        return (
            runtime_client(f"http://127.0.0.1:{description['LocalPort']}"),
            description["LocalInvocationUrl"],
            description,
        )

    def read_archive(self, model_data_url: str) -> bytes:
        from mlops.serving.runtime import read_local_archive

        return read_local_archive(model_data_url)

    def replay_command(self, url: str, request: Any) -> str:
        from mlops.serving.runtime import replay_commands

        return replay_commands(url, self.endpoint_name, request)["curl"]


# ---- deploy-DAG helpers (plain functions called by the DAG's @task wrappers) ----------------------


class ResolveDeployModelOperator(BaseOperator):
    """Pick the model to deploy (:func:`mlops.serving.deploy_model.resolve_deploy_model`): approved only.

    :param model_version: a version of the group, or "latest approved".
    :param model_data_url: deploy the registered version of this artifact instead.
    :param model_package_group: defaults to ``registry.model_package_group``.
    :param champion_version: A/B: an approved version for the variants after the first (``serving.variants``).
    Returns ``{model_package_group, version, model_data_url, approval_status, model_package_arn}``, plus
    ``champion`` (the same keys) when a champion version is given.
    """

    template_fields: Sequence[str] = ("model_version", "model_data_url", "model_package_group", "champion_version")

    def __init__(
        self,
        *,
        model_version: str | int | None = None,
        model_data_url: str | None = None,
        model_package_group: str | None = None,
        champion_version: str | int | None = None,
        **kwargs: Any,
    ) -> None:
        self.aws_args = {name: kwargs.pop(name) for name in AWS_ONLY_ARGS if name in kwargs}
        super().__init__(**kwargs)
        self.model_version = model_version
        self.model_data_url = model_data_url
        self.model_package_group = model_package_group
        self.champion_version = champion_version

    def registry_client(self) -> Any:
        raise NotImplementedError

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from mlops.registry import list_packages
        from mlops.serving.deploy_model import NotDeployable, resolve_deploy_model
        from mlops_airflow.targets import pipeline_config

        group = self.model_package_group or pipeline_config().registry.model_package_group
        client = self.registry_client()
        try:
            model = resolve_deploy_model(
                group=group,
                packages=lambda: list_packages(group, client),
                event_extras=_registered_model_events(context),
                model_version=self.model_version,
                model_data_url=self.model_data_url or None,
            )
            if self.champion_version not in (None, "", "None"):  # A/B: the other variants serve this version
                model["champion"] = resolve_deploy_model(
                    group=group, packages=lambda: list_packages(group, client), model_version=self.champion_version
                )
        except NotDeployable as exc:  # a gate: retrying cannot approve the model
            raise AirflowFailException(str(exc)) from None
        self.log.info(
            "deploying %s v%s (%s): %s", group, model["version"], model["approval_status"], model["model_data_url"]
        )
        return model


class LocalResolveDeployModelOperator(ResolveDeployModelOperator):
    """local ``resolve_deploy_model``: the SQLite model registry."""

    def registry_client(self) -> Any:
        from mlops.registry import local_registry

        return local_registry()


def _registered_model_events(context: Context) -> list[dict[str, Any]]:
    """Extras of the registered-model events that triggered the run (none for a manual run)."""
    events = (context.get("triggering_asset_events") or {}).values()
    return [dict(e.extra or {}) for asset_events in events for e in asset_events]


def deployment_requests(model: dict[str, Any], context: Context) -> dict[str, Any]:
    """All requests of this deployment, built by :func:`mlops.aws.endpoint_requests.deploy_requests`."""
    from mlops.aws.endpoint_requests import deploy_requests
    from mlops_airflow.targets import lake, pipeline_config

    config = pipeline_config()
    params = context["params"]
    return deploy_requests(
        config,
        model_data_url=model["model_data_url"],
        model_version=model["version"],
        run_id=context["run_id"],
        image_uri=framework_image_uri(config),
        capture_uri=lake(config).capture(),
        strategy=params.get("strategy") or None,
        canary_percent=params.get("canary_percent") or None,
        bake_seconds=params.get("bake_seconds"),
        champion_model_data_url=(model.get("champion") or {}).get("model_data_url"),
    )


def framework_image_uri(config: Any) -> str:
    """The sklearn inference container for the region (the table sagemaker-core resolved at build time)."""
    from mlops.aws.framework_images import framework_image_uri as lookup

    return config.training.image_uri or lookup(config.serving.framework_version, config.aws.region, "inference")


# ---- aws classes, built lazily so local runs never import the provider's SageMaker module ---------


def _build_aws_classes() -> dict[str, type]:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.amazon.aws.operators.sagemaker import (
        SageMakerEndpointConfigOperator,
        SageMakerEndpointOperator,
        SageMakerModelOperator,
        serialize,
    )
    from botocore.exceptions import ClientError

    def _exists(describe: Any, name: str) -> dict[str, Any] | None:
        try:
            return describe(name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ValidationException":
                return None
            raise

    class AwsSageMakerModelOperator(SageMakerModelOperator):
        """aws ``sagemaker_model``: the provider's CreateModel; an existing model of this run is reused."""

        def execute(self, context: Context) -> dict[str, Any]:
            existing = _exists(self.hook.describe_model, self.config["ModelName"])
            if existing is not None:
                self.log.info("model %s exists (re-run); reusing it", self.config["ModelName"])
                return {"Model": serialize(existing)}
            return super().execute(context)

    class AwsSageMakerEndpointConfigOperator(SageMakerEndpointConfigOperator):
        """aws ``sagemaker_endpoint_config``: the provider's CreateEndpointConfig, idempotent per run."""

        def execute(self, context: Context) -> dict[str, Any]:
            existing = _exists(self.hook.describe_endpoint_config, self.config["EndpointConfigName"])
            if existing is not None:
                return {"EndpointConfig": serialize(existing)}
            return super().execute(context)

    class AwsSageMakerEndpointOperator(SageMakerEndpointOperator):
        """aws ``sagemaker_endpoint``: create or blue/green update; fails if SageMaker rolled it back."""

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

    class AwsEndpointSmokeTestOperator(EndpointSmokeTestOperator):
        """aws ``endpoint_smoke_test``: the sagemaker-runtime client of the AWS connection."""

        def runtime(self) -> tuple[Any, str, dict[str, Any]]:
            conn_id = self.aws_args.get("aws_conn_id", "aws_default")
            region = self.aws_args.get("region_name")
            runtime = AwsBaseHook(aws_conn_id=conn_id, region_name=region, client_type="sagemaker-runtime").conn
            sagemaker = AwsBaseHook(aws_conn_id=conn_id, region_name=region, client_type="sagemaker").conn
            description = sagemaker.describe_endpoint(EndpointName=self.endpoint_name)
            url = f"{runtime.meta.endpoint_url}/endpoints/{self.endpoint_name}/invocations"
            return runtime, url, serialize(description)

        def read_archive(self, model_data_url: str) -> bytes:
            hook = S3Hook(aws_conn_id=self.aws_args.get("aws_conn_id", "aws_default"))
            bucket, key = hook.parse_s3_url(model_data_url)
            return hook.get_key(key, bucket).get()["Body"].read()

    class AwsResolveDeployModelOperator(ResolveDeployModelOperator):
        """aws ``resolve_deploy_model``: the SageMaker Model Registry of the AWS connection."""

        def registry_client(self) -> Any:
            from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

            return SageMakerHook(aws_conn_id=self.aws_args.get("aws_conn_id", "aws_default")).conn

    classes = (
        AwsResolveDeployModelOperator,
        AwsSageMakerModelOperator,
        AwsSageMakerEndpointConfigOperator,
        AwsSageMakerEndpointOperator,
        AwsEndpointSmokeTestOperator,
    )
    for cls in classes:
        cls.__qualname__ = cls.__name__  # importable as mlops_airflow.operators.serving.<name>
    return {cls.__name__: cls for cls in classes}


_AWS_CLASSES: dict[str, type] = {}
AWS_CLASS_NAMES = (
    "AwsResolveDeployModelOperator",
    "AwsSageMakerModelOperator",
    "AwsSageMakerEndpointConfigOperator",
    "AwsSageMakerEndpointOperator",
    "AwsEndpointSmokeTestOperator",
)


def __getattr__(name: str) -> type:
    if name in AWS_CLASS_NAMES:
        if not _AWS_CLASSES:
            _AWS_CLASSES.update(_build_aws_classes())
        return _AWS_CLASSES[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
