"""
### mlops_model_quality — model quality of the live endpoint on delayed ground truth

Runs **daily** (and by hand, with the Param form). Every order the endpoint scores carries its
order id as the SageMaker inference id (`eventMetadata.inferenceId` in data capture); days later
the order reaches a terminal status (delivered / returned / cancelled) in the source database and
DMS brings it to the lake. This DAG joins the two and measures what drift cannot: whether the
model got worse. When the window's mAP falls more than `monitoring.quality.max_map_drop` below the
model's evaluated mAP (the registry's), it emits `mlops_model_quality_degraded`, which schedules
`mlops_train`.

| task | aws | local |
|---|---|---|
| `plan_quality_window` | from where the last *evaluated* window ended (a pending window grows until its labels mature, at most `max_label_wait_hours` back; the first is `window_hours` long) to the data interval's end / trigger time / `window_end` Param | same |
| `find_monitored_model` | the model behind the endpoint: Params, else the newest `mlops_endpoint_live` event; **skips** the run when none is deployed | same |
| `build_quality_request` | the model's evaluated mAP (`evaluated_map` Param, else the model package's `map` in the SageMaker Model Registry; fails at once when the version is not registered), the window's capture keys (names only), the code bundle; CreateProcessingJob for `quality_job.py` with the raw DMS `orders` table as ground truth | same; SQLite registry |
| `quality_job` | `SageMakerProcessingOperator` (deferrable) | the local processing runner (same script) |
| `evaluate_quality` | records the window (`monitoring/state/<endpoint>/quality.json`); fires on a violation unless the trigger fired for the same model version within `cooldown_hours` | same |
| `record_failed_window` | only when `quality_job` failed (after its retries): records the window as `failed` with the job's FailureReason; the run still fails. A run killed by its timeout leaves its window `started` (recorded by `build_quality_request`); the next `plan_quality_window` records it `failed` | same; the local job's describe.json |
| `emit_quality_degraded` | emits `mlops_model_quality_degraded` **only when the policy fired**, else skipped | same |

**The worker only orchestrates**: captured predictions and the orders table are read by the
processing job; the tasks list keys and move small JSON files.

**Outputs** under `monitoring/runs/<endpoint>/<job>/`, in Model Monitor's model-quality formats:
`statistics.json` (`multiclass_classification_metrics`: mAP, per-class AP, accuracy, F1, log loss,
confusion matrix; plus Brier score and reliability bins), `constraints.json` (mAP >= evaluated mAP
minus the margin), `constraint_violations.json`, `quality_summary.json` (status pending/evaluated,
label coverage, mAP, threshold) and `report.html`.

**Pending.** Until `min_labelled_rows` predictions of the window have a label and at least
`min_label_coverage` of them do, the window is `pending`: its coverage is reported, no verdict.

**New labelled data.** The job also counts the orders labelled after the model's training data
cut-off (registry metadata `training_data_cutoff`); at `monitoring.retrain_on_new_labels.min_new_labelled_orders`
(and again after that many more, not within `cooldown_hours`) the same event fires with trigger
`new_labelled_data`.

The `mlops_model_quality_degraded` event's `extra`: `trigger` (`model_quality` or `new_labelled_data`),
`triggers`, `new_labelled`, `new_labelled_threshold`, `labels_after`, `reason`, `map`,
`threshold`, `baseline_map`, `labelled`, `predictions`, `label_coverage`, `per_class_ap`,
`model_version`, `window_start`, `window_end`, `violations_uri`, `report_uri`, `endpoint_name`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, TriggerRule, task

from mlops_airflow.assets import ENDPOINT_LIVE, MODEL_QUALITY_DEGRADED
from mlops_airflow.dag_defaults import DEFAULT_ARGS, PIPELINE_RUN_TIMEOUT, USER_DEFINED_MACROS
from mlops_airflow.targets import step_operator

with DAG(
    dag_id="mlops_model_quality",
    description="Captured predictions joined with delayed ground truth -> mAP vs the evaluated mAP -> retraining",
    doc_md=__doc__,
    schedule="@daily",  # = monitoring.quality.schedule in include/pipeline.yaml (a test keeps them equal)
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=PIPELINE_RUN_TIMEOUT,
    default_args=DEFAULT_ARGS,
    user_defined_macros=USER_DEFINED_MACROS,
    tags=["mlops", "monitoring", "model-quality", "sagemaker"],
    params={
        "window_end": Param(
            None,
            type=["null", "string"],
            description="Window end (ISO 8601, UTC); empty = the data interval's end or trigger time",
        ),
        "model_version": Param(
            None,
            type=["null", "string", "integer"],
            description="Model version to judge (with model_data_url); empty = the live one",
        ),
        "model_data_url": Param(None, type=["null", "string"], description="model.tar.gz of that version"),
        "evaluated_map": Param(
            None,
            type=["null", "number"],
            minimum=0,
            maximum=1,
            description="The model's evaluated mAP; empty = the model registry's",
        ),
    },
) as dag:

    @task
    def plan_quality_window(**context) -> dict:
        """This run's window of captured predictions."""
        from mlops_airflow.tasks import model_quality as bodies

        return bodies.plan_quality_window(context)

    @task(inlets=[ENDPOINT_LIVE])
    def find_monitored_model(**context) -> dict:
        """The model serving the endpoint; skips the run when none is deployed."""
        from mlops_airflow.tasks import monitoring as bodies

        return bodies.find_monitored_model(context)

    @task
    def build_quality_request(window: dict, model: dict, **context) -> dict:
        """CreateProcessingJob for the model-quality job over the window."""
        from mlops_airflow.tasks import model_quality as bodies

        return bodies.build_quality_request(window, model, context)

    @task
    def evaluate_quality(job: dict, **context) -> dict:
        """Record the window; decide whether the measured quality triggers retraining."""
        from mlops_airflow.tasks import model_quality as bodies

        return bodies.evaluate_quality(job, context)

    @task(trigger_rule=TriggerRule.ONE_FAILED)
    def record_failed_window(window: dict, model: dict, **context) -> dict:
        """The quality job failed: record the window as failed (with the reason), so the next run knows."""
        from mlops_airflow.tasks import model_quality as bodies

        return bodies.record_failed_window(window, model, context)

    @task(outlets=[MODEL_QUALITY_DEGRADED])
    def emit_quality_degraded(decision: dict, **context) -> dict:
        """Emit mlops_model_quality_degraded with the evidence when the policy fired; otherwise skip."""
        from mlops_airflow.tasks import model_quality as bodies

        return bodies.emit_quality_degraded(decision, context)

    window = plan_quality_window()
    model = find_monitored_model()
    request = build_quality_request(window, model)
    quality_job = step_operator("quality_job")(
        task_id="quality_job",
        config=request,
        check_interval=60,
        deferrable=True,
    )
    emit_quality_degraded(evaluate_quality(quality_job.output))
    quality_job >> record_failed_window(window, model)
