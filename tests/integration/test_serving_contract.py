"""Contract tests of one model server process: boto3 sagemaker-runtime and the container routes.

The server runs in the SageMaker runtime, as a local endpoint's model server does, on packages the
training stage's code built there (:mod:`tests.sagemaker_runtime`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from mlops.serving.runtime import runtime_client
from tests.sagemaker_runtime import build_model_packages, http, run_model_server, start_model_server, stop_model_server

ENDPOINT = "contract-test"


def start_server(archive: str, workdir: Path, variant: str = "AllTraffic"):
    return start_model_server(
        Path(archive).as_uri(), workdir / "model", "--endpoint-name", ENDPOINT, "--variant-name", variant
    )


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict:
    return build_model_packages(
        tmp_path_factory.mktemp("packages"),
        {
            "onnx": {"seed": 7},
            "predict_raises": {"seed": 7, "broken": "predict_raises"},
            "no_code": {"seed": 7, "broken": "no_code"},
        },
    )


@pytest.fixture(scope="module")
def row(packages) -> dict:
    """A request record with every feature the model reads."""
    return packages["onnx"]["row"]


@pytest.fixture(scope="module")
def server(packages, tmp_path_factory):
    proc, port = start_server(packages["onnx"]["archive"], tmp_path_factory.mktemp("server"), variant="Primary")
    yield port
    stop_model_server(proc)


@pytest.fixture(scope="module")
def client(server):
    return runtime_client(f"http://127.0.0.1:{server}")


def _invoke(client, body, content_type="application/json", **kw):
    response = client.invoke_endpoint(EndpointName=ENDPOINT, Body=body, ContentType=content_type, **kw)
    return response, response["Body"].read()


def test_ping(server):
    assert http(server, "/ping")[0] == 200


def test_boto3_json_single_row(client, row):
    response, body = _invoke(client, json.dumps(row))
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "Primary"
    [prediction] = json.loads(body)["predictions"]
    assert prediction["label"] in prediction["probabilities"]
    assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-4


def test_boto3_json_batch(client, row):
    _, body = _invoke(client, json.dumps({"instances": [row] * 25}))
    assert len(json.loads(body)["predictions"]) == 25


def test_boto3_csv_in_csv_out(client, packages):
    example = packages["onnx"]
    columns = [*example["feature_spec"]["numeric"], *example["feature_spec"]["categorical"]]
    changed = {**example["row"], "channel": "app", "basket_value": 5}
    other = ",".join(str(changed[c]) for c in columns)
    response, body = _invoke(client, f"{example['csv']}\n{other}\n", "text/csv", Accept="text/csv")
    assert response["ContentType"] == "text/csv"
    assert len(body.decode().strip().splitlines()) == 2


def test_container_route_invocations(server, row):
    status, headers, body = http(server, "/invocations", json.dumps(row).encode(), {"Content-Type": "application/json"})
    assert status == 200 and headers["x-amzn-invoked-production-variant"] == "Primary"
    assert "predictions" in json.loads(body)


def test_malformed_input_is_400_naming_the_field(client, server, row):
    with pytest.raises(ClientError) as caught:
        _invoke(client, json.dumps({"instances": [row, {**row, "basket_value": "lots"}]}))
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "ValidationError"
    assert "instances[1].basket_value" in error["Error"]["Message"]
    status, _, body = http(server, "/invocations", b"web,north\n", {"Content-Type": "text/csv"})
    assert status == 400 and json.loads(body)["message"].startswith("row 1")


def test_payload_over_6_mib_is_413(client, server):
    big = b"x" * (6 * 1024 * 1024 + 1)
    with pytest.raises(ClientError) as caught:
        _invoke(client, big)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    status, _, body = http(server, "/invocations", big, {"Content-Type": "application/json"})
    assert status == 413 and "6 MiB" in json.loads(body)["message"]


def test_unsupported_content_type_is_415(client):
    with pytest.raises(ClientError) as caught:
        _invoke(client, "<row/>", "application/xml")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 415


def test_target_variant_is_honoured(client, row):
    response, _ = _invoke(client, json.dumps(row), TargetVariant="Primary")
    assert response["InvokedProductionVariant"] == "Primary"
    with pytest.raises(ClientError) as caught:
        _invoke(client, json.dumps(row), TargetVariant="Nope")
    assert caught.value.response["Error"]["Code"] == "ValidationError"


def test_unknown_endpoint_name_is_a_validation_error(server, row):
    other = runtime_client(f"http://127.0.0.1:{server}")
    with pytest.raises(ClientError) as caught:
        other.invoke_endpoint(EndpointName="someone-else", Body=json.dumps(row), ContentType="application/json")
    assert "someone-else" in caught.value.response["Error"]["Message"]


def test_model_error_never_crashes_the_server(packages, row, tmp_path):
    proc, port = start_server(packages["predict_raises"]["archive"], tmp_path)
    try:
        client = runtime_client(f"http://127.0.0.1:{port}")
        for _ in range(3):
            with pytest.raises(ClientError) as caught:
                _invoke(client, json.dumps(row))
            error = caught.value.response
            assert error["Error"]["Code"] == "ModelError"
            assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
            assert "model exploded" in error["Error"]["Message"]
        status, _, body = http(port, "/invocations", json.dumps(row).encode(), {"Content-Type": "application/json"})
        assert status == 500 and json.loads(body)["error"] == "ModelError"
        assert http(port, "/ping")[0] == 200 and proc.poll() is None
    finally:
        stop_model_server(proc)


def test_package_without_inference_py_fails_at_start_naming_the_file(packages, tmp_path):
    result = run_model_server(packages["no_code"]["archive"], tmp_path / "model")
    assert result.returncode == 2
    assert "code/inference.py" in result.stderr
