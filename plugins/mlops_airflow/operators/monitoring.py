"""The monitoring stage's step class: the sensor that waits for captured traffic of the run's window.

What each step of the mlops_monitor DAG does on each target is told once, in its doc_md
(``dags/mlops_monitor.py``); the baseline and drift jobs run with the training stage's processing
job class, the task bodies are in :mod:`mlops_airflow.tasks.monitoring`. The aws sensor (the
provider's S3KeySensor) is in :mod:`.monitoring_aws`, the local one in :mod:`.monitoring_local`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator

from mlops_airflow.dag_defaults import SENSOR_TIMEOUT_BOUND
from mlops_airflow.operators.base import StepOperator
from mlops_airflow.rendered import as_bool

UNSET = -1  # poke_interval / timeout: monitoring.sensor_poke_seconds / sensor_timeout_minutes, read at run time


class CaptureSensorStep(StepOperator, BaseSensorOperator):
    """``wait_for_capture``: wait (rescheduling or deferred) until capture files of the window exist.

    ``capture_uri`` is the endpoint's capture prefix; capture keys encode their time, so the window
    (``window_start`` .. ``window_end``) is a filter on key names. ``force`` succeeds at once. With
    ``soft_fail=True`` a timeout (no traffic) skips the rest of the run instead of failing it.
    """

    template_fields: Sequence[str] = ("capture_uri", "window_start", "window_end", "force")

    def __init__(
        self,
        *,
        capture_uri: str,
        window_start: str,
        window_end: str,
        force: bool | str = False,
        poke_interval: float = UNSET,
        timeout: float = UNSET,
        mode: str = "reschedule",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            poke_interval=poke_interval if poke_interval != UNSET else 60,
            timeout=timeout if timeout != UNSET else SENSOR_TIMEOUT_BOUND.total_seconds(),
            mode=mode,
            **kwargs,
        )
        self.poke_interval, self.timeout = poke_interval, timeout
        self.capture_uri, self.window_start, self.window_end, self.force = capture_uri, window_start, window_end, force

    def forced(self) -> bool:
        """The ``force`` Param: evaluate the window without waiting."""
        if as_bool(self.force, name="force"):
            self.log.info("force=True: evaluating the window without waiting for capture data")
            return True
        return False

    def apply_timing(self) -> None:
        """Unset poke interval and timeout come from ``monitoring`` in the pipeline config, read at run time."""
        from mlops_airflow.targets import pipeline_config

        monitoring = pipeline_config().monitoring
        if self.poke_interval == UNSET:
            self.poke_interval = monitoring.sensor_poke_seconds
        if self.timeout == UNSET:
            self.timeout = 60 * monitoring.sensor_timeout_minutes

    def in_window(self, keys: list[str]) -> list[str]:
        """The capture keys whose time is inside the window."""
        from mlops.monitoring.capture_keys import keys_in_window
        from mlops.monitoring.steps import as_time

        return keys_in_window(keys, as_time(self.window_start), as_time(self.window_end))
