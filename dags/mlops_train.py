"""
### mlops_train — SageMaker training, evaluation, mAP gate and Model Registry

Runs when `mlops_features` emits the `mlops_validated_features` Asset, when `mlops_monitor`
emits `mlops_drift_detected` or `mlops_model_quality` emits `mlops_model_quality_degraded`
(retraining on the freshest validated features; `plan_training`'s log names the trigger and its
evidence), or by hand with the Params form.

| task | aws | local |
|---|---|---|
| `find_champion` | newest `Approved` version in the SageMaker model package group | same, in the SQLite registry |
| `plan_training` | curated snapshot from the triggering event (`extra.curated_uri`, else the validated pointer), script-mode bundle published under its SHA-256, CreateTrainingJob request built (the sklearn framework image of the region, read from the table `make images` wrote with sagemaker-core at build time) | same request; the bundle lands in the local lake |
| `train` | `SageMakerTrainingOperator` (deferrable) running `train.py` | the same request run as a subprocess in an `/opt/ml`-shaped job dir |
| `plan_evaluation` | CreateProcessingJob for `evaluate.py` on the test split, challenger and champion | same |
| `evaluate` | `SageMakerProcessingOperator` (deferrable) | local processing job |
| `register` | gate, then CreateModelPackage with ModelMetrics -> `evaluation.json` | same, SQLite registry |

`train.py` fits a LightGBM Pipeline (preprocessing included), exports it to ONNX and fails
the job unless ONNX and native probabilities agree within 1e-4 on the test split.
`train` and `evaluate` are step-cached: unchanged data snapshot, code and hyperparameters
reuse the earlier job's outputs (the task log says "Step cache HIT").

**Gate.** `register` fails (no retry) unless test mAP >= `map_threshold` and >= the approved
champion's mAP, re-measured on the same rows, minus `training.champion_tolerance`. The evaluation
also scores both models on the *recent* rows (orders after the drift point named by the
`mlops_drift_detected` event, else the test split's last `training.recent_days`); when drift
started the run, the gate decides on those rows (given `training.min_recent_rows` of them). The
comparison table (both comparisons) is in its log. Approval follows `registry.approval_policy`: `auto` registers
as Approved, `manual` as PendingManualApproval (approve with `mlops models approve <version>` locally,
UpdateModelPackage on aws). On success the `mlops_registered_model` Asset carries
`model_package_group`, `version`, `map`, `approval_status`, `model_data_url`, `evaluation_uri`.

**Events only when something changed.** A re-run on unchanged data reuses the step-cached job,
whose model is already registered: `register` then ends *skipped* ("already registered as vN"),
which emits no `mlops_registered_model` event, so `mlops_deploy` does not redeploy the same model.
Its XCom still holds the version. `force=true` retrains and registers a new version.

Params: `hyperparameters` (LightGBM overrides, e.g. `{"n_estimators": 500}`),
`map_threshold` (empty = config), `force` (bypass the step cache).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from mlops_airflow.assets import DRIFT_DETECTED, MODEL_QUALITY_DEGRADED, REGISTERED_MODEL, VALIDATED_FEATURES
from mlops_airflow.dag_defaults import DEFAULT_ARGS, PIPELINE_RUN_TIMEOUT, USER_DEFINED_MACROS
from mlops_airflow.targets import step_operator

# New validated features, drift detected by mlops_monitor, or measured quality loss found by
# mlops_model_quality (retraining on fresh data; plan_training logs which trigger fired and why).
TRAINING_SCHEDULE = VALIDATED_FEATURES | DRIFT_DETECTED | MODEL_QUALITY_DEGRADED

with DAG(
    dag_id="mlops_train",
    description="Validated features -> SageMaker training + evaluation -> mAP gate -> Model Registry",
    doc_md=__doc__,
    schedule=TRAINING_SCHEDULE,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=PIPELINE_RUN_TIMEOUT,
    default_args=DEFAULT_ARGS,
    user_defined_macros=USER_DEFINED_MACROS,
    tags=["mlops", "training", "sagemaker", "model-registry"],
    params={
        "hyperparameters": Param(
            {}, type="object", description='LightGBM hyperparameter overrides, e.g. {"n_estimators": 500}'
        ),
        "map_threshold": Param(
            None, type=["null", "number"], minimum=0, maximum=1, description="Gate mAP; empty = config"
        ),
        "force": Param(False, type="boolean", description="Run training and evaluation even on a step-cache hit"),
    },
) as dag:

    @task
    def plan_training(**context) -> dict:
        """Resolve the curated snapshot, publish the code bundle, build CreateTrainingJob."""
        from mlops_airflow.tasks import training as bodies

        return bodies.plan_training(context)

    @task
    def plan_evaluation(plan: dict, training: dict, champion: dict, **context) -> dict:
        """Build CreateProcessingJob for the trained model and the champion."""
        from mlops_airflow.tasks import training as bodies

        return bodies.plan_evaluation(context, plan, training, champion)

    champion = step_operator("find_champion")(task_id="find_champion")
    plan = plan_training()
    train = step_operator("train")(task_id="train", config=plan["training_request"], force="{{ params.force }}")
    evaluation_request = plan_evaluation(plan, train.output, champion.output)
    evaluate = step_operator("evaluate")(task_id="evaluate", config=evaluation_request, force="{{ params.force }}")
    register = step_operator("register")(
        task_id="register",
        training=train.output,
        processing=evaluate.output,
        champion=champion.output,
        image_uri=plan["image_uri"],
        map_threshold="{{ params.map_threshold }}",
        outlets=[REGISTERED_MODEL],
    )
    champion >> plan
