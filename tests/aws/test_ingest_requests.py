"""Every AWS request the ingest stage makes is valid for botocore's service model."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlops.aws import dms_requests
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


def test_validation_catches_a_bad_request():
    """The validator itself can fail: a misspelled key is reported."""
    with pytest.raises(AssertionError, match="ReplicationTaskArns"):
        assert_valid_request("dms", "DescribeTableStatistics", {"ReplicationTaskArns": TASK_ARN})


def test_task_identifier():
    assert dms_requests.task_identifier(TASK_ARN) == "ABCDEFGHIJKLMNOP"
    with pytest.raises(ValueError, match="not a DMS task ARN"):
        dms_requests.task_identifier("arn:aws:dms:eu-west-1:123:task:")
