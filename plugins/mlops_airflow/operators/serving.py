"""The serving stage's step classes: which model to deploy, and the smoke test of the live endpoint.

What each step does on each target is told once, in the mlops_deploy DAG's doc_md
(``dags/mlops_deploy.py``). The aws classes (the provider's SageMaker operators and these steps on
the SageMaker Model Registry and Runtime) are in :mod:`.serving_aws`; the local stand-ins, which
execute the same request dicts with :class:`mlops.serving.manager.LocalSageMaker`, in
:mod:`.serving_local`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from mlops_airflow.assets import ENDPOINT_LIVE, triggering_events
from mlops_airflow.operators.base import StepOperator
from mlops_airflow.rendered import as_json, is_unset

if TYPE_CHECKING:
    from airflow.sdk import Context


def registered_model_events(context: Context) -> list[dict[str, Any]]:
    """Extras of the registered-model events that triggered the run, oldest first (none for a manual run)."""
    return [extra for _, extra in triggering_events(context)]


class ResolveModelStep(StepOperator):
    """``resolve_model``: the model to deploy (:func:`mlops.serving.deploy_model.resolve_deploy_model`); approved only.

    :param model_version: a version of the group, or "latest approved".
    :param model_data_url: deploy the registered version of this artifact instead.
    :param model_package_group: defaults to ``registry.model_package_group``.
    :param champion_version: A/B: an approved version for the variants after the first (``serving.variants``).
    Returns ``{model_package_group, version, model_data_url, approval_status, model_package_arn}``, plus
    ``champion`` (the same keys) when a champion version is given.
    """

    template_fields: Sequence[str] = ("model_version", "model_data_url", "model_package_group", "champion_version")
    registry_client: Callable[[], Any]

    def __init__(
        self,
        *,
        model_version: str | int | None = None,
        model_data_url: str | None = None,
        model_package_group: str | None = None,
        champion_version: str | int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_version, self.model_data_url = model_version, model_data_url
        self.model_package_group, self.champion_version = model_package_group, champion_version

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.registry import list_packages
        from mlops.serving.deploy_model import NotDeployable, resolve_deploy_model
        from mlops_airflow.targets import pipeline_config

        group = self.model_package_group or pipeline_config().registry.model_package_group
        client = self.registry_client()
        try:
            model = resolve_deploy_model(
                group=group,
                packages=lambda: list_packages(group, client),
                event_extras=registered_model_events(context),
                model_version=self.model_version,
                model_data_url=None if is_unset(self.model_data_url) else self.model_data_url,
            )
            if not is_unset(self.champion_version):  # A/B: the other variants serve this version
                model["champion"] = resolve_deploy_model(
                    group=group, packages=lambda: list_packages(group, client), model_version=self.champion_version
                )
        except NotDeployable as exc:  # a gate: retrying cannot approve the model
            raise AirflowFailException(str(exc)) from None
        self.log.info(
            "deploying %s v%s (%s): %s", group, model["version"], model["approval_status"], model["model_data_url"]
        )
        return model


class StageTargetModelsStep(StepOperator):
    """``stage_target_models``: a multi-model deployment copies its versions under the endpoint's model prefix.

    :param target_models: ``[{source, target, target_model}]`` from
        :func:`mlops.aws.endpoint_requests.deploy_requests` (empty for a single-model endpoint: nothing to do).
    Returns the ``TargetModel`` names now under the prefix, the deployed version first.
    """

    template_fields: Sequence[str] = ("target_models",)

    def __init__(self, *, target_models: list[dict[str, str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_models = target_models

    def copy(self, source: str, target: str) -> None:
        """Copy one model package (a target-specific class does the I/O)."""
        raise NotImplementedError

    def execute(self, context: Context) -> list[str]:
        if not self.target_models:
            self.log.info("single-model endpoint (serving.mode: single): no target models to stage")
            return []
        for item in self.target_models:
            self.copy(item["source"], item["target"])
            self.log.info("target model %s: %s -> %s", item["target_model"], item["source"], item["target"])
        return [item["target_model"] for item in self.target_models]


class SmokeTestStep(StepOperator):
    """``smoke_test``: invoke the live endpoint (SageMaker Runtime path), check the answer, emit ENDPOINT_LIVE.

    :param endpoint_name: the endpoint to call.
    :param model: the deployed model (``version``, ``model_data_url``, ``model_package_group``, ...).
    :param sample_request: a JSON request body (str or dict); empty = the package's
        ``input_example.json``, else a row built from its ``feature_spec.json``.
    :param target_models: on a multi-model endpoint, the staged target models; the first (the deployed
        version) is invoked with ``TargetModel``.
    """

    template_fields: Sequence[str] = ("endpoint_name", "model", "sample_request", "target_models")

    def __init__(
        self,
        *,
        endpoint_name: str,
        model: dict[str, Any],
        sample_request: str | dict[str, Any] | None = None,
        target_models: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [ENDPOINT_LIVE])
        super().__init__(**kwargs)
        self.endpoint_name, self.model, self.sample_request = endpoint_name, model, sample_request
        self.target_models = target_models

    def runtime(self) -> tuple[Any, str, dict[str, Any]]:
        """(sagemaker-runtime client, invocation URL, DescribeEndpoint) of the target."""
        raise NotImplementedError

    def read_archive(self, model_data_url: str) -> bytes:
        raise NotImplementedError

    def replay_command(self, url: str, request: Any, target_model: str | None = None) -> str:
        """A shell command that sends ``request`` to the endpoint again (AWS CLI; the local class uses curl)."""
        body = json.dumps(request)
        target = f" --target-model {target_model}" if target_model else ""
        return (
            f"aws sagemaker-runtime invoke-endpoint --endpoint-name {self.endpoint_name}{target} --content-type "
            f"application/json --cli-binary-format raw-in-base64-out --body '{body}' /dev/stdout"
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.serving.runtime import check_predictions, invoke, sample_request

        request = as_json(self.sample_request) or sample_request(self.read_archive(self.model["model_data_url"]))
        client, url, description = self.runtime()
        if description["EndpointStatus"] != "InService":
            raise RuntimeError(
                f"endpoint {self.endpoint_name} is {description['EndpointStatus']}: "
                f"{description.get('FailureReason') or 'see the deploy task log'}"
            )
        target_model = (as_json(self.target_models) or [None])[0]
        response = invoke(client, self.endpoint_name, request, target_model=target_model)
        rows = len(request["instances"]) if isinstance(request, dict) and "instances" in request else 1
        check_predictions(json.dumps(response["Body"]).encode(), rows)
        extra = self.live_event(url, request, response, description)
        if target_model:
            extra["target_model"] = target_model
            extra["replay"] = self.replay_command(url, request, target_model)
        self.log.info(
            "endpoint live: %s\nsample request: %s\nresponse (%s): %s",
            url,
            json.dumps(request),
            response["InvokedProductionVariant"],
            json.dumps(response["Body"]),
        )
        context["outlet_events"][ENDPOINT_LIVE].extra = extra
        return extra

    def live_event(
        self, url: str, request: Any, response: dict[str, Any], description: dict[str, Any]
    ) -> dict[str, Any]:
        """The ENDPOINT_LIVE event's extra; scalar keys first (the demo summary table shows the first few)."""
        return {
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


class PromoteWinnerStep(StepOperator):
    """``promote_winner``: act on the A/B decision: all traffic to the winner, or nothing when the champion stays.

    :param decision: ``decide_ab_test``'s result (``action``, ``winner``, ``loser``, ``endpoint_name``, ``reason``,
        ``report_uri``); the request is :func:`mlops.aws.ab_test_requests.promotion_request`.
    Returns the decision with ``promoted`` and, when promoted, the request sent.
    """

    template_fields: Sequence[str] = ("decision",)

    def __init__(self, *, decision: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decision = decision

    def update_weights(self, request: dict[str, Any]) -> None:
        """UpdateEndpointWeightsAndCapacities (a target-specific class makes the call)."""
        raise NotImplementedError

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.aws.ab_test_requests import promotion_request
        from mlops.serving.ab_decision import PROMOTE

        decision = as_json(self.decision)
        self.log.info("A/B decision: %s", decision["reason"])
        if decision["action"] != PROMOTE:
            return {**decision, "promoted": False}
        request = promotion_request(decision["endpoint_name"], winner=decision["winner"], loser=decision["loser"])
        self.update_weights(request)
        self.log.info("all traffic of %s now goes to %s", decision["endpoint_name"], decision["winner"])
        return {**decision, "promoted": True, "request": request}
