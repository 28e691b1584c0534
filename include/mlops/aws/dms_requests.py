"""Requests the ingest stage makes to DMS, CloudWatch and S3 on the aws target, and the DMS settings.

Pure functions of their inputs; tests validate each against botocore's service model.
:func:`s3_target_settings` and :func:`validation_settings` are the S3 target endpoint and task
settings ``infra/cfn/data.yaml`` deploys (a test keeps the two equal); the local DMS stand-in
reads the same dicts, so it lays out files and validates the way the deployed task does.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mlops.config import PipelineConfig

#: S3 target validation needs date-partitioned CDC folders with a day component (DMS >= 3.5.0).
DATE_PARTITION_SEQUENCE = "YYYYMMDD"
DATE_PARTITION_DELIMITER = "SLASH"
#: The same date folder as a strftime format (``2025/01/02``): date folders sort chronologically.
DATE_PARTITION_FORMAT = "%Y/%m/%d"
#: The CDC latency the check reads is the worst of this many minutes of CloudWatch datapoints.
CDC_LATENCY_WINDOW_MINUTES = 15


def s3_target_settings(config: PipelineConfig) -> dict[str, Any]:
    """The S3Settings of the DMS target endpoint that fix the raw layout and allow S3 target validation.

    Parquet files with ``Op`` on every row (full load too) and the commit-timestamp column; CDC files
    in ``YYYY/MM/DD`` folders of their commit date (UTC). DMS documents Parquet, the timestamp
    column and date partitioning with a day component as prerequisites of S3 target validation.
    """
    return {
        "BucketFolder": config.lake.raw_prefix,
        "DataFormat": "parquet",
        "IncludeOpForFullLoad": config.replication.include_op_for_full_load,
        "TimestampColumnName": config.replication.timestamp_column,
        "CdcInsertsOnly": False,
        "CdcInsertsAndUpdates": False,
        "DatePartitionEnabled": True,
        "DatePartitionSequence": DATE_PARTITION_SEQUENCE,
        "DatePartitionDelimiter": DATE_PARTITION_DELIMITER,
    }


def validation_settings(config: PipelineConfig) -> dict[str, Any]:
    """The ``ValidationSettings`` block of the replication task settings (DMS data validation).

    Row-level comparison of every replicated column, ``PartitionSize`` rows per key range, and
    validation suspended for a table after ``FailureMaxCount`` failed records.
    """
    replication = config.replication
    return {
        "EnableValidation": replication.validation_enabled,
        "ValidationMode": "ROW_LEVEL",
        "ThreadCount": 5,
        "PartitionSize": replication.validation_partition_size,
        "FailureMaxCount": replication.validation_failure_max_count,
        "TableFailureMaxCount": 1000,
        "RecordFailureDelayInMinutes": 5,
        "RecordSuspendDelayInMinutes": 30,
        "HandleCollationDiff": True,
        "SkipLobColumns": False,
        "ValidationOnly": False,
    }


def list_objects_request(
    bucket: str, prefix: str, *, start_after: str | None = None, folders_only: bool = False
) -> dict[str, Any]:
    """S3 ListObjectsV2 under ``prefix`` (paginate with ContinuationToken).

    ``start_after`` (a key below ``prefix``, without it) skips the keys that sort before it;
    ``folders_only`` lists the next level's folders (CommonPrefixes) instead of every object.
    """
    folder = prefix.strip("/") + "/"
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": folder}
    if start_after:
        request["StartAfter"] = folder + start_after
    if folders_only:
        request["Delimiter"] = "/"
    return request


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
    *,
    replication_instance_id: str,
    task_resource_id: str,
    end: datetime,
    window_minutes: int = CDC_LATENCY_WINDOW_MINUTES,
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


def reload_tables_request(task_arn: str, schema: str, tables: list[str]) -> dict[str, Any]:
    """DMS ReloadTables: a fresh full load of ``tables`` (``data-reload``) while CDC goes on for the others.

    The fix for a source schema change CDC cannot apply (a dropped, renamed or retyped column) and
    for rows that failed to load. ``tables`` must not be empty (DMS reloads only the tables listed).
    """
    if not tables:
        raise ValueError("ReloadTables needs at least one table; list the tables to reload")
    return {
        "ReplicationTaskArn": task_arn,
        "TablesToReload": [{"SchemaName": schema, "TableName": table} for table in tables],
        "ReloadOption": "data-reload",
    }
