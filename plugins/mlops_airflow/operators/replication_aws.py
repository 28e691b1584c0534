"""The ingest stage's DMS steps on the aws target, on the Amazon provider's sensor and hooks.

The check reads DMS and CloudWatch responses and an S3 listing through boto3 clients: no
source-DB connection and no table read on the MWAA worker (DMS validates the data itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.providers.amazon.aws.sensors.dms import DmsTaskBaseSensor

from mlops_airflow.operators.base import StepOperator
from mlops_airflow.operators.replication import FAILED_STATUSES, READY_STATUSES, ReplicationCheckOperator


class DmsReplicationReadySensor(StepOperator, DmsTaskBaseSensor):
    """aws ``dms_sync``: wait (rescheduling) until the DMS task is running CDC or its full load stopped."""

    provider_defaults = {
        "target_statuses": list(READY_STATUSES),
        "termination_statuses": list(FAILED_STATUSES),
        "mode": "reschedule",
    }


class AwsReplicationCheckOperator(ReplicationCheckOperator):
    """aws ``check_replication``: evidence from DMS and CloudWatch through the provider's hooks."""

    template_fields: Sequence[str] = (*ReplicationCheckOperator.template_fields, "aws_conn_id")

    def __init__(self, *, aws_conn_id: str | None = "aws_default", region_name: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def collect_evidence(self, since: datetime | None) -> dict[str, Any]:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
        from airflow.providers.amazon.aws.hooks.dms import DmsHook
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from mlops.aws import dms_requests
        from mlops.replication.fresh_objects import count_fresh_s3_objects
        from mlops_airflow.targets import lake, pipeline_config

        config = pipeline_config()
        dms = DmsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).conn
        tasks = dms.describe_replication_tasks(
            **dms_requests.describe_replication_task_request(self.replication_task_arn)
        )
        if not tasks.get("ReplicationTasks"):
            raise RuntimeError(f"DMS task {self.replication_task_arn} not found; check aws.dms_replication_task_arn")
        stats = _all_table_statistics(dms, self.replication_task_arn)
        lag = _cdc_latency(
            AwsBaseHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type="cloudwatch").conn,
            tasks["ReplicationTasks"][0],
        )
        raw_root = lake(config).uri(config.lake.raw_prefix, config.source.schema_name)
        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        return {
            "tasks": tasks,
            "table_stats": stats,
            "cdc_lag_seconds": lag,
            "fresh_objects": count_fresh_s3_objects(s3, raw_root, since),
        }


def _all_table_statistics(dms: Any, task_arn: str) -> dict[str, Any]:
    from mlops.aws.dms_requests import describe_table_statistics_request

    request = describe_table_statistics_request(task_arn)
    statistics: list[dict[str, Any]] = []
    while True:
        page = dms.describe_table_statistics(**request)
        statistics += page.get("TableStatistics", [])
        if not page.get("Marker"):
            return {"ReplicationTaskArn": task_arn, "TableStatistics": statistics}
        request = {**request, "Marker": page["Marker"]}


def _cdc_latency(cloudwatch: Any, task: dict[str, Any]) -> float | None:
    """Worst CDCLatencySource + CDCLatencyTarget over the last window; None when DMS reported none."""
    from mlops.aws.dms_requests import cdc_latency_request, task_identifier

    instance_arn = task.get("ReplicationInstanceArn", "")
    request = cdc_latency_request(
        replication_instance_id=task_identifier(instance_arn) if instance_arn else "",
        task_resource_id=task_identifier(task["ReplicationTaskArn"]),
        end=datetime.now(UTC),
    )
    series = cloudwatch.get_metric_data(**request)["MetricDataResults"]
    values = [max(s["Values"]) for s in series if s.get("Values")]
    return sum(values) if values else None
