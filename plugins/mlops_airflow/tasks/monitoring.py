"""Task bodies of the mlops_monitor DAG (what each task does: the DAG's doc_md).

They run on the worker, so they only build requests, list keys and move small JSON files, through
:mod:`mlops.monitoring.steps` and :mod:`mlops.monitoring.baseline_steps`; AWS calls go through the
provider hooks' clients, made only when the lake is on S3. Each function is named after its task.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Context


def _hook_client(service: str, conn_id: str | None) -> Any:
    """A boto3 client of ``service`` from the provider's hook (the connection's credentials, region, endpoint)."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id=conn_id, client_type=service).get_conn()


def aws_clients(config: Any) -> dict[str, Callable[[], Any]]:
    """Factories of the s3 / sagemaker / dynamodb clients, each built once and only when a step touches AWS."""
    conn_id = config.aws.conn_id
    return {
        service: functools.cache(functools.partial(_hook_client, service, conn_id))
        for service in ("s3", "sagemaker", "dynamodb")
    }


def window_end_of_run(context: Context, flush_lag_seconds: float) -> Any:
    """Where this run's window ends: the ``window_end`` Param as given; else the scheduled data interval's end
    or the trigger time, less ``monitoring.capture_flush_lag_seconds``, so requests whose capture is still
    being flushed fall into the next window instead of none."""
    from datetime import timedelta

    from mlops.monitoring.steps import as_time

    params = context["params"]
    if params.get("window_end"):
        return params["window_end"]
    dag_run = context["dag_run"]
    if getattr(dag_run, "run_type", None) == "scheduled" and context.get("data_interval_end"):
        end = context["data_interval_end"]
    else:
        end = dag_run.run_after
    return as_time(end) - timedelta(seconds=flush_lag_seconds)


def plan_window(context: Context) -> dict[str, str]:
    """This run's window: scheduled runs end at the data interval's end, manual runs at ``window_end``
    (Param) or when they were triggered, less the capture flush lag; a window starts where the previous one ended."""
    from mlops.monitoring import steps
    from mlops_airflow.targets import current_target, lake, pipeline_config

    config, the_lake = pipeline_config(), lake()
    endpoint = config.serving.endpoint_name
    minutes = context["params"].get("window_minutes") or config.monitoring.window_minutes
    window = steps.plan_window(
        the_lake,
        endpoint,
        run_id=context["run_id"],
        end=window_end_of_run(context, config.monitoring.flush_lag_seconds(current_target())),
        window_minutes=int(minutes),
        s3=aws_clients(config)["s3"],
    )
    return {**window, "endpoint_name": endpoint, "capture_uri": the_lake.capture(endpoint)}


def find_monitored_model(context: Context) -> dict[str, Any]:
    """The model serving the endpoint (Params, else the newest endpoint-live event); skips when none is deployed."""
    from airflow.sdk.exceptions import AirflowSkipException

    from mlops.monitoring.steps import MonitoringError, monitored_model
    from mlops_airflow.assets import ENDPOINT_LIVE
    from mlops_airflow.targets import pipeline_config

    try:
        events = [dict(e.extra or {}) for e in context["inlet_events"][ENDPOINT_LIVE]]
    except Exception:  # no inlet access (e.g. outside a task run)
        events = []
    try:
        return monitored_model(events, dict(context["params"]), pipeline_config().serving.endpoint_name)
    except MonitoringError as exc:
        raise AirflowSkipException(str(exc)) from None


def _baseline_failure(model: dict[str, Any], exc: Exception) -> Exception:
    """Retrying cannot make a model package or training data appear: fail at once, with the fix."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(
        f"cannot build the baseline of model v{model.get('version')}: {exc}. Pass the model_data_url / "
        "training_data_uri Params, or redeploy the model"
    )


def plan_baseline(model: dict[str, Any], context: Context) -> dict[str, Any] | None:
    """The baseline job's CreateProcessingJob request; None (the short-circuit skips the job) when the
    model version's baseline is already in place."""
    from mlops.monitoring import baseline_steps
    from mlops.monitoring.steps import MonitoringError
    from mlops_airflow.targets import lake, pipeline_config

    config = pipeline_config()
    clients = aws_clients(config)
    try:
        return baseline_steps.plan_baseline(
            config,
            lake(),
            model,
            run_id=context["run_id"],
            run_after=context["dag_run"].run_after,
            training_uri=context["params"].get("training_data_uri"),
            s3=clients["s3"],
            sagemaker=clients["sagemaker"],
        )
    except MonitoringError as exc:
        raise _baseline_failure(model, exc) from None


