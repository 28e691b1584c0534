"""The A/B test's requests are valid for botocore: the analysis processing job and the promotion."""

from __future__ import annotations

import pytest

from mlops.aws import ab_test_requests as ab
from mlops.config import AbTestConfig, ConfigError, PipelineConfig, ServingConfig, ServingVariant, load_config
from tests.aws.botocore_validation import assert_valid_request

IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/mlops-sagemaker"
AB = ServingConfig(
    variants=(ServingVariant(name="challenger", weight=0.5), ServingVariant(name="champion", weight=0.5)),
    ab_test=AbTestConfig(bootstrap_samples=500, confidence=0.9),
)


def _request(folders: list[str], labels: str | None = "s3://mlops-lake-dev/curated/features/snapshot=1"):
    return ab.ab_job_request(
        PipelineConfig(serving=AB),
        name="mlops-ab-20261201100000-deadbeef",
        image_uri=IMAGE,
        role_arn=ROLE,
        code_uri="s3://mlops-lake-dev/monitoring/code/ab-0123456789abcdef/",
        capture_root="s3://mlops-lake-dev/capture",
        capture_folders=folders,
        labels_uri=labels,
        output_uri="s3://mlops-lake-dev/monitoring/ab-tests/mlops-orders/mlops-ab-20261201100000-deadbeef",
        window_start="2026-11-24T10:00:00+00:00",
        window_end="2026-12-01T10:00:00+00:00",
        tags={"mlops:stage": "ab-test"},
    )


def test_ab_job_request_is_valid_and_names_the_roles():
    request = _request(["champion/2026/11/30/10", "challenger/2026/11/30/10"])
    assert_valid_request("sagemaker", "CreateProcessingJob", request)
    arguments = request["AppSpecification"]["ContainerArguments"]
    options = dict(zip(arguments[::2], arguments[1::2], strict=True))
    assert options["--champion"] == "champion" and options["--challenger"] == "challenger"
    assert options["--confidence"] == "0.9" and options["--bootstrap-samples"] == "500"
    names = [i["InputName"] for i in request["ProcessingInputs"]]
    assert names[:2] == ["code", "labels"] and len(names) == 4
    labels = request["ProcessingInputs"][1]["S3Input"]
    assert labels["S3Uri"].endswith("snapshot=1/")  # a folder, not every key starting with "snapshot=1"


def test_many_capture_folders_become_the_endpoint_prefix_and_no_labels_is_fine():
    request = _request([f"champion/2026/11/{d:02d}/10" for d in range(1, 20)], labels=None)
    assert_valid_request("sagemaker", "CreateProcessingJob", request)
    assert [i["InputName"] for i in request["ProcessingInputs"]] == ["code", "capture"]


def test_promotion_request_is_valid():
    request = ab.promotion_request("mlops-orders", winner="challenger", loser="champion")
    assert_valid_request("sagemaker", "UpdateEndpointWeightsAndCapacities", request)
    assert {w["VariantName"]: w["DesiredWeight"] for w in request["DesiredWeightsAndCapacities"]} == {
        "challenger": 1.0,
        "champion": 0.0,
    }


def test_roles_come_from_the_config():
    assert AB.ab_roles() == ("champion", "challenger")
    named = AB.model_copy(update={"ab_test": AbTestConfig(champion_variant="challenger")})
    assert named.ab_roles() == ("challenger", "champion")
    with pytest.raises(ValueError, match="compares two variants"):
        ServingConfig().ab_roles()


def test_config_refuses_a_champion_that_is_not_a_variant(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text("serving:\n  ab_test:\n    champion_variant: Blue\n")
    with pytest.raises(ConfigError, match=r"champion_variant 'Blue' is not one of serving\.variants"):
        load_config(path, environ={})
    path.write_text("serving:\n  ab_test:\n    confidence: 1.5\n")
    with pytest.raises(ConfigError, match=r"serving\.ab_test\.confidence"):
        load_config(path, environ={})
