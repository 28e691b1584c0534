"""Jobs in the private network: with ``aws.subnet_ids``/``aws.security_group_ids`` (and
``aws.glue_connections``) set, every SageMaker training/processing request and both Glue job
definitions carry the VPC, and stay valid for botocore; unset, no request mentions a VPC."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mlops.aws import glue_requests
from mlops.aws import sagemaker_requests as sr
from mlops.config import AwsConfig, PipelineConfig
from tests.aws import test_ab_test_requests as ab_tests
from tests.aws import test_monitoring_requests as monitoring_tests
from tests.aws.botocore_validation import assert_valid_request

SUBNETS = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
GROUPS = ["sg-0a1b2c3d4e5f60718"]
NETWORK = AwsConfig(subnet_ids=SUBNETS, security_group_ids=GROUPS, glue_connections=["mlops-dev-private"])
VPC = {"SecurityGroupIds": GROUPS, "Subnets": SUBNETS}
ROLE = "arn:aws:iam::123456789012:role/mlops-sagemaker"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"


def _training(config: PipelineConfig) -> dict[str, Any]:
    return sr.training_job_request(
        config, name="mlops-train-1", image_uri=IMAGE, role_arn=ROLE,
        source_uri="s3://mlops-lake-dev/models/code/0123/sourcedir.tar.gz",
        channels={"train": "s3://mlops-lake-dev/curated/features/split=train"},
        output_uri="s3://mlops-lake-dev/models/training",
    )  # fmt: skip


def _evaluation(config: PipelineConfig) -> dict[str, Any]:
    return sr.evaluation_job_request(
        config, name="mlops-eval-1", image_uri=IMAGE, role_arn=ROLE,
        code_uri="s3://mlops-lake-dev/models/code/0123/source/",
        model_uri="s3://mlops-lake-dev/models/training/j/output/model.tar.gz",
        test_uri="s3://mlops-lake-dev/curated/features/split=test", output_uri="s3://mlops-lake-dev/models/evaluation/j",
    )  # fmt: skip


def _processing_requests(config: PipelineConfig, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every kind of processing job: evaluation, drift, model quality, baseline, A/B test."""
    monkeypatch.setattr(monitoring_tests, "PipelineConfig", lambda **kw: config.model_copy(update=kw))
    monkeypatch.setattr(ab_tests, "PipelineConfig", lambda **kw: config.model_copy(update=kw))
    requests = [_evaluation(config), monitoring_tests._request(["2026/11/24/16"]), ab_tests._request(["2026/11/24"])]
    return requests


def test_training_runs_in_the_configured_subnets() -> None:
    request = _training(PipelineConfig(aws=NETWORK))
    assert_valid_request("sagemaker", "CreateTrainingJob", request)
    assert request["VpcConfig"] == VPC


def test_every_processing_job_runs_in_the_configured_subnets(monkeypatch: pytest.MonkeyPatch) -> None:
    for request in _processing_requests(PipelineConfig(aws=NETWORK), monkeypatch):
        assert_valid_request("sagemaker", "CreateProcessingJob", request)
        assert request["NetworkConfig"] == {"VpcConfig": VPC}, request["ProcessingJobName"]


def test_glue_jobs_run_through_the_configured_connection() -> None:
    config = PipelineConfig(aws=NETWORK)
    for request in (glue_requests.create_job_request(config, ROLE),
                    glue_requests.create_validation_job_request(config, ROLE)):  # fmt: skip
        assert_valid_request("glue", "CreateJob", request)
        assert request["Connections"] == {"Connections": ["mlops-dev-private"]}


def test_without_network_settings_no_request_names_a_vpc(monkeypatch: pytest.MonkeyPatch) -> None:
    config = PipelineConfig()
    requests = [_training(config), *_processing_requests(config, monkeypatch),
                glue_requests.create_job_request(config, ROLE)]  # fmt: skip
    assert not any({"VpcConfig", "NetworkConfig", "Connections"} & set(r) for r in requests)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"subnet_ids": SUBNETS}, "go together"),
        ({"security_group_ids": GROUPS}, "go together"),
        ({"subnet_ids": ["subnet-xyz"], "security_group_ids": GROUPS}, "subnet_ids"),
        ({"subnet_ids": SUBNETS, "security_group_ids": ["sg-1", *GROUPS]}, "security_group_ids"),
        ({"subnet_ids": SUBNETS, "security_group_ids": [f"sg-0a1b2c3d4e5f6071{i}" for i in range(6)]}, "at most 5"),
    ],
)
def test_bad_network_settings_are_refused(settings: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        AwsConfig(**settings)
