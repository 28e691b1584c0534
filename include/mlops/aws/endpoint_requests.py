"""Requests the serving stage sends to SageMaker: CreateModel, CreateEndpointConfig,
CreateEndpoint / UpdateEndpoint with a blue/green DeploymentConfig, and DataCaptureConfig.

A multi-model endpoint (``serving.mode: multi_model``) is one CreateModel with ``Mode: MultiModel``
whose ``ModelDataUrl`` is an S3 prefix; each deployed version is copied under it as
``v<version>.tar.gz`` (S3 CopyObject, :func:`copy_object_request`) and invoked with
``TargetModel="v<version>.tar.gz"``.

Pure functions of their inputs (DESIGN.md §1.2); ``tests/aws/test_endpoint_requests.py``
validates every one against botocore's service model. The local stand-in
(:class:`mlops.serving.manager.LocalSageMaker`) executes the same dicts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote, urlparse

from mlops.aws.feature_store_requests import lookup_environment
from mlops.config import PipelineConfig

NAME_MAX = 63
CONTENT_TYPES = {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}
LOCAL_ROLE_ARN = "arn:aws:iam::000000000000:role/mlops-local-sagemaker"
#: SageMaker blue/green: a canary may hold at most half of the fleet (and at least one instance).
MAX_CANARY_SHARE = 0.5
#: ProductionVariant's ContainerStartupHealthCheckTimeoutInSeconds / ModelDataDownloadTimeoutInSeconds (API Reference).
STARTUP_TIMEOUT_RANGE = (60, 3600)


class DeploymentConfigError(ValueError):
    """The endpoint deployment config is one SageMaker would reject; the message names the fix."""


def canary_instances(instance_count: int, canary_percent: int) -> int:
    """Instances a CAPACITY_PERCENT canary gets (SageMaker rounds up to whole instances)."""
    return -(-instance_count * canary_percent // 100)


def check_deployment(
    *,
    strategy: str,
    canary_percent: int,
    instance_count: int,
    variant_names: Sequence[str],
    alarm_names: Sequence[str],
    previous_variant_names: Sequence[str] | None = None,
) -> None:
    """Raise DeploymentConfigError for a blue/green update SageMaker would refuse, before any call.

    - a canary must be at least one instance and at most half the fleet: 10 % of one instance rounds
      to the whole fleet;
    - blue/green updates keep the variant names (switching A/B on or off is a new endpoint);
    - with rollback alarms, every variant needs its own (an alarm's name names its variant), or a
      broken challenger variant never rolls back.
    """
    if strategy == "canary":
        canary = canary_instances(instance_count, canary_percent)
        if canary > instance_count * MAX_CANARY_SHARE:
            raise DeploymentConfigError(
                f"a {canary_percent}% canary of {instance_count} instance(s) is {canary} instance(s), more than "
                f"half the fleet; set serving.instance_count to at least {2 * canary} or serving.strategy: all_at_once"
            )
    if previous_variant_names is not None and sorted(previous_variant_names) != sorted(variant_names):
        raise DeploymentConfigError(
            f"blue/green keeps the variant names: the endpoint serves {sorted(previous_variant_names)}, the new "
            f"config has {sorted(variant_names)}; keep serving.variants, or deploy the change as a new endpoint"
        )
    if alarm_names and len(variant_names) > 1:
        uncovered = [v for v in variant_names if not any(v.lower() in a.lower() for a in alarm_names)]
        if uncovered:
            raise DeploymentConfigError(
                f"variants {uncovered} have no rollback alarm (serving.rollback_alarms {list(alarm_names)}); "
                "add an alarm per variant (its name containing the variant name) to infra/cfn/ml.yaml"
            )


def resource_name(*parts: str) -> str:
    """A SageMaker resource name (``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``) from parts; long names keep a hash."""
    raw = "-".join(re.sub(r"[^a-zA-Z0-9]+", "-", p).strip("-") for p in parts if p)
    raw = re.sub(r"-+", "-", raw)
    if len(raw) <= NAME_MAX:
        return raw
    digest = hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()[:8]  # a name suffix
    return f"{raw[: NAME_MAX - 9].rstrip('-')}-{digest}"


def run_token(run_id: str) -> str:
    """A short, stable token of an Airflow run id (names come from the run, never from now())."""
    return hashlib.sha1(run_id.encode(), usedforsecurity=False).hexdigest()[:8]


def container_environment(region: str, program: str = "inference.py") -> dict[str, str]:
    """Environment of the framework inference container: run ``code/inference.py`` from model.tar.gz."""
    return {
        "SAGEMAKER_PROGRAM": program,
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_REGION": region,
        "MLOPS_ORT_THREADS": "1",
    }


def multi_model_environment(max_models: int, max_bytes: int) -> dict[str, str]:
    """The cache bounds of a multi-model container (the local model server reads them; SageMaker ignores them)."""
    return {"MLOPS_MME_MAX_MODELS": str(int(max_models)), "MLOPS_MME_MAX_BYTES": str(int(max_bytes))}


def target_model_name(model_version: str | int) -> str:
    """The ``TargetModel`` of a model version on a multi-model endpoint: its key relative to the prefix."""
    return f"v{model_version}.tar.gz"


def multi_model_prefix(models_uri: str, endpoint_name: str, prefix: str) -> str:
    """The ``ModelDataUrl`` of a multi-model endpoint: ``<models>/<prefix>/<endpoint>/`` (a prefix ends in /)."""
    return f"{models_uri.rstrip('/')}/{prefix.strip('/')}/{endpoint_name}/"


def copy_object_request(source_url: str, target_url: str) -> dict[str, Any]:
    """S3 CopyObject of a model package to its key under a multi-model prefix (server-side, SSE as the bucket's)."""
    source, target = urlparse(source_url), urlparse(target_url)
    if source.scheme != "s3" or target.scheme != "s3":
        raise ValueError(f"CopyObject copies s3:// objects; got {source_url} -> {target_url}")
    return {
        "Bucket": target.netloc,
        "Key": target.path.lstrip("/"),
        "CopySource": f"{source.netloc}/{quote(source.path.lstrip('/'), safe='/~')}",  # S3's bucket/key form
    }


def create_model_request(
    *,
    model_name: str,
    model_data_url: str,
    image_uri: str,
    role_arn: str,
    region: str,
    tags: Sequence[dict[str, str]] = (),
    multi_model: dict[str, Any] | None = None,
    environment: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """CreateModel: the framework image serving ``model_data_url`` with its ``code/inference.py``; ``environment``
    adds container variables (the feature groups ``inference.py`` looks raw orders up in).

    With ``multi_model`` (``{"max_models", "max_bytes", "model_cache"}``) the container is ``Mode: MultiModel``
    and ``model_data_url`` must be the S3 prefix holding the target models.
    """
    container: dict[str, Any] = {
        "Image": image_uri,
        "ModelDataUrl": model_data_url,
        "Mode": "SingleModel",
        "Environment": {**container_environment(region), **(environment or {})},
    }
    if multi_model is not None:
        if not model_data_url.endswith("/"):
            raise ValueError(f"a multi-model ModelDataUrl is a prefix ending in '/', got {model_data_url}")
        container["Mode"] = "MultiModel"
        container["MultiModelConfig"] = {"ModelCacheSetting": multi_model["model_cache"]}
        container["Environment"].update(multi_model_environment(multi_model["max_models"], multi_model["max_bytes"]))
    request: dict[str, Any] = {
        "ModelName": model_name,
        "PrimaryContainer": container,
        "ExecutionRoleArn": role_arn,
        "EnableNetworkIsolation": False,
    }
    if tags:
        request["Tags"] = list(tags)
    return request


def production_variant(
    *,
    variant_name: str,
    model_name: str,
    weight: float,
    instance_type: str,
    instance_count: int,
    health_check_timeout_seconds: int,
    model_download_timeout_seconds: int | None = None,
) -> dict[str, Any]:
    """A ProductionVariant; the start-up timeouts bound the container's start (model download, offline
    pip install of ``code/requirements.txt``, first ``/ping``), each 60-3600 s."""
    for field, value in (("health_check_timeout_seconds", health_check_timeout_seconds),
                         ("model_download_timeout_seconds", model_download_timeout_seconds)):  # fmt: skip
        if value is not None and not STARTUP_TIMEOUT_RANGE[0] <= int(value) <= STARTUP_TIMEOUT_RANGE[1]:
            raise DeploymentConfigError(f"serving.{field} is {value}; SageMaker accepts 60 to 3600 seconds")
    variant = {
        "VariantName": variant_name,
        "ModelName": model_name,
        "InitialVariantWeight": float(weight),
        "InitialInstanceCount": int(instance_count),
        "InstanceType": instance_type,
        "ContainerStartupHealthCheckTimeoutInSeconds": int(health_check_timeout_seconds),
    }
    if model_download_timeout_seconds is not None:
        variant["ModelDataDownloadTimeoutInSeconds"] = int(model_download_timeout_seconds)
    return variant


def data_capture_config(*, destination_uri: str, sampling_percentage: int) -> dict[str, Any]:
    """DataCaptureConfig: capture request and response, CSV and JSON recorded as text."""
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": int(sampling_percentage),
        "DestinationS3Uri": destination_uri,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {k: list(v) for k, v in CONTENT_TYPES.items()},
    }


def create_endpoint_config_request(
    *,
    endpoint_config_name: str,
    variants: Sequence[dict[str, Any]],
    data_capture: dict[str, Any] | None,
    tags: Sequence[dict[str, str]] = (),
) -> dict[str, Any]:
    request: dict[str, Any] = {"EndpointConfigName": endpoint_config_name, "ProductionVariants": list(variants)}
    if data_capture:
        request["DataCaptureConfig"] = data_capture
    if tags:
        request["Tags"] = list(tags)
    return request


def deployment_config(
    *,
    strategy: Literal["all_at_once", "canary"],
    canary_percent: int,
    bake_seconds: int,
    termination_wait_seconds: int,
    alarm_names: Sequence[str] = (),
    max_execution_seconds: int | None = None,
) -> dict[str, Any]:
    """DeploymentConfig: blue/green, all at once or canary, with auto-rollback on the given alarms."""
    if strategy == "canary":
        routing: dict[str, Any] = {
            "Type": "CANARY",
            "WaitIntervalInSeconds": int(bake_seconds),
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": int(canary_percent)},
        }
    elif strategy == "all_at_once":
        routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": int(bake_seconds)}
    else:
        raise ValueError(f"strategy {strategy!r} is not all_at_once or canary")
    policy: dict[str, Any] = {
        "TrafficRoutingConfiguration": routing,
        "TerminationWaitInSeconds": int(termination_wait_seconds),
    }
    if max_execution_seconds:
        policy["MaximumExecutionTimeoutInSeconds"] = max(600, int(max_execution_seconds))
    config: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
    if alarm_names:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in alarm_names]}
    return config


