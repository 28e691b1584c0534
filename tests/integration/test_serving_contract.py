"""Contract tests of one model server process: boto3 sagemaker-runtime and the container routes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from mlops.serving import fixture_model
from mlops.serving.runtime import runtime_client

ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = "contract-test"
ROW = fixture_model.EXAMPLE


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http(port: int, path: str, body: bytes | None = None, headers: dict | None = None, method: str | None = None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def start_server(archive: Path, workdir: Path, variant: str = "AllTraffic") -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'include'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlops.serving.server",
            "--model-data",
            archive.as_uri(),
            "--model-dir",
            str(workdir / "model"),
            "--port",
            str(port),
            "--endpoint-name",
            ENDPOINT,
            "--variant-name",
            variant,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stdout.read().decode()}")
        try:
            if _http(port, "/ping")[0] == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become healthy")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("packages")
    pipeline = fixture_model.train_pipeline(rows=600)
    return {
        "onnx": fixture_model.build_package(root / "onnx" / "model.tar.gz", pipeline=pipeline),
        "predict_raises": fixture_model.build_package(
            root / "bad" / "model.tar.gz", pipeline=pipeline, broken="predict_raises"
        ),
        "no_code": fixture_model.build_package(root / "nocode" / "model.tar.gz", pipeline=pipeline, broken="no_code"),
    }


@pytest.fixture(scope="module")
def server(packages, tmp_path_factory):
    proc, port = start_server(packages["onnx"], tmp_path_factory.mktemp("server"), variant="Primary")
    yield port
    stop_server(proc)


@pytest.fixture(scope="module")
def client(server):
    return runtime_client(f"http://127.0.0.1:{server}")


def _invoke(client, body, content_type="application/json", **kw):
    response = client.invoke_endpoint(EndpointName=ENDPOINT, Body=body, ContentType=content_type, **kw)
    return response, response["Body"].read()


def test_ping(server):
    assert _http(server, "/ping")[0] == 200


def test_boto3_json_single_row(client):
    response, body = _invoke(client, json.dumps(ROW))
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "Primary"
    [prediction] = json.loads(body)["predictions"]
    assert prediction["label"] in prediction["probabilities"]
    assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-4


def test_boto3_json_batch(client):
    _, body = _invoke(client, json.dumps({"instances": [ROW] * 25}))
    assert len(json.loads(body)["predictions"]) == 25


def test_boto3_csv_in_csv_out(client):
    response, body = _invoke(client, "web,north,42.5,3,12\nstore,west,5,1,2\n", "text/csv", Accept="text/csv")
    assert response["ContentType"] == "text/csv"
    assert len(body.decode().strip().splitlines()) == 2


def test_container_route_invocations(server):
    status, headers, body = _http(
        server, "/invocations", json.dumps(ROW).encode(), {"Content-Type": "application/json"}
    )
    assert status == 200 and headers["x-amzn-invoked-production-variant"] == "Primary"
    assert "predictions" in json.loads(body)


def test_malformed_input_is_400_naming_the_field(client, server):
    with pytest.raises(ClientError) as caught:
        _invoke(client, json.dumps({"instances": [ROW, {**ROW, "basket_value": "lots"}]}))
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "ValidationError"
    assert "instances[1].basket_value" in error["Error"]["Message"]
    status, _, body = _http(server, "/invocations", b"web,north\n", {"Content-Type": "text/csv"})
    assert status == 400 and json.loads(body)["message"].startswith("row 1")


def test_payload_over_6_mib_is_413(client, server):
    big = b"x" * (6 * 1024 * 1024 + 1)
    with pytest.raises(ClientError) as caught:
        _invoke(client, big)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    status, _, body = _http(server, "/invocations", big, {"Content-Type": "application/json"})
    assert status == 413 and "6 MiB" in json.loads(body)["message"]


def test_unsupported_content_type_is_415(client):
    with pytest.raises(ClientError) as caught:
        _invoke(client, "<row/>", "application/xml")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 415


def test_target_variant_is_honoured(client):
    response, _ = _invoke(client, json.dumps(ROW), TargetVariant="Primary")
    assert response["InvokedProductionVariant"] == "Primary"
    with pytest.raises(ClientError) as caught:
        _invoke(client, json.dumps(ROW), TargetVariant="Nope")
    assert caught.value.response["Error"]["Code"] == "ValidationError"


def test_unknown_endpoint_name_is_a_validation_error(server):
    other = runtime_client(f"http://127.0.0.1:{server}")
    with pytest.raises(ClientError) as caught:
        other.invoke_endpoint(EndpointName="someone-else", Body=json.dumps(ROW), ContentType="application/json")
    assert "someone-else" in caught.value.response["Error"]["Message"]


def test_model_error_never_crashes_the_server(packages, tmp_path):
    proc, port = start_server(packages["predict_raises"], tmp_path)
    try:
        client = runtime_client(f"http://127.0.0.1:{port}")
        for _ in range(3):
            with pytest.raises(ClientError) as caught:
                _invoke(client, json.dumps(ROW))
            error = caught.value.response
            assert error["Error"]["Code"] == "ModelError"
            assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
            assert "model exploded" in error["Error"]["Message"]
        status, _, body = _http(port, "/invocations", json.dumps(ROW).encode(), {"Content-Type": "application/json"})
        assert status == 500 and json.loads(body)["error"] == "ModelError"
        assert _http(port, "/ping")[0] == 200 and proc.poll() is None
    finally:
        stop_server(proc)


def test_package_without_inference_py_fails_at_start_naming_the_file(packages, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops.serving.server",
            "--model-data",
            str(packages["no_code"]),
            "--model-dir",
            str(tmp_path / "model"),
            "--port",
            str(_free_port()),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT / "include")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "code/inference.py" in result.stderr
