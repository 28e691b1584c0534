"""Task bodies of the mlops_deploy DAG (the requests of one deployment) and of the mlops_ab_test DAG (the
analysis job's request and the decision); what each task does: the DAGs' doc_md."""

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


def _s3_client(config: Any, service: str = "s3") -> Any:
    """A client of the task's connection (S3, DynamoDB), made only when a step touches AWS (a local lake never does)."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id=config.aws.conn_id, client_type=service).get_conn()


def ab_test_request(context: Context) -> dict[str, Any]:
    """CreateProcessingJob of the A/B analysis; skips the run when the endpoint has no two variants to compare."""
    import functools

    from airflow.sdk.exceptions import AirflowSkipException

    from mlops.monitoring import ab_steps, steps
    from mlops_airflow.targets import lake, pipeline_config

    config = pipeline_config()
    try:
        config.serving.ab_roles()
    except ValueError as exc:
        raise AirflowSkipException(f"no A/B test: {exc}") from None
    return ab_steps.plan_request(
        config,
        lake(config),
        run_id=context["run_id"],
        run_after=context["dag_run"].run_after,
        image=steps.image_uri(config),
        s3=functools.partial(_s3_client, config),
    )


def ab_test_decision(job: dict[str, Any], context: Context) -> dict[str, Any]:
    """Apply serving.ab_test to the job's summary, write the report under reports/ab-tests/, say why."""
    import functools

    from mlops.monitoring.ab_steps import decide_and_report
    from mlops_airflow.targets import lake, pipeline_config

    config = pipeline_config()
    decision = decide_and_report(
        config,
        lake(config),
        processing=job.get("Processing", job),
        s3=functools.partial(_s3_client, config),
        dynamodb=functools.partial(_s3_client, config, "dynamodb"),
    )
    print(f"{decision['comparison']}\nreport: {decision['report_uri']}", flush=True)
    return decision