def create_endpoint_request(
    *,
    endpoint_name: str,
    endpoint_config_name: str,
    deployment: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """CreateEndpoint (the provider's operator turns it into UpdateEndpoint when the endpoint exists)."""
    request: dict[str, Any] = {"EndpointName": endpoint_name, "EndpointConfigName": endpoint_config_name}
    if deployment:
        request["DeploymentConfig"] = deployment
    return request


def update_endpoint_request(
    *, endpoint_name: str, endpoint_config_name: str, deployment: dict[str, Any]
) -> dict[str, Any]:
    return {"EndpointName": endpoint_name, "EndpointConfigName": endpoint_config_name, "DeploymentConfig": deployment}


def _models(
    config: PipelineConfig,
    *,
    names: dict[str, str],
    model_data_url: str,
    champion_model_data_url: str | None,
    image_uri: str,
    multi_model_url: str | None,
) -> list[dict[str, Any]]:
    """The CreateModel requests: the candidate (or the multi-model prefix), plus an A/B champion."""
    serving, region = config.serving, config.aws.region
    role = serving.execution_role_arn or config.training.role_arn or LOCAL_ROLE_ARN
    common: dict[str, Any] = {"image_uri": image_uri, "role_arn": role, "region": region}
    common["environment"] = lookup_environment(config)  # raw orders: the feature groups inference.py reads
    if multi_model_url is not None:
        settings = serving.multi_model.model_dump(include={"max_models", "max_bytes", "model_cache"})
        return [
            create_model_request(
                model_name=names["candidate"], model_data_url=multi_model_url, multi_model=settings, **common
            )
        ]
    models = [create_model_request(model_name=names["candidate"], model_data_url=model_data_url, **common)]
    if "champion" in names and champion_model_data_url:
        models.append(
            create_model_request(model_name=names["champion"], model_data_url=champion_model_data_url, **common)
        )
    return models


def _variants(serving: Any, names: dict[str, str]) -> list[dict[str, Any]]:
    """The production variants: the first serves the candidate, the others the champion (if any)."""
    return [
        production_variant(
            variant_name=v.name,
            model_name=names["candidate"] if i == 0 else names.get("champion", names["candidate"]),
            weight=v.weight,
            instance_type=serving.instance_type,
            instance_count=serving.instance_count,
            health_check_timeout_seconds=serving.health_check_timeout_seconds,
            model_download_timeout_seconds=serving.model_download_timeout_seconds,
        )
        for i, v in enumerate(serving.variants)
    ]


def target_models(prefix: str, versions: Sequence[tuple[str | int, str]]) -> list[dict[str, str]]:
    """What a multi-model deployment copies under ``prefix``: ``{source, target, target_model}`` per version."""
    return [
        {"source": url, "target": prefix + target_model_name(version), "target_model": target_model_name(version)}
        for version, url in versions
    ]


def _checked_deployment(
    serving: Any,
    strategy: str | None,
    canary_percent: int | None,
    bake_seconds: int | None,
    previous_variant_names: Sequence[str] | None,
) -> dict[str, Any]:
    """The DeploymentConfig of this deployment, after :func:`check_deployment` accepted it."""
    check_deployment(
        strategy=strategy or serving.strategy,
        canary_percent=canary_percent or serving.canary_percent,
        instance_count=serving.instance_count,
        variant_names=[v.name for v in serving.variants],
        alarm_names=serving.rollback_alarms,
        previous_variant_names=previous_variant_names,
    )
    return deployment_config(
        strategy=strategy or serving.strategy,
        canary_percent=canary_percent or serving.canary_percent,
        bake_seconds=serving.bake_seconds if bake_seconds is None else bake_seconds,
        termination_wait_seconds=serving.termination_wait_seconds,
        alarm_names=serving.rollback_alarms,
    )


def deploy_requests(
    config: PipelineConfig,
    *,
    model_data_url: str,
    model_version: str | int,
    run_id: str,
    image_uri: str,
    capture_uri: str,
    strategy: Literal["all_at_once", "canary"] | None = None,
    canary_percent: int | None = None,
    bake_seconds: int | None = None,
    champion_model_data_url: str | None = None,
    champion_version: str | int | None = None,
    previous_variant_names: Sequence[str] | None = None,
    models_uri: str | None = None,
) -> dict[str, Any]:
    """Every request of one deployment: ``models`` (CreateModel list), ``endpoint_config``, ``endpoint``,
    and ``target_models`` (what a multi-model deployment copies under its prefix; empty otherwise).

    The candidate serves the first variant, ``champion_model_data_url`` (else the candidate) the others (A/B);
    with ``serving.mode: multi_model`` one ``MultiModel`` model over ``<models_uri>/<multi_model.prefix>/<endpoint>/``
    serves the only variant. Checked first (:func:`check_deployment`; ``previous_variant_names``: the live ones).
    """
    serving = config.serving
    deployment = _checked_deployment(serving, strategy, canary_percent, bake_seconds, previous_variant_names)
    token = run_token(run_id)
    multi = serving.mode == "multi_model"
    if multi and not models_uri:
        raise ValueError("serving.mode multi_model needs models_uri (the lake's models/ folder) for its prefix")
    prefix = multi_model_prefix(models_uri or "", serving.endpoint_name, serving.multi_model.prefix) if multi else None
    names = {"candidate": resource_name(serving.endpoint_name, "mme" if multi else "", f"v{model_version}", token)}
    if champion_model_data_url and len(serving.variants) > 1:
        names["champion"] = resource_name(serving.endpoint_name, "champion", token)
    models = _models(
        config,
        names=names,
        model_data_url=model_data_url,
        champion_model_data_url=champion_model_data_url,
        image_uri=image_uri,
        multi_model_url=prefix,
    )
    endpoint_config_name = resource_name(serving.endpoint_name, f"v{model_version}", token, "config")
    staged = [(model_version, model_data_url)]
    if champion_model_data_url and champion_version is not None:
        staged.append((champion_version, champion_model_data_url))
    return {
        "models": models,
        "endpoint_config": create_endpoint_config_request(
            endpoint_config_name=endpoint_config_name,
            variants=_variants(serving, names),
            data_capture=data_capture_config(
                destination_uri=capture_uri, sampling_percentage=serving.capture_sampling_percentage
            ),
        ),
        "endpoint": create_endpoint_request(
            endpoint_name=serving.endpoint_name, endpoint_config_name=endpoint_config_name, deployment=deployment
        ),
        "target_models": target_models(prefix, staged) if prefix else [],
    }
