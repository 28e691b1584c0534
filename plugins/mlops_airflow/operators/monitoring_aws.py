"""The monitoring stage on the aws target: the provider's S3KeySensor on the endpoint's capture prefix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

from mlops_airflow.operators.monitoring import CaptureSensorStep

if TYPE_CHECKING:
    from airflow.sdk import Context


class AwsCaptureSensor(CaptureSensorStep, S3KeySensor):
    """aws ``wait_for_capture``: the provider's S3KeySensor (deferrable) on ``<capture_uri>/*.jsonl``, whose
    ``check_fn`` keeps only objects of the window (capture keys encode their time)."""

    template_fields: Sequence[str] = (*S3KeySensor.template_fields, *CaptureSensorStep.template_fields)
    provider_defaults = {"bucket_key": "", "wildcard_match": True, "metadata_keys": ["Key"], "deferrable": True}

    def _check(self, files: list[dict[str, Any]], **context: Any) -> bool:
        found = self.in_window([f["Key"] for f in files if f.get("Key")])
        self.log.info("%d capture object(s) of window %s .. %s", len(found), self.window_start, self.window_end)
        return bool(found)

    def _target(self) -> None:
        """Point the sensor at the rendered capture prefix and bind the window filter to this instance."""
        bucket, _, prefix = self.capture_uri.removeprefix("s3://").partition("/")
        self.bucket_name, self.bucket_key = bucket, f"{prefix.rstrip('/')}/*.jsonl"
        # Bound at run time: at parse time window_start/window_end are still unrendered XComArgs.
        self.check_fn = self._check

    def execute(self, context: Context) -> Any:
        if self.forced():
            return None
        self.apply_timing()
        self._target()
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> None:
        self.apply_timing()
        self._target()
        return super().execute_complete(context, event)
