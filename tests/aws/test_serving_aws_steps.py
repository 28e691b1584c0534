"""The aws classes of issue 17's serving steps against moto (in-process): staging target models under a
multi-model prefix with S3 CopyObject, and promoting an A/B winner with UpdateEndpointWeightsAndCapacities."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from mlops.serving.ab_decision import KEEP, PROMOTE

BUCKET = "mlops-lake-dev"
ROLE = "arn:aws:iam::123456789012:role/mlops-sagemaker"


@pytest.fixture
def aws(fake_aws_credentials):
    with mock_aws():
        yield


def test_stage_target_models_copies_each_version_under_the_prefix(aws):
    from mlops_airflow.operators.serving_aws import AwsStageTargetModelsOperator

    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for version in (3, 4):
        s3.put_object(Bucket=BUCKET, Key=f"models/training/j{version}/output/model.tar.gz", Body=f"v{version}".encode())
    prefix = f"s3://{BUCKET}/models/multi-model/mlops-orders/"
    staged = [
        {"source": f"s3://{BUCKET}/models/training/j{v}/output/model.tar.gz", "target": f"{prefix}v{v}.tar.gz",
         "target_model": f"v{v}.tar.gz"}
        for v in (4, 3)
    ]  # fmt: skip
    operator = AwsStageTargetModelsOperator(task_id="stage", target_models=staged, region_name="eu-west-1")
    assert operator.execute({}) == ["v4.tar.gz", "v3.tar.gz"]
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="models/multi-model/mlops-orders/")["Contents"]
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in listed) == ["v3.tar.gz", "v4.tar.gz"]
    body = s3.get_object(Bucket=BUCKET, Key="models/multi-model/mlops-orders/v4.tar.gz")["Body"].read()
    assert body == b"v4"
    single = AwsStageTargetModelsOperator(task_id="stage_target_models", target_models=[], region_name="eu-west-1")
    assert single.execute({}) == []


def _ab_endpoint() -> None:
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    variants = []
    for name in ("challenger", "champion"):
        sagemaker.create_model(
            ModelName=f"mlops-orders-{name}",
            ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": "image", "ModelDataUrl": f"s3://{BUCKET}/models/{name}/model.tar.gz"},
        )
        variants.append({"VariantName": name, "ModelName": f"mlops-orders-{name}", "InitialVariantWeight": 0.5,
                         "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"})  # fmt: skip
    sagemaker.create_endpoint_config(EndpointConfigName="mlops-orders-ab", ProductionVariants=variants)
    sagemaker.create_endpoint(EndpointName="mlops-orders", EndpointConfigName="mlops-orders-ab")


@pytest.mark.parametrize("action", [PROMOTE, KEEP])
def test_promote_winner_shifts_traffic_only_on_promotion(aws, action):
    from mlops_airflow.operators.serving_aws import AwsPromoteWinnerOperator

    _ab_endpoint()
    winner, loser = ("challenger", "champion") if action == PROMOTE else ("champion", "challenger")
    decision = {"action": action, "winner": winner, "loser": loser, "endpoint_name": "mlops-orders", "reason": "r"}
    result = AwsPromoteWinnerOperator(task_id="promote_winner", decision=decision, region_name="eu-west-1").execute({})
    assert result["promoted"] is (action == PROMOTE)
    described = boto3.client("sagemaker", region_name="eu-west-1").describe_endpoint(EndpointName="mlops-orders")
    weights = {v["VariantName"]: v["DesiredWeight"] for v in described["ProductionVariants"]}
    expected = {"challenger": 1.0, "champion": 0.0} if action == PROMOTE else {"challenger": 0.5, "champion": 0.5}
    assert weights == expected
