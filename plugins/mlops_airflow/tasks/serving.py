"""Task bodies of the mlops_deploy DAG: the requests of one deployment (what each task does: the DAG's doc_md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Context


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
        champion_version=(model.get("champion") or {}).get("version"),
        models_uri=lake(config).models(),
    )


def framework_image_uri(config: Any) -> str:
    """The sklearn inference container for the region (the table sagemaker-core resolved at build time)."""
    from mlops.aws.framework_images import framework_image_uri as lookup

    return config.training.image_uri or lookup(config.serving.framework_version, config.aws.region, "inference")
