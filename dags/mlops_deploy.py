"""
### mlops_deploy — blue/green deployment of the approved model to the real-time endpoint

Scheduled on the `mlops_registered_model` Asset (or triggered by hand with the Param form).
Deploys **approved models only**, then smoke-tests the endpoint through the SageMaker Runtime
path and emits `mlops_endpoint_live`, which schedules drift monitoring.

| task | aws | local |
|---|---|---|
| `resolve_model` | the version asked for, else the triggering registered-model event, else the newest Approved version; approval read from the SageMaker Model Registry; fails unless `Approved` | same, from the SQLite registry |
| `build_requests` | CreateModel / CreateEndpointConfig (DataCaptureConfig) / CreateEndpoint (DeploymentConfig: blue/green, canary, auto-rollback alarms), built from `include/pipeline.yaml`; with `serving.mode: multi_model` one `Mode: MultiModel` model over `models/<multi_model.prefix>/<endpoint>/` | same requests |
| `stage_target_models` | multi-model only: S3 CopyObject of the version (and an A/B champion) to `<prefix>/v<version>.tar.gz`; nothing for a single-model endpoint | file copy in the local lake (staged, then renamed) |
| `create_model` | `SageMakerModelOperator` (one per model; A/B may add a champion) | local stand-in records the model |
| `create_endpoint_config` | `SageMakerEndpointConfigOperator` | local stand-in records the config |
| `deploy_endpoint` | `SageMakerEndpointOperator` (create, or blue/green update; deferrable; fails if SageMaker rolled back) | model-server + router processes on 127.0.0.1; green is health-checked, traffic shifts (canary: bake, error-rate alarm), blue is terminated; rollback leaves blue serving |
| `smoke_test` | `invoke_endpoint` through sagemaker-runtime (with `TargetModel=v<version>.tar.gz` on a multi-model endpoint), checks the answer | boto3 sagemaker-runtime against `http://127.0.0.1:PORT`; the local multi-model server loads target models on first use (LRU, `serving.multi_model.max_models`/`max_bytes`) |

The `mlops_endpoint_live` event's `extra`: `endpoint_name`, `invocation_url`, `target_model` (multi-model)
(`http://127.0.0.1:PORT/endpoints/NAME/invocations` locally), `variant_weights`,
`model_version`, `model_package_group`, `model_data_url`, a sample request with its response
as JSON, and `replay`: a curl command (locally; the AWS CLI on aws) that sends it again.

Names (model, endpoint config) derive from the model version and the run id, so re-running a
run reuses what it already created.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from mlops_airflow.assets import REGISTERED_MODEL
from mlops_airflow.dag_defaults import DEFAULT_ARGS, PIPELINE_RUN_TIMEOUT, USER_DEFINED_MACROS
from mlops_airflow.targets import step_operator

with DAG(
    dag_id="mlops_deploy",
    description="Blue/green deploy of the approved model to the endpoint, smoke test, emit endpoint-live",
    doc_md=__doc__,
    schedule=[REGISTERED_MODEL],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=PIPELINE_RUN_TIMEOUT,
    default_args=DEFAULT_ARGS,
    user_defined_macros=USER_DEFINED_MACROS,
    tags=["mlops", "serving", "sagemaker"],
    params={
        "model_version": Param(
            "latest approved",
            type=["string", "integer"],
            description="Model package version to deploy, or 'latest approved'",
        ),
        "model_data_url": Param(
            None,
            type=["null", "string"],
            description="model.tar.gz to deploy when triggering by hand (s3:// or file://)",
        ),
        "strategy": Param("canary", enum=["all_at_once", "canary"], description="Blue/green traffic shift"),
        "canary_percent": Param(10, type="integer", minimum=1, maximum=99, description="Canary share of traffic (%)"),
        "bake_seconds": Param(
            None,
            type=["null", "integer"],
            minimum=0,
            maximum=3600,
            description="Canary bake time; empty = serving.bake_seconds",
        ),
        "champion_version": Param(
            None,
            type=["null", "integer"],
            description="A/B: approved version served by the variants after the first (serving.variants)",
        ),
        "sample_request": Param(
            None,
            type=["null", "string"],
            description="Smoke-test request body (JSON); empty = the package's input example",
        ),
    },
) as dag:

    @task(multiple_outputs=True)
    def build_requests(model: dict, **context) -> dict:
        """CreateModel, CreateEndpointConfig and CreateEndpoint requests for this run."""
        from mlops_airflow.tasks import serving as bodies

        return bodies.deployment_requests(model, context)

    @task
    def model_requests(requests: dict) -> list:
        """The CreateModel requests to map over (one, or two for an A/B champion)."""
        return requests["models"]

    model = step_operator("resolve_model")(
        task_id="resolve_model",
        model_version="{{ params.model_version }}",
        model_data_url="{{ params.model_data_url or '' }}",
        champion_version="{{ params.champion_version or '' }}",
    ).output
    requests = build_requests(model)
    stage_target_models = step_operator("stage_target_models")(
        task_id="stage_target_models", target_models=requests["target_models"]
    )
    create_model = step_operator("create_model").partial(task_id="create_model").expand(config=model_requests(requests))
    create_endpoint_config = step_operator("create_endpoint_config")(
        task_id="create_endpoint_config", config=requests["endpoint_config"]
    )
    deploy_endpoint = step_operator("deploy_endpoint")(
        task_id="deploy_endpoint",
        config=requests["endpoint"],
        operation="create",
        wait_for_completion=True,
        check_interval=30,
        max_ingestion_time=3600,
        deferrable=True,
    )
    smoke_test = step_operator("smoke_test")(
        task_id="smoke_test",
        endpoint_name="{{ pipeline_setting('serving.endpoint_name') }}",
        model=model,
        sample_request="{{ params.sample_request or '' }}",
        target_models=stage_target_models.output,
    )
    stage_target_models >> create_model >> create_endpoint_config >> deploy_endpoint >> smoke_test
