"""A local multi-model endpoint end to end: boto3 sagemaker-runtime invokes two target models on one endpoint.

Real router + model-server processes on 127.0.0.1 (the model server in the SageMaker runtime), real model
packages built by the training code; the finalizer deletes the endpoints and stops every process group.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from mlops import processes
from mlops.aws.endpoint_requests import create_model_request, multi_model_prefix, target_model_name
from mlops.config import ServingConfig
from mlops.serving.manager import LocalSageMaker
from mlops.serving.runtime import runtime_client
from tests.sagemaker_runtime import build_model_packages

ROLE = "arn:aws:iam::000000000000:role/x"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlops-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(root))
        yield root
        processes.stop_all(timeout=10)


@pytest.fixture(scope="module")
def packages(home) -> dict:
    return build_model_packages(home / "pkg", {"blue": {"seed": 7}, "green": {"seed": 11}})


@pytest.fixture(scope="module")
def sagemaker(home, packages):
    manager = LocalSageMaker(ServingConfig(port_range=(28400, 28499)))
    yield manager
    for endpoint in manager.store.names("endpoints"):
        manager.delete_endpoint(endpoint)


def _endpoint(sagemaker: LocalSageMaker, name: str, model_request: dict) -> object:
    sagemaker.create_model(**model_request)
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model_request["ModelName"],
                "InitialVariantWeight": 1.0,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    return runtime_client(f"http://127.0.0.1:{sagemaker.describe_endpoint(name)['LocalPort']}")


@pytest.fixture(scope="module")
def mme(sagemaker, packages, home):
    """A multi-model endpoint over a prefix holding v1 (blue) and v2 (green), caching one model at a time."""
    prefix = multi_model_prefix((home / "lake" / "models").as_uri(), "mme", "multi-model")
    folder = Path(prefix.removeprefix("file://"))
    folder.mkdir(parents=True)
    for version, package in ((1, "blue"), (2, "green")):
        shutil.copyfile(packages[package]["archive"], folder / target_model_name(version))
    request = create_model_request(
        model_name="mme-model", model_data_url=prefix, image_uri="local", role_arn=ROLE, region="eu-west-1",
        multi_model={"max_models": 1, "max_bytes": 256 << 20, "model_cache": "Enabled"},
    )  # fmt: skip
    return _endpoint(sagemaker, "mme", request)


def _predict(client, endpoint: str, body: str, **target) -> dict:
    response = client.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="application/json", **target)
    return json.loads(response["Body"].read())


def test_two_target_models_on_one_endpoint_answer_as_their_own_models(sagemaker, mme, packages):
    body = json.dumps({"instances": [packages["blue"]["row"]]})
    v1 = _predict(mme, "mme", body, TargetModel="v1.tar.gz")
    v2 = _predict(mme, "mme", body, TargetModel="v2.tar.gz")
    assert v1 != v2  # two models, two answers
    for version, package in (("v1", "blue"), ("v2", "green")):
        request = create_model_request(
            model_name=f"single-{package}", model_data_url=Path(packages[package]["archive"]).as_uri(),
            image_uri="local", role_arn=ROLE, region="eu-west-1",
        )  # fmt: skip
        single = _endpoint(sagemaker, f"single-{package}", request)
        assert _predict(single, f"single-{package}", body) == (v1 if version == "v1" else v2)
        with pytest.raises(ClientError, match="not a multi-model endpoint"):
            _predict(single, f"single-{package}", body, TargetModel="v1.tar.gz")
        sagemaker.delete_endpoint(f"single-{package}")


def test_the_lru_bound_evicts_and_reloads(sagemaker, mme, packages):
    body = json.dumps({"instances": [packages["green"]["row"]]})
    answers = [_predict(mme, "mme", body, TargetModel=t) for t in ("v1.tar.gz", "v2.tar.gz", "v1.tar.gz")]
    assert answers[0] == answers[2] != answers[1]
    server = next(p for p in sagemaker.describe_endpoint("mme")["LocalProcesses"] if "VariantName" in p)
    log = Path(server["log"]).read_text()
    assert log.count("unloading target model") >= 2  # max_models=1: every switch evicted the other model


def test_unknown_or_missing_target_model_is_a_validation_error_naming_it(mme, packages):
    body = json.dumps({"instances": [packages["blue"]["row"]]})
    with pytest.raises(ClientError) as missing:
        _predict(mme, "mme", body, TargetModel="v9.tar.gz")
    error = missing.value.response
    assert error["Error"]["Code"] == "ValidationError" and error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "target model v9.tar.gz not found" in error["Error"]["Message"] and "v1.tar.gz" in error["Error"]["Message"]
    with pytest.raises(ClientError, match="missing a target model header"):
        _predict(mme, "mme", body)


def test_endpoint_summary_invokes_the_newest_target_model(mme):
    from mlops.serving.runtime import endpoint_summary

    summary = endpoint_summary("mme")
    assert summary["target_model"] == "v2.tar.gz" and summary["sample_response"]["predictions"]
    assert "X-Amzn-SageMaker-Target-Model: v2.tar.gz" in summary["replay"]["curl"]
