"""Every AWS request the monitoring and reporting stages build is valid for botocore's service model."""

from __future__ import annotations

import pytest

from mlops.aws.monitoring_requests import MAX_INPUTS, baseline_job_request, drift_job_request, quality_job_request
from mlops.config import PipelineConfig
from mlops.reporting.requests import query_request, send_message_batch_request, update_item_request
from tests.aws.botocore_validation import assert_valid_request

IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/mlops-sagemaker"


def _request(folders, aggregates=None):
    return drift_job_request(
        PipelineConfig(),
        name="mlops-drift-20261124170000-1a2b3c4d",
        image_uri=IMAGE,
        role_arn=ROLE,
        code_uri="s3://mlops-lake-dev/monitoring/code/0123456789abcdef/",
        baseline_uri="s3://mlops-lake-dev/monitoring/baselines/mlops-order-outcome/v3",
        capture_root="s3://mlops-lake-dev/capture",
        capture_folders=folders,
        output_uri="s3://mlops-lake-dev/monitoring/runs/mlops-orders/mlops-drift-20261124170000-1a2b3c4d",
        window_start="2026-11-24T16:00:00+00:00",
        window_end="2026-11-24T17:00:00+00:00",
        model_version=3,
        aggregates_uri=aggregates,
        tags={"mlops:stage": "monitoring"},
    )


def test_drift_job_request_is_valid():
    request = _request(
        ["AllTraffic/2026/11/24/16", "B/2026/11/24/16"],
        aggregates="s3://mlops-lake-dev/monitoring/runs/mlops-orders/x-reporting",
    )
    assert_valid_request("sagemaker", "CreateProcessingJob", request)
    inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
    assert inputs["capture-1"] == {
        **inputs["capture-1"],
        "S3Uri": "s3://mlops-lake-dev/capture/mlops-orders/B/2026/11/24/16",
        "LocalPath": "/opt/ml/processing/input/capture/B/2026/11/24/16",
    }
    assert request["AppSpecification"]["ContainerEntrypoint"] == [
        "python3",
        "/opt/ml/processing/input/code/drift_job.py",
    ]
    args = request["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--comparison-method") + 1] == "Robust"


def test_baseline_job_request_is_valid():
    config = PipelineConfig()
    request = baseline_job_request(
        config,
        name="mlops-baseline-20261124170000-1a2b3c4d",
        image_uri=IMAGE,
        role_arn=ROLE,
        code_uri="s3://mlops-lake-dev/monitoring/code/0123456789abcdef/",
        model_data_url="s3://mlops-lake-dev/models/training/mlops-train-1/output/model.tar.gz",
        training_data_uri="s3://mlops-lake-dev/curated/features/snapshots/s1/split=train",
        output_uri="s3://mlops-lake-dev/_staging/monitoring/baselines/g/v3/mlops-baseline-20261124170000-1a2b3c4d",
        tags={"mlops:stage": "monitoring"},
    )
    assert_valid_request("sagemaker", "CreateProcessingJob", request)
    inputs = {i["InputName"]: i["S3Input"]["LocalPath"] for i in request["ProcessingInputs"]}
    assert inputs == {
        "code": "/opt/ml/processing/input/code",
        "model": "/opt/ml/processing/input/model",
        "train": "/opt/ml/processing/input/train",
    }
    assert request["AppSpecification"]["ContainerEntrypoint"][-1] == "/opt/ml/processing/input/code/baseline_job.py"
    args = request["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--comparison-threshold") + 1] == str(config.monitoring.comparison_threshold)
    assert request["ProcessingResources"]["ClusterConfig"]["InstanceType"] == config.monitoring.processing_instance_type


