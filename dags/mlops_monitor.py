"""
### mlops_monitor — drift monitoring of the live endpoint's captured traffic

Runs **hourly** (and by hand, with the Param form). Each run evaluates one *window* of the
endpoint's data capture against the deployed model's baseline, with our own drift job writing
SageMaker Model Monitor's files (Model Monitor is closed to new customers). When the retraining
policy fires it emits `mlops_drift_detected`, which schedules `mlops_train`.

| task | aws | local |
|---|---|---|
| `plan_window` | window = from where the previous window ended (at most `monitoring.window_minutes` back) to the data interval's end (scheduled) or the trigger time / `window_end` Param (manual) | same |
| `find_monitored_model` | the model behind the endpoint: Params, else the newest `mlops_endpoint_live` event; **skips** the run when no model is deployed | same |
| `plan_baseline` | short-circuit: the model version's baseline is in place (`monitoring/baselines/<group>/v<version>/baseline_info.json`) -> skips `baseline_job`; else finds the training data (Param, event, the training job's `train` channel via DescribeTrainingJob, the validated snapshot), checks it and the model package exist (else fails at once, no retries: a retry cannot make them appear), builds CreateProcessingJob for `baseline_job.py` | same; the training job's local describe.json |
| `baseline_job` | `SageMakerProcessingOperator` (deferrable): reads the model's `feature_spec.json` and training data, writes `statistics.json` + `constraints.json` to a staging prefix | the local processing runner (same script, SageMaker runtime) |
| `ensure_baseline` | swaps the staged files into `monitoring/baselines/<group>/v<version>/`, marker last; when the job was skipped, the cached baseline (`created: false`; the task log then shows the Task SDK's `XCom not found` ERROR line for the skipped job's output: nothing failed, apache/airflow#73175) | same |
| `wait_for_capture` | provider `S3KeySensor` (deferrable) for capture objects of the window | lists the local capture folder, reschedule mode |
| `build_request` | lists the window's capture keys (names only), writes the window's real-time aggregates (DynamoDB, one row per minute), builds CreateProcessingJob for `drift_job.py` (code bundle, baseline, the window's capture folders, aggregates) | same request; SQLite aggregates |
| `drift_job` | `SageMakerProcessingOperator` (deferrable) | the local processing runner (same script, `/opt/ml/processing` layout) |
| `evaluate_policy` | records the window; consecutive drifted windows, cooldown, one trigger per drift episode | same |
| `emit_drift_detected` | emits `mlops_drift_detected` **only when the policy fired**, else skipped (no event) | same |
| `record_failed_window` | only when `drift_job` failed (after its retries): records the window as `failed` with the job's FailureReason, so the next run starts after it; the run still fails. A run killed by its `dagrun_timeout` cannot: `build_request` records its window `started`, and the next `plan_window` records a window left `started` as `failed` | same; the local job's describe.json |

**The worker only orchestrates.** Training data and captured traffic are read by the two
processing jobs (one code bundle, `monitoring/code/<sha>/`); the tasks list keys, check that
inputs exist and move small JSON files (pointers, the baseline summary, `drift_summary.json`, the
policy state) through the provider hooks' boto3 clients.

**No traffic.** `wait_for_capture` waits up to `monitoring.sensor_timeout_minutes` (poking every
`sensor_poke_seconds`, in reschedule mode or deferred, so it holds no worker slot) and then,
with `soft_fail=True`, *skips* the rest of the run instead of failing it: a quiet endpoint is
not an error. The `force` Param evaluates the window without waiting. One run at a time
(`max_active_runs=1`), and a run times out after 55 minutes (`dagrun_timeout`), so hourly runs
never pile up behind a waiting one.

**Capture flush lag.** A window ends `monitoring.capture_flush_lag_seconds` before its run's time
(the scheduled interval's end, or the trigger time; unset, 5 s locally and 300 s on aws): the local
endpoint writes capture files about a second after the requests (SageMaker: within minutes), so
requests still being flushed belong to
the next window instead of to none. The local capture writer also publishes a watermark
(`_capture_watermark.json`), which `make demo` waits for before it triggers a window.

**Outputs** under `monitoring/runs/<endpoint>/<job>/`: `statistics.json`,
`constraint_violations.json` (Model Monitor's violation types), `drift_summary.json` (per-feature
L∞/KS distance and its threshold, PSI, drift share) and `report.html` (per-feature plots, the
violations, the real-time per-minute aggregates).

**Policy** (`include/pipeline.yaml` `monitoring`): a window is drifted when at least
`drift_share_threshold` of the features drifted; the event fires after `consecutive_windows`
drifted windows in a row of the same model version, at most once per drift episode and not
within `cooldown_hours` of the previous trigger.

The `mlops_drift_detected` event's `extra`: `drift_share`, `drifted_features`, `windows` (the
drifted streak), `model_version`, `violations_uri`, `report_uri`, `endpoint_name`, `episode`,
`window_start`, `window_end`, `rows`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, TriggerRule, task

from mlops_airflow.assets import DRIFT_DETECTED, ENDPOINT_LIVE
from mlops_airflow.dag_defaults import DEFAULT_ARGS, HOURLY_RUN_TIMEOUT, USER_DEFINED_MACROS
from mlops_airflow.targets import step_operator

with DAG(
    dag_id="mlops_monitor",
    description="Drift job over windows of captured endpoint traffic; emits drift-detected per the retraining policy",
    doc_md=__doc__,
    schedule="@hourly",  # = monitoring.schedule in include/pipeline.yaml (a test keeps them equal)
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=HOURLY_RUN_TIMEOUT,
    default_args=DEFAULT_ARGS,
    user_defined_macros=USER_DEFINED_MACROS,
    tags=["mlops", "monitoring", "drift", "sagemaker"],
    params={
        "window_minutes": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=10080,
            description="Longest window; empty = monitoring.window_minutes",
        ),
        "window_end": Param(
            None,
            type=["null", "string"],
            description="Window end (ISO 8601, UTC); empty = the data interval's end or trigger time",
        ),
        "force": Param(False, type="boolean", description="Evaluate the window without waiting for new capture data"),
        "model_version": Param(
            None,
            type=["null", "string", "integer"],
            description="Model version to monitor (with model_data_url); empty = the live one",
        ),
        "model_data_url": Param(
            None, type=["null", "string"], description="model.tar.gz of that version (its feature_spec.json is read)"
        ),
        "training_data_uri": Param(
            None, type=["null", "string"], description="Baseline data when the model's training data cannot be found"
        ),
    },
) as dag:

    @task
    def plan_window(**context) -> dict:
        """This run's window of captured traffic."""
        from mlops_airflow.tasks import monitoring as bodies

        return bodies.plan_window(context)

    @task(inlets=[ENDPOINT_LIVE])
    def find_monitored_model(**context) -> dict:
        """The model serving the endpoint; skips the run when none is deployed."""
        from mlops_airflow.tasks import monitoring as bodies

        return bodies.find_monitored_model(context)

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def plan_baseline(model: dict, **context) -> dict | None:
        """CreateProcessingJob of the baseline job; nothing (baseline_job skipped) when the version's baseline exists."""
        from mlops_airflow.tasks import monitoring as bodies

        return bodies.plan_baseline(model, context)

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)  # runs when baseline_job was skipped (cached)
    def ensure_baseline(model: dict, job: dict | None, **context) -> dict:
        """statistics.json + constraints.json of the model version: the job's, swapped in, or the cached ones."""
        from mlops_airflow.tasks import monitoring as bodies

        return bodies.ensure_baseline(model, job, context)

    @task
    def build_request(window: dict, model: dict, baseline: dict, **context) -> dict:
        """CreateProcessingJob for the drift job over the window."""
        from mlops_airflow.tasks import monitoring as bodies

        return bodies.build_request(window, model, baseline, context)

    @task
    def evaluate_policy(job: dict, **context) -> dict:
        """Record the window; decide whether drift triggers retraining."""
        from mlops_airflow.tasks import monitoring as bodies

        return bodies.evaluate_policy(job, context)

    @task(trigger_rule=TriggerRule.ONE_FAILED)
    def record_failed_window(window: dict, model: dict, **context) -> dict:
        """The drift job failed: record the window as failed (with the reason) instead of retrying it forever."""
        from mlops_airflow.tasks import monitoring as bodies

        return bodies.record_failed_window(window, model, context)

    @task(outlets=[DRIFT_DETECTED])
    def emit_drift_detected(decision: dict, **context) -> dict:
        """Emit mlops_drift_detected with details when the policy fired; otherwise skip."""
        from mlops_airflow.tasks import monitoring as bodies

        return bodies.emit_drift_detected(decision, context)

    window = plan_window()
    model = find_monitored_model()
    baseline_job = step_operator("baseline_job")(
        task_id="baseline_job",
        config=plan_baseline(model),
        check_interval=30,
        deferrable=True,
    )
    baseline = ensure_baseline(model, baseline_job.output)
    wait_for_capture = step_operator("wait_for_capture")(
        task_id="wait_for_capture",
        capture_uri=window["capture_uri"],
        window_start=window["window_start"],
        window_end=window["window_end"],
        force="{{ params.force }}",
        mode="reschedule",
        soft_fail=True,
        deferrable=True,
    )
    request = build_request(window, model, baseline)
    drift_job = step_operator("drift_job")(
        task_id="drift_job",
        config=request,
        check_interval=30,
        deferrable=True,
    )
    decision = evaluate_policy(drift_job.output)
    baseline >> wait_for_capture >> request  # no deployed model: everything after find_monitored_model is skipped
    emit_drift_detected(decision)
    drift_job >> record_failed_window(window, model)
