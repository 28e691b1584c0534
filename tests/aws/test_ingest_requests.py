"""Every AWS request the ingest stage makes, and the DMS settings it deploys, are valid for botocore's model."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mlops.aws import dms_requests
from mlops.config import PipelineConfig
from tests.aws.botocore_validation import assert_valid_request

TASK_ARN = "arn:aws:dms:eu-west-1:123456789012:task:ABCDEFGHIJKLMNOP"


def test_describe_replication_tasks_request_is_valid():
    assert_valid_request("dms", "DescribeReplicationTasks", dms_requests.describe_replication_task_request(TASK_ARN))


def test_describe_table_statistics_request_is_valid():
    assert_valid_request("dms", "DescribeTableStatistics", dms_requests.describe_table_statistics_request(TASK_ARN))


def test_cdc_latency_request_is_valid():
    request = dms_requests.cdc_latency_request(
        replication_instance_id="mlops-dev", task_resource_id="ABCDEFGHIJKLMNOP", end=datetime(2026, 11, 24, tzinfo=UTC)
    )
    assert_valid_request("cloudwatch", "GetMetricData", request)
    metrics = {q["MetricStat"]["Metric"]["MetricName"] for q in request["MetricDataQueries"]}
    assert metrics == {"CDCLatencySource", "CDCLatencyTarget"}


def test_reload_tables_request_is_valid():
    request = dms_requests.reload_tables_request(TASK_ARN, "shop", ["orders", "customers"])
    assert_valid_request("dms", "ReloadTables", request)
    assert request["TablesToReload"] == [
        {"SchemaName": "shop", "TableName": "orders"},
        {"SchemaName": "shop", "TableName": "customers"},
    ]
    assert request["ReloadOption"] == "data-reload"
    with pytest.raises(ValueError, match="at least one table"):
        dms_requests.reload_tables_request(TASK_ARN, "shop", [])


def test_validation_catches_a_bad_request():
    """The validator itself can fail: a misspelled key is reported."""
    with pytest.raises(AssertionError, match="ReplicationTaskArns"):
        assert_valid_request("dms", "DescribeTableStatistics", {"ReplicationTaskArns": TASK_ARN})


def test_task_identifier():
    assert dms_requests.task_identifier(TASK_ARN) == "ABCDEFGHIJKLMNOP"
    with pytest.raises(ValueError, match="not a DMS task ARN"):
        dms_requests.task_identifier("arn:aws:dms:eu-west-1:123:task:")


# ---- the DMS settings the stack deploys and the local stand-in reads ----------------------------------

#: The ValidationSettings keys DMS documents (data validation task settings).
VALIDATION_SETTING_KEYS = {
    "EnableValidation", "ValidationMode", "ThreadCount", "PartitionSize", "FailureMaxCount", "TableFailureMaxCount",
    "RecordFailureDelayInMinutes", "RecordFailureDelayLimitInMinutes", "RecordSuspendDelayInMinutes",
    "MaxKeyColumnSize", "HandleCollationDiff", "SkipLobColumns", "ValidationPartialLobSize",
    "ValidationQueryCdcDelaySeconds", "ValidationOnly",
}  # fmt: skip
ENDPOINT_ARN = "arn:aws:dms:eu-west-1:123456789012:endpoint:ABCDEFGHIJKLMNOP"


def test_s3_target_settings_are_valid_and_meet_the_s3_validation_prerequisites():
    settings = dms_requests.s3_target_settings(PipelineConfig())
    assert_valid_request("dms", "ModifyEndpoint", {"EndpointArn": ENDPOINT_ARN, "S3Settings": settings})
    # DMS >= 3.5.0 validates S3 targets only with Parquet, a timestamp column and date-partitioned
    # CDC folders whose sequence has a day component.
    assert settings["DataFormat"] == "parquet" and settings["TimestampColumnName"] == "dms_commit_ts"
    assert settings["DatePartitionEnabled"] is True
    assert "DD" in settings["DatePartitionSequence"] and settings["DatePartitionSequence"] != "YYYYMM"
    assert settings["BucketFolder"] == "raw/dms" and settings["IncludeOpForFullLoad"] is True


def test_validation_settings_are_valid_task_settings_from_the_config():
    config = PipelineConfig.model_validate(
        {"replication": {"validation_partition_size": 5000, "validation_failure_max_count": 7}}
    )
    settings = dms_requests.validation_settings(config)
    assert set(settings) <= VALIDATION_SETTING_KEYS
    assert (settings["EnableValidation"], settings["ValidationMode"]) == (True, "ROW_LEVEL")
    assert (settings["PartitionSize"], settings["FailureMaxCount"]) == (5000, 7)
    request = {
        "ReplicationTaskArn": TASK_ARN,
        "ReplicationTaskSettings": json.dumps({"ValidationSettings": settings}),
    }
    assert_valid_request("dms", "ModifyReplicationTask", request)


def test_list_objects_requests_are_valid():
    request = dms_requests.list_objects_request("mlops-lake-dev", "/raw/dms/shop")
    assert request == {"Bucket": "mlops-lake-dev", "Prefix": "raw/dms/shop/"}
    assert_valid_request("s3", "ListObjectsV2", request)
    folders = dms_requests.list_objects_request("mlops-lake-dev", "raw/dms/shop", folders_only=True)
    assert folders["Delimiter"] == "/"
    assert_valid_request("s3", "ListObjectsV2", folders)
    recent = dms_requests.list_objects_request("mlops-lake-dev", "raw/dms/shop/orders/", start_after="2026/11/30")
    assert recent["StartAfter"] == "raw/dms/shop/orders/2026/11/30"
    assert_valid_request("s3", "ListObjectsV2", recent)


def test_date_partition_format_is_the_endpoint_setting():
    from mlops.replication.lake_io import date_partition

    moment = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
    expected = date_partition(moment, dms_requests.DATE_PARTITION_SEQUENCE, dms_requests.DATE_PARTITION_DELIMITER)
    assert moment.strftime(dms_requests.DATE_PARTITION_FORMAT) == expected == "2026/11/30"