@pytest.mark.parametrize("hours", [1, 24])
def test_quality_job_request_is_valid(hours):
    folders = [f"AllTraffic/2026/11/24/{h:02d}" for h in range(hours)]
    request = quality_job_request(
        PipelineConfig(),
        name="mlops-quality-20261124170000-1a2b3c4d",
        image_uri=IMAGE,
        role_arn=ROLE,
        code_uri="s3://mlops-lake-dev/monitoring/code/0123456789abcdef/",
        capture_root="s3://mlops-lake-dev/capture",
        capture_folders=folders,
        ground_truth_uri="s3://mlops-lake-dev/raw/dms/shop/orders",
        output_uri="s3://mlops-lake-dev/monitoring/runs/mlops-orders/mlops-quality-20261124170000-1a2b3c4d",
        window_start="2026-11-23T17:00:00+00:00",
        window_end="2026-11-24T17:00:00+00:00",
        model_version=3,
        evaluated_map=0.61234567,
        tags={"mlops:stage": "monitoring"},
    )
    assert_valid_request("sagemaker", "CreateProcessingJob", request)
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in request["ProcessingInputs"]}
    assert inputs["ground_truth"] == "s3://mlops-lake-dev/raw/dms/shop/orders/"  # the folder, not a key prefix
    assert len(inputs) <= MAX_INPUTS and (hours == 1) == ("capture-0" in inputs)
    assert request["AppSpecification"]["ContainerEntrypoint"][-1] == "/opt/ml/processing/input/code/quality_job.py"
    args = request["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--baseline-map") + 1] == "0.612346" and args[args.index("--max-map-drop") + 1] == "0.05"


def test_drift_job_reads_the_baseline_folder_not_a_key_prefix():
    """``.../v3`` as an S3Prefix would also download ``.../v30/...``: the input names the folder."""
    baseline = next(i for i in _request([])["ProcessingInputs"] if i["InputName"] == "baseline")
    assert baseline["S3Input"]["S3Uri"] == "s3://mlops-lake-dev/monitoring/baselines/mlops-order-outcome/v3/"


def test_too_many_folders_use_the_endpoint_prefix_and_none_use_no_input():
    request = _request([f"AllTraffic/2026/11/{d:02d}/00" for d in range(1, 31)])
    assert_valid_request("sagemaker", "CreateProcessingJob", request)
    assert len(request["ProcessingInputs"]) <= MAX_INPUTS
    assert request["ProcessingInputs"][-1]["S3Input"]["S3Uri"] == "s3://mlops-lake-dev/capture/mlops-orders"
    empty = _request([])
    assert_valid_request("sagemaker", "CreateProcessingJob", empty)
    assert [i["InputName"] for i in empty["ProcessingInputs"]] == ["code", "baseline"]


def test_reporting_requests_are_valid():
    update = update_item_request(
        "mlops-dev-realtime-metrics",
        "mlops-orders#AllTraffic",
        "2026-11-24T17:05Z",
        {"predictions": 3, "label_delivered": 2, "latency_ms_sum": 31.5},
        30,
    )
    assert_valid_request("dynamodb", "UpdateItem", update)
    assert update["ExpressionAttributeValues"][":c1"] == {"N": "31.5"}
    assert_valid_request(
        "dynamodb", "Query", query_request("t-1", "mlops-orders#AllTraffic", "2026-11-24T17:00Z", "2026-11-24T17:59Z")
    )
    batch = send_message_batch_request(
        "https://sqs.eu-west-1.amazonaws.com/123456789012/mlops-dev-prediction-events",
        [{"type": "prediction", "time": "2026-11-24T17:05:00Z"}] * 10,
    )
    assert_valid_request("sqs", "SendMessageBatch", batch)
    with pytest.raises(ValueError):
        send_message_batch_request("q", [{}] * 11)


def test_aws_capture_sensor_pokes_s3_through_the_provider(fake_aws_credentials):
    """The aws ``wait_for_capture`` sensor (provider S3KeySensor subclass) finds the window's objects on S3 (moto)."""
    from moto import mock_aws

    from mlops_airflow.operators.monitoring_aws import AwsCaptureSensor

    sensor = AwsCaptureSensor(
        task_id="wait",
        capture_uri="s3://lake/capture/mlops-orders",
        window_start="2026-11-24T17:00:00+00:00",
        window_end="2026-11-24T18:00:00+00:00",
        soft_fail=True,
        aws_conn_id=None,
    )
    assert sensor.deferrable is True and sensor.soft_fail is True and sensor.mode == "reschedule"
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        sensor._target()
        assert (sensor.bucket_name, sensor.bucket_key) == ("lake", "capture/mlops-orders/*.jsonl")
        assert sensor.poke({}) is False
        s3.put_object(Bucket="lake", Key="capture/mlops-orders/AllTraffic/2026/11/24/15/10-00-000-a.jsonl", Body=b"{}")
        assert sensor.poke({}) is False  # an earlier window's object
        s3.put_object(Bucket="lake", Key="capture/mlops-orders/AllTraffic/2026/11/24/17/10-00-000-b.jsonl", Body=b"{}")
        assert sensor.poke({}) is True
