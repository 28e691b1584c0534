"""Defaults every pipeline DAG shares: owner, retries, timeouts, the failure alert, tags and template macros."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mlops_airflow.callbacks import task_failure_alert

OWNER = "mlops"

DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(minutes=30),
    # after the last try: logged, and on aws published to the alerts topic (mlops_airflow.callbacks)
    "on_failure_callback": task_failure_alert,
}
# dagrun_timeout of the hourly DAGs: a run ends (failed) before the next one is due, so runs never pile up.
HOURLY_RUN_TIMEOUT = timedelta(minutes=55)
# dagrun_timeout of the Asset-triggered DAGs: their jobs (Glue, training, blue/green) plus retries fit in it.
PIPELINE_RUN_TIMEOUT = timedelta(hours=3)
# The longest a sensor may wait (tests/dags holds every sensor to it; monitoring.sensor_timeout_minutes <= 45).
SENSOR_TIMEOUT_BOUND = timedelta(minutes=45)


def pipeline_setting(path: str) -> Any:
    """Template macro ``{{ pipeline_setting('replication.max_cdc_lag_seconds') }}``: a config value.

    Evaluated when a task renders its templates, never at parse time.
    """
    from mlops_airflow.targets import pipeline_config

    node: Any = pipeline_config()
    for part in path.split("."):
        if not hasattr(node, part):
            raise KeyError(f"pipeline config has no key {path!r} (failed at {part!r})")
        node = getattr(node, part)
    return node


def dms_task_arn() -> str:
    """Template macro ``{{ dms_task_arn() }}``: the DMS replication task ARN of the current target."""
    from mlops_airflow.targets import replication_task_arn

    return replication_task_arn()


USER_DEFINED_MACROS: dict[str, Any] = {"pipeline_setting": pipeline_setting, "dms_task_arn": dms_task_arn}