def ensure_baseline(model: dict[str, Any], job: dict[str, Any] | None, context: Context) -> dict[str, Any]:
    """Swap the baseline job's staged files in (marker last), or return the cached baseline when no job ran."""
    from mlops.monitoring.baseline_steps import finish_baseline
    from mlops.monitoring.steps import MonitoringError
    from mlops_airflow.targets import lake, pipeline_config

    processing = (job or {}).get("Processing")
    try:
        return finish_baseline(lake(), model, processing, s3=aws_clients(pipeline_config())["s3"])
    except MonitoringError as exc:
        raise _baseline_failure(model, exc) from None


def build_request(
    window: dict[str, str], model: dict[str, Any], baseline: dict[str, Any], context: Context
) -> dict[str, Any]:
    """Publish the jobs' code and the window's real-time aggregates; build CreateProcessingJob."""
    from mlops.monitoring import steps
    from mlops_airflow.targets import lake, pipeline_config

    config, the_lake = pipeline_config(), lake()
    clients = aws_clients(config)
    keys = steps.list_capture_keys(window["capture_uri"], clients["s3"])
    folders = steps.window_folders(keys, window["window_start"], window["window_end"])
    name = steps.job_name(config, context["run_id"], context["dag_run"].run_after)
    steps.record_started_window(
        the_lake, config.serving.endpoint_name, run_id=context["run_id"], window=window, model=model, name=name,
        s3=clients["s3"],
    )  # fmt: skip
    return steps.drift_request(
        config,
        the_lake,
        run_id=context["run_id"],
        run_after=context["dag_run"].run_after,
        model=model,
        baseline=baseline,
        window=window,
        folders=folders,
        image=steps.image_uri(config),
        code_uri=steps.publish_code(the_lake, clients["s3"]),
        aggregates_uri=steps.publish_aggregates(
            config, the_lake, name, window, s3=clients["s3"], dynamodb=clients["dynamodb"]
        ),
    )


def evaluate_policy(job: dict[str, Any], context: Context) -> dict[str, Any]:
    """Record the window and apply the retraining policy (consecutive windows, cooldown, one trigger per episode)."""
    from mlops.monitoring.steps import evaluate
    from mlops_airflow.targets import lake, pipeline_config

    config = pipeline_config()
    decision = evaluate(
        config, lake(), run_id=context["run_id"], processing=job.get("Processing", job), s3=aws_clients(config)["s3"]
    )
    print(
        f"policy: {'FIRE' if decision['fire'] else 'no trigger'}: {decision['reason']}\n"
        f"violations: {decision['constraint_violations_uri']}\nreport: {decision['report_uri']}",
        flush=True,
    )
    return decision


def record_failed_window(window: dict[str, str], model: dict[str, Any], context: Context) -> dict[str, Any]:
    """The drift job failed after its retries: record the window as failed, with the job's failure reason."""
    from mlops.monitoring.steps import record_failed_window as record

    return record_failed(record, "drift", window, model, context)


def record_failed(
    record: Callable[..., dict[str, Any]], monitor: str, window: dict[str, str], model: dict[str, Any], context: Context
) -> dict[str, Any]:
    """Record this run's ``window`` as failed with ``record`` (the drift or quality monitor's bookkeeping)."""
    from mlops_airflow.targets import lake, pipeline_config

    config = pipeline_config()
    clients = aws_clients(config)
    failed = record(
        config,
        lake(),
        run_id=context["run_id"],
        run_after=context["dag_run"].run_after,
        window=window,
        model=model,
        s3=clients["s3"],
        sagemaker=clients["sagemaker"],
    )
    print(f"{monitor} window {failed['window_start']} .. {failed['window_end']} recorded as failed: {failed['reason']}")
    return failed


def emit_drift_detected(decision: dict[str, Any], context: Context) -> dict[str, Any]:
    """Emit the drift Asset event with details when the policy fired; otherwise skip (no event)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from mlops_airflow.assets import DRIFT_DETECTED

    if not decision.get("fire"):
        raise AirflowSkipException(f"no drift event: {decision.get('reason')}")
    context["outlet_events"][DRIFT_DETECTED].extra = decision["extra"]
    return decision["extra"]
