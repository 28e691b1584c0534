"""Requests the ingest stage makes to DMS, CloudWatch and S3 on the aws target.

Pure functions of their inputs; tests validate each against botocore's service model.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def describe_replication_task_request(task_arn: str) -> dict[str, Any]:
    """DMS DescribeReplicationTasks for one task, stats included."""
    return {
        "Filters": [{"Name": "replication-task-arn", "Values": [task_arn]}],
        "WithoutSettings": True,
    }


def describe_table_statistics_request(task_arn: str, max_records: int = 500) -> dict[str, Any]:
    """DMS DescribeTableStatistics for every table of the task (paginate with Marker)."""
    return {"ReplicationTaskArn": task_arn, "MaxRecords": max_records}


def task_identifier(task_arn: str) -> str:
    """The resource id at the end of a DMS task ARN (the CloudWatch dimension value)."""
    resource = task_arn.rsplit(":", 1)[-1]
    if not resource:
        raise ValueError(f"{task_arn!r} is not a DMS task ARN; expected arn:aws:dms:<region>:<account>:task:<id>")
    return resource


def cdc_latency_request(
    *, replication_instance_id: str, task_resource_id: str, end: datetime, window_minutes: int = 15
) -> dict[str, Any]:
    """CloudWatch GetMetricData for the task's CDCLatencySource and CDCLatencyTarget (seconds, max)."""

    def query(query_id: str, metric: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/DMS",
                    "MetricName": metric,
                    "Dimensions": [
                        {"Name": "ReplicationInstanceIdentifier", "Value": replication_instance_id},
                        {"Name": "ReplicationTaskIdentifier", "Value": task_resource_id},
                    ],
                },
                "Period": 60,
                "Stat": "Maximum",
            },
            "ReturnData": True,
        }

    return {
        "MetricDataQueries": [query("source", "CDCLatencySource"), query("target", "CDCLatencyTarget")],
        "StartTime": end - timedelta(minutes=window_minutes),
        "EndTime": end,
        "ScanBy": "TimestampDescending",
    }
