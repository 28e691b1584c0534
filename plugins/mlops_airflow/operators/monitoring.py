"""Operators and task bodies of the monitoring stage (DESIGN.md §1.1: one class per target, same arguments).

==================  ===================================================  ==========================================
step                aws                                                  local
==================  ===================================================  ==========================================
``capture_sensor``  ``AwsCaptureSensor``: the provider's S3KeySensor     :class:`LocalCaptureSensor`: lists the
                    (deferrable), wildcard on the endpoint's capture      local lake's capture folder, reschedule
                    prefix, ``check_fn`` keeps objects of the window      mode
==================  ===================================================  ==========================================

Both take ``capture_uri`` (the endpoint's capture prefix), ``window_start``, ``window_end`` and
``force`` (succeed at once), plus the sensor arguments. ``poke_interval`` and ``timeout`` default to
``monitoring.sensor_poke_seconds`` / ``sensor_timeout_minutes``, read when the task runs. With
``soft_fail=True`` a timeout (no traffic) skips the run instead of failing it.

The baseline job and the drift job run with the training stage's ``sagemaker_processing`` step
(provider's SageMakerProcessingOperator, deferrable / the local runner). The ``*_task`` functions
below are the bodies of the mlops_monitor DAG's ``@task``s; they call :mod:`mlops.monitoring.steps`
and :mod:`mlops.monitoring.baseline_steps`. They run on the worker, so they only build requests,
list keys and move small JSON files; AWS calls go through the provider hooks' clients (made only
when the lake is on S3).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

AWS_ONLY_ARGS = ("aws_conn_id", "region_name", "verify", "botocore_config", "deferrable")
UNSET = -1


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes", "on")


class _CaptureWindowMixin:
    """Window arguments, config-driven timing, and the key filter shared by both targets."""

    capture_uri: str
    window_start: str
    window_end: str
    force: Any
    log: Any

    def _apply_timing(self) -> None:
        from mlops_airflow.targets import pipeline_config

        monitoring = pipeline_config().monitoring
        if self.poke_interval == UNSET:  # type: ignore[attr-defined]
            self.poke_interval = monitoring.sensor_poke_seconds  # type: ignore[attr-defined]
        if self.timeout == UNSET:  # type: ignore[attr-defined]
            self.timeout = 60 * monitoring.sensor_timeout_minutes  # type: ignore[attr-defined]

    def in_window(self, keys: list[str]) -> list[str]:
        from mlops.monitoring.capture_keys import keys_in_window
        from mlops.monitoring.steps import as_time

        return keys_in_window(keys, as_time(self.window_start), as_time(self.window_end))


class LocalCaptureSensor(_CaptureWindowMixin, BaseSensorOperator):
    """local ``capture_sensor``: wait (reschedule mode) until capture files of the window are in the local lake."""

    template_fields: Sequence[str] = ("capture_uri", "window_start", "window_end", "force")

    def __init__(
        self,
        *,
        capture_uri: str,
        window_start: str,
        window_end: str,
        force: Any = False,
        poke_interval: float = UNSET,
        timeout: float = UNSET,
        mode: str = "reschedule",
        **kwargs: Any,
    ) -> None:
        self.aws_args = {name: kwargs.pop(name) for name in AWS_ONLY_ARGS if name in kwargs}
        super().__init__(
            poke_interval=poke_interval if poke_interval != UNSET else 60,
            timeout=timeout if timeout != UNSET else 3000,
            mode=mode,
            **kwargs,
        )
        self.poke_interval, self.timeout = poke_interval, timeout
        self.capture_uri, self.window_start, self.window_end, self.force = capture_uri, window_start, window_end, force

    def execute(self, context: Context) -> Any:
        self._apply_timing()
        return super().execute(context)

    def poke(self, context: Context) -> bool:
        from mlops.monitoring.steps import list_capture_keys

        if _truthy(self.force):
            self.log.info("force=True: evaluating the window without waiting for capture data")
            return True
        found = self.in_window(list_capture_keys(self.capture_uri))
        self.log.info(
            "%d capture file(s) of window %s .. %s under %s",
            len(found),
            self.window_start,
            self.window_end,
            self.capture_uri,
        )
        return bool(found)


def _build_aws_sensor() -> type:
    from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

    class AwsCaptureSensor(_CaptureWindowMixin, S3KeySensor):
        """aws ``capture_sensor``: the provider's S3KeySensor (deferrable) on ``<capture_uri>/*.jsonl``,
        whose ``check_fn`` keeps only objects of the window (capture keys encode their time)."""

        template_fields: Sequence[str] = (
            *S3KeySensor.template_fields,
            "capture_uri",
            "window_start",
            "window_end",
            "force",
        )

        def __init__(
            self,
            *,
            capture_uri: str,
            window_start: str,
            window_end: str,
            force: Any = False,
            poke_interval: float = UNSET,
            timeout: float = UNSET,
            mode: str = "reschedule",
            deferrable: bool = True,
            **kwargs: Any,
        ) -> None:
            super().__init__(
                bucket_key="",
                wildcard_match=True,
                check_fn=self._check,
                metadata_keys=["Key"],
                deferrable=deferrable,
                mode=mode,
                poke_interval=poke_interval if poke_interval != UNSET else 60,
                timeout=timeout if timeout != UNSET else 3000,
                **kwargs,
            )
            self.poke_interval, self.timeout = poke_interval, timeout
            self.capture_uri, self.window_start, self.window_end, self.force = (
                capture_uri,
                window_start,
                window_end,
                force,
            )

        def _check(self, files: list[dict[str, Any]], **context: Any) -> bool:
            found = self.in_window([f["Key"] for f in files if f.get("Key")])
            self.log.info("%d capture object(s) of window %s .. %s", len(found), self.window_start, self.window_end)
            return bool(found)

        def _target(self) -> None:
            bucket, _, prefix = self.capture_uri.removeprefix("s3://").partition("/")
            self.bucket_name, self.bucket_key = bucket, f"{prefix.rstrip('/')}/*.jsonl"
            # Bind the key filter to the instance that runs: the one bound in __init__ belongs to the
            # parsed task, whose window_start/window_end are unrendered XComArgs.
            self.check_fn = self._check

        def execute(self, context: Context) -> Any:
            if _truthy(self.force):
                self.log.info("force=True: evaluating the window without waiting for capture data")
                return None
            self._apply_timing()
            self._target()
            return super().execute(context)

        def execute_complete(self, context: Context, event: dict[str, Any]) -> None:
            self._apply_timing()
            self._target()
            return super().execute_complete(context, event)

    AwsCaptureSensor.__qualname__ = "AwsCaptureSensor"
    return AwsCaptureSensor


_AWS: dict[str, type] = {}


def __getattr__(name: str) -> type:
    if name == "AwsCaptureSensor":
        if name not in _AWS:
            _AWS[name] = _build_aws_sensor()
        return _AWS[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---- task bodies of the mlops_monitor DAG -----------------------------------------------------------


def _hook_client(service: str, conn_id: str | None) -> Any:
    """A boto3 client of ``service`` from the provider's hook (the connection's credentials, region, endpoint)."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id=conn_id, client_type=service).get_conn()


