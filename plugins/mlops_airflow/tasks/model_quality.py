"""Task bodies of the mlops_model_quality DAG (what each task does: the DAG's doc_md).

Worker-side: they plan the window, look up the model's evaluated mAP, list capture keys, build the
quality job's request and read its small summary, through :mod:`mlops.monitoring.quality_steps`;
the captured predictions and the orders table are read by the processing job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_airflow.tasks.monitoring import aws_clients, record_failed, window_end_of_run

if TYPE_CHECKING:
    from airflow.sdk import Context


def plan_quality_window(context: Context) -> dict[str, str]:
    """This run's window: from where the last evaluated window ended (a pending one grows) to the run's end."""
    from mlops.monitoring import quality_steps
    from mlops_airflow.targets import current_target, lake, pipeline_config

    config, the_lake = pipeline_config(), lake()
    end = window_end_of_run(context, config.monitoring.flush_lag_seconds(current_target()))
    s3 = aws_clients(config)["s3"]
    window = quality_steps.plan_window(config, the_lake, run_id=context["run_id"], end=end, s3=s3)
    return {**window, "capture_uri": the_lake.capture(config.serving.endpoint_name)}


def build_quality_request(window: dict[str, str], model: dict[str, Any], context: Context) -> dict[str, Any]:
    """The model's evaluated mAP (Param, else the registry), the window's capture folders, CreateProcessingJob."""
    from airflow.sdk.exceptions import AirflowFailException

    from mlops.monitoring import quality_steps, steps
    from mlops_airflow.targets import lake, pipeline_config

    config, the_lake = pipeline_config(), lake()
    clients = aws_clients(config)
    package = quality_steps.registered_package(model, clients["sagemaker"])
    try:
        given = context["params"].get("evaluated_map")
        baseline_map = float(given) if given is not None else quality_steps.evaluated_map(model, package=package)
    except steps.MonitoringError as exc:
        raise AirflowFailException(str(exc)) from None  # a retry cannot register the model
    keys = steps.list_capture_keys(window["capture_uri"], clients["s3"])
    cutoff = quality_steps.training_cutoff(package)
    print(f"model v{model['version']}: evaluated mAP {baseline_map:.4f}; training data cut-off {cutoff or '?'}")
    quality_steps.record_window(
        config, the_lake, run_id=context["run_id"], window=window, model=model, s3=clients["s3"],
        name=steps.job_name(config, context["run_id"], context["dag_run"].run_after, step="quality"),
    )  # fmt: skip
    return quality_steps.quality_request(
        config,
        the_lake,
        run_id=context["run_id"],
        run_after=context["dag_run"].run_after,
        model=model,
        window=window,
        folders=steps.window_folders(keys, window["window_start"], window["window_end"]),
        baseline_map=baseline_map,
        code_uri=steps.publish_code(the_lake, clients["s3"]),
        labels_after=cutoff,
    )


def evaluate_quality(job: dict[str, Any], context: Context) -> dict[str, Any]:
    """Record the window in the quality state and decide whether the measured quality triggers retraining."""
    from mlops.monitoring.quality_steps import evaluate
    from mlops_airflow.targets import lake, pipeline_config

    config = pipeline_config()
    decision = evaluate(
        config, lake(), run_id=context["run_id"], processing=job.get("Processing", job), s3=aws_clients(config)["s3"]
    )
    verdict = f"FIRE {decision['extra']['trigger']}" if decision["fire"] else "no trigger"
    print(
        f"quality: {decision['status']}; {verdict}: {decision['reason']}\n"
        f"violations: {decision['constraint_violations_uri']}\nreport: {decision['report_uri']}",
        flush=True,
    )
    return decision


def record_failed_window(window: dict[str, str], model: dict[str, Any], context: Context) -> dict[str, Any]:
    """The quality job failed after its retries: record the window as failed, with the job's failure reason."""
    from mlops.monitoring.quality_steps import record_failed_window as record

    return record_failed(record, "quality", window, model, context)


def emit_quality_degraded(decision: dict[str, Any], context: Context) -> dict[str, Any]:
    """Emit mlops_model_quality_degraded with the trigger and its evidence when the policy fired; else skip."""
    from airflow.sdk.exceptions import AirflowSkipException

    from mlops_airflow.assets import MODEL_QUALITY_DEGRADED

    if not decision.get("fire"):
        raise AirflowSkipException(f"no model-quality event: {decision.get('reason')}")
    context["outlet_events"][MODEL_QUALITY_DEGRADED].extra = decision["extra"]
    return decision["extra"]
