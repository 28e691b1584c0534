"""Local stand-in of the monitoring stage's sensor: it lists the local lake's capture folder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_airflow.operators.base import AWS_CONNECTION, S3_KEY_SENSOR, LocalStandIn
from mlops_airflow.operators.monitoring import CaptureSensorStep

if TYPE_CHECKING:
    from airflow.sdk import Context


class LocalCaptureSensor(CaptureSensorStep, LocalStandIn):
    """local ``wait_for_capture``: wait (reschedule mode) until capture files of the window are in the local lake."""

    ignored_provider_args = (*AWS_CONNECTION, "deferrable", *S3_KEY_SENSOR)

    def execute(self, context: Context) -> object:
        self.apply_timing()
        return super().execute(context)

    def poke(self, context: Context) -> bool:
        from mlops.monitoring.steps import list_capture_keys

        if self.forced():
            return True
        found = self.in_window(list_capture_keys(self.capture_uri))
        self.log.info(
            "%d capture file(s) of window %s .. %s under %s", len(found), self.window_start, self.window_end,
            self.capture_uri,
        )  # fmt: skip
        return bool(found)