def _clients(config: Any) -> dict[str, Callable[[], Any]]:
    """Factories of the s3 / sagemaker / dynamodb clients, each built once and only when a step touches AWS."""
    conn_id = config.aws.conn_id
    return {
        service: functools.cache(functools.partial(_hook_client, service, conn_id))
        for service in ("s3", "sagemaker", "dynamodb")
    }


def _run_end(context: Context) -> Any:
    params = context["params"]
    if params.get("window_end"):
        return params["window_end"]
    dag_run = context["dag_run"]
    if getattr(dag_run, "run_type", None) == "scheduled" and context.get("data_interval_end"):
        return context["data_interval_end"]
    return dag_run.run_after


def plan_window_task(context: Context) -> dict[str, str]:
    """This run's window: scheduled runs end at the data interval's end, manual runs at ``window_end``
    (Param) or when they were triggered; a window starts where the previous one ended."""
    from mlops.monitoring.steps import plan_window
    from mlops_airflow.targets import lake, pipeline_config

    config, the_lake = pipeline_config(), lake()
    endpoint = config.serving.endpoint_name
    minutes = context["params"].get("window_minutes") or config.monitoring.window_minutes
    window = plan_window(
        the_lake,
        endpoint,
        run_id=context["run_id"],
        end=_run_end(context),
        window_minutes=int(minutes),
        s3=_clients(config)["s3"],
    )
    return {**window, "endpoint_name": endpoint, "capture_uri": the_lake.capture(endpoint)}


def resolve_model_task(context: Context) -> dict[str, Any]:
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


def plan_baseline_task(model: dict[str, Any], context: Context) -> dict[str, Any] | None:
    """The baseline job's CreateProcessingJob request; None (the short-circuit skips the job) when the
    model version's baseline is already in place."""
    from mlops.monitoring.baseline_steps import plan_baseline
    from mlops.monitoring.steps import MonitoringError
    from mlops_airflow.targets import lake, pipeline_config

    config = pipeline_config()
    clients = _clients(config)
    try:
        return plan_baseline(
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


def finish_baseline_task(model: dict[str, Any], job: dict[str, Any] | None, context: Context) -> dict[str, Any]:
    """Swap the baseline job's staged files in (marker last), or return the cached baseline when no job ran."""
    from mlops.monitoring.baseline_steps import finish_baseline
    from mlops.monitoring.steps import MonitoringError
    from mlops_airflow.targets import lake, pipeline_config

    processing = (job or {}).get("Processing")
    try:
        return finish_baseline(lake(), model, processing, s3=_clients(pipeline_config())["s3"])
    except MonitoringError as exc:
        raise _baseline_failure(model, exc) from None


def build_request_task(
    window: dict[str, str], model: dict[str, Any], baseline: dict[str, Any], context: Context
) -> dict[str, Any]:
    """Publish the jobs' code and the window's real-time aggregates; build CreateProcessingJob."""
    from mlops.monitoring import steps
    from mlops_airflow.targets import lake, pipeline_config

    config, the_lake = pipeline_config(), lake()
    clients = _clients(config)
    keys = steps.list_capture_keys(window["capture_uri"], clients["s3"])
    folders = steps.window_folders(keys, window["window_start"], window["window_end"])
    name = steps.job_name(config, context["run_id"], context["dag_run"].run_after)
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


def evaluate_task(job: dict[str, Any], context: Context) -> dict[str, Any]:
    """Record the window and apply the retraining policy (consecutive windows, cooldown, one trigger per episode)."""
    from mlops.monitoring.steps import evaluate
    from mlops_airflow.targets import lake, pipeline_config

    config = pipeline_config()
    decision = evaluate(
        config, lake(), run_id=context["run_id"], processing=job.get("Processing", job), s3=_clients(config)["s3"]
    )
    print(
        f"policy: {'FIRE' if decision['fire'] else 'no trigger'}: {decision['reason']}\n"
        f"violations: {decision['constraint_violations_uri']}\nreport: {decision['report_uri']}",
        flush=True,
    )
    return decision


def record_failed_window_task(window: dict[str, str], model: dict[str, Any], context: Context) -> dict[str, Any]:
    """The drift job failed after its retries: record the window as failed, with the job's failure reason."""
    from mlops.monitoring.steps import record_failed_window
    from mlops_airflow.targets import lake, pipeline_config

    config = pipeline_config()
    clients = _clients(config)
    record = record_failed_window(
        config,
        lake(),
        run_id=context["run_id"],
        run_after=context["dag_run"].run_after,
        window=window,
        model=model,
        s3=clients["s3"],
        sagemaker=clients["sagemaker"],
    )
    print(f"window {record['window_start']} .. {record['window_end']} recorded as failed: {record['reason']}")
    return record


def emit_task(decision: dict[str, Any], context: Context) -> dict[str, Any]:
    """Emit the drift Asset event with details when the policy fired; otherwise skip (no event)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from mlops_airflow.assets import DRIFT_DETECTED

    if not decision.get("fire"):
        raise AirflowSkipException(f"no drift event: {decision.get('reason')}")
    context["outlet_events"][DRIFT_DETECTED].extra = decision["extra"]
    return decision["extra"]
