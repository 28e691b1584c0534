"""The local endpoint manager end to end: A/B variants, blue/green swaps, rollback, capture, restarts.

Every endpoint runs as real router + model-server processes on 127.0.0.1; the module's
finalizer deletes them and stops every recorded process group.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from mlops import processes
from mlops.config import ServingConfig
from mlops.serving.capture import read_capture
from mlops.serving.errors import DeploymentError
from mlops.serving.manager import LocalSageMaker
from mlops.serving.runtime import runtime_client
from tests.sagemaker_runtime import build_model_packages


def _canary(percent: int, bake: int) -> dict:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": bake,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": percent},
            },
            "TerminationWaitInSeconds": 0,
        }
    }


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlops-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(root))
        yield root
        processes.stop_all(timeout=10)


@pytest.fixture(scope="module")
def packages(home) -> dict:
    """Two models (blue, green) and two broken packages, built by the training stage's code."""
    return build_model_packages(
        home / "pkg",
        {
            "blue": {"seed": 7},
            "green": {"seed": 11},
            "bad-predict": {"seed": 7, "broken": "predict_raises"},
            "bad-load": {"seed": 7, "broken": "model_fn_raises"},
        },
    )


@pytest.fixture(scope="module")
def body(packages) -> str:
    """A JSON request of one record with every feature the models read."""
    return json.dumps({"instances": [packages["blue"]["row"]]})


@pytest.fixture(scope="module")
def sagemaker(home, packages) -> LocalSageMaker:
    manager = LocalSageMaker(ServingConfig(port_range=(28100, 28399), rollback_error_rate=0.05))
    for name, package in packages.items():
        manager.create_model(
            ModelName=name,
            ExecutionRoleArn="arn:aws:iam::000000000000:role/x",
            PrimaryContainer={"Image": "local", "ModelDataUrl": Path(package["archive"]).as_uri()},
        )
    yield manager
    for endpoint in manager.store.names("endpoints"):
        manager.delete_endpoint(endpoint)


def _config(sagemaker: LocalSageMaker, name: str, variants: dict[str, tuple[str, float]], capture: Path | None = None):
    request = {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": v,
                "ModelName": model,
                "InitialVariantWeight": weight,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
            for v, (model, weight) in variants.items()
        ],
    }
    if capture:
        request["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": capture.as_uri(),
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }
    sagemaker.create_endpoint_config(**request)
    return name


def _client(sagemaker: LocalSageMaker, endpoint: str):
    return runtime_client(f"http://127.0.0.1:{sagemaker.describe_endpoint(endpoint)['LocalPort']}")


class Load:
    """Closed-loop keep-alive clients hammering an endpoint until stopped; counts answers and failures."""

    def __init__(self, port: int, endpoint: str, body: str, threads: int = 4) -> None:
        self.port, self.path, self.body = port, f"/endpoints/{endpoint}/invocations", body
        self.variants: Counter = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self._stop.is_set():
            try:
                conn.request("POST", self.path, self.body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                if response.status == 200:
                    self.variants[response.getheader("x-Amzn-Invoked-Production-Variant")] += 1
                else:
                    self.failures.append(f"{response.status}: {payload[:200]!r}")
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            time.sleep(0.001)
        conn.close()

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


@pytest.fixture(scope="module")
def ab_endpoint(sagemaker, home):
    _config(sagemaker, "ab-1", {"A": ("blue", 0.7), "B": ("green", 0.3)}, capture=home / "lake" / "capture")
    sagemaker.create_endpoint(EndpointName="ab", EndpointConfigName="ab-1")
    return "ab"


def test_ab_split_is_within_tolerance(sagemaker, ab_endpoint, body):
    client = _client(sagemaker, ab_endpoint)
    n = 600
    counts = Counter(
        client.invoke_endpoint(EndpointName=ab_endpoint, Body=body, ContentType="application/json")[
            "InvokedProductionVariant"
        ]
        for _ in range(n)
    )
    assert set(counts) == {"A", "B"}
    assert abs(counts["A"] / n - 0.7) < 0.07, counts  # 3.7 standard deviations of a binomial share


def test_target_variant_header_pins_the_variant(sagemaker, ab_endpoint, body):
    client = _client(sagemaker, ab_endpoint)
    for _ in range(20):
        response = client.invoke_endpoint(
            EndpointName=ab_endpoint, Body=body, ContentType="application/json", TargetVariant="B"
        )
        assert response["InvokedProductionVariant"] == "B"


def test_capture_files_follow_sagemaker_layout_and_format(sagemaker, ab_endpoint, home, packages):
    client = _client(sagemaker, ab_endpoint)
    csv_row = packages["blue"]["csv"]
    for _ in range(10):
        client.invoke_endpoint(
            EndpointName=ab_endpoint, Body=csv_row, ContentType="text/csv", InferenceId="inference-42"
        )
    time.sleep(1.5)  # the router flushes captured records about once a second
    root = home / "lake" / "capture"
    files = sorted(root.rglob("*.jsonl"))
    assert files
    for path in files:
        parts = path.relative_to(root).parts
        assert parts[0] == ab_endpoint and parts[1] in {"A", "B"}
        year, month, day, hour = parts[2:6]
        assert len(year) == 4 and len(month) == len(day) == len(hour) == 2
    records = read_capture(root.as_uri(), ab_endpoint)
    csv_records = [r for r in records if r["captureData"]["endpointInput"]["observedContentType"] == "text/csv"]
    assert len(csv_records) == 10
    record = csv_records[0]
    assert record["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": csv_row,
        "encoding": "CSV",
    }
    output = record["captureData"]["endpointOutput"]
    assert output["mode"] == "OUTPUT" and output["encoding"] == "JSON" and json.loads(output["data"])["predictions"]
    assert record["eventMetadata"]["inferenceId"] == "inference-42" and record["eventVersion"] == "0"


def test_update_weights(sagemaker, ab_endpoint, body):
    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=ab_endpoint, DesiredWeightsAndCapacities=[{"VariantName": "A", "DesiredWeight": 0.0}]
    )
    client = _client(sagemaker, ab_endpoint)
    seen = {
        client.invoke_endpoint(EndpointName=ab_endpoint, Body=body, ContentType="application/json")[
            "InvokedProductionVariant"
        ]
        for _ in range(30)
    }
    assert seen == {"B"}


@pytest.fixture(scope="module")
def swap_endpoint(sagemaker):
    _config(sagemaker, "swap-1", {"AllTraffic": ("blue", 1.0)})
    sagemaker.create_endpoint(EndpointName="swap", EndpointConfigName="swap-1")
    return "swap"


def _fleets(sagemaker: LocalSageMaker, endpoint: str) -> set[str]:
    return {v["fleet"] for v in sagemaker.store.get("endpoints", endpoint)["variants"]}


def test_zero_failed_requests_during_a_canary_swap(sagemaker, swap_endpoint, body):
    _config(sagemaker, "swap-2", {"AllTraffic": ("green", 1.0)})
    port = sagemaker.describe_endpoint(swap_endpoint)["LocalPort"]
    blue_fleet = _fleets(sagemaker, swap_endpoint)
    with Load(port, swap_endpoint, body) as load:
        time.sleep(0.5)
        sagemaker.update_endpoint(
            EndpointName=swap_endpoint, EndpointConfigName="swap-2", DeploymentConfig=_canary(30, 1)
        )
        time.sleep(0.5)
    assert load.failures == []
    assert sum(load.variants.values()) > 200
    stats = sagemaker.router_state(swap_endpoint)["stats"]
    green_fleet = _fleets(sagemaker, swap_endpoint)
    assert green_fleet != blue_fleet
    assert (
        stats[f"AllTraffic/{blue_fleet.pop()}"]["requests"] > 0
        and stats[f"AllTraffic/{green_fleet.pop()}"]["requests"] > 0
    )
    described = sagemaker.describe_endpoint(swap_endpoint)
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == "swap-2"
    assert [v["ModelName"] for v in described["ProductionVariants"]] == ["green"]


def _hostile_requests(row: dict) -> list[tuple[bytes, dict]]:
    """(body, headers) of hostile requests (issue 13.7): each must be a 4xx, none may count as a model error."""
    json_type = {"Content-Type": "application/json"}

    def with_value(feature: str, value: str) -> bytes:
        return ('{"instances": [' + json.dumps({**row, feature: "@@"}).replace('"@@"', value) + "]}").encode()

    number, category = "basket_value", "channel"
    return [
        (b'{"instances": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", json_type),
        (with_value(number, "1" + "0" * 400), json_type),
        (with_value(number, "NaN"), json_type),
        (with_value(number, "true"), json_type),
        (with_value(category, "[1]"), json_type),
        (b'{"instances": [3]}', json_type),
        (json.dumps(row).encode(), {**json_type, "X-Amzn-SageMaker-Target-Variant": b"All\xffTraffic"}),
        (json.dumps(row).encode(), {**json_type, "X-Amzn-SageMaker-Inference-Id": b"\xfe\xff"}),
    ]


class HostileLoad(Load):
    """A client sending only malformed requests, in a loop; records every answer's status."""

    def __init__(self, port: int, endpoint: str, requests: list[tuple[bytes, dict]]) -> None:
        super().__init__(port, endpoint, "", threads=1)
        self.requests = requests
        self.statuses: Counter = Counter()

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        i = 0
        while not self._stop.is_set():
            body, headers = self.requests[i % len(self.requests)]
            i += 1
            try:
                conn.request("POST", self.path, body, headers)
                response = conn.getresponse()
                response.read()
                self.statuses[response.status] += 1
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)


def test_hostile_clients_cannot_roll_back_a_canary(sagemaker, swap_endpoint, body, packages):
    """Malformed requests during a canary bake are client errors: the deployment completes (issue 13.7)."""
    before = sagemaker.describe_endpoint(swap_endpoint)["EndpointConfigName"]
    target = "swap-hostile-a" if before != "swap-hostile-a" else "swap-hostile-b"
    _config(sagemaker, target, {"AllTraffic": ("blue", 1.0)})
    port = sagemaker.describe_endpoint(swap_endpoint)["LocalPort"]
    hostile = HostileLoad(port, swap_endpoint, _hostile_requests(packages["blue"]["row"]))
    with Load(port, swap_endpoint, body, threads=1) as load, hostile:
        time.sleep(0.5)
        canary = _canary(50, 3)
        sagemaker.update_endpoint(EndpointName=swap_endpoint, EndpointConfigName=target, DeploymentConfig=canary)
        time.sleep(0.3)
    assert load.failures == [] and hostile.failures == []
    assert sum(hostile.statuses.values()) > 50 and set(hostile.statuses) == {400}, hostile.statuses
    described = sagemaker.describe_endpoint(swap_endpoint)
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == target
    green = sagemaker.router_state(swap_endpoint)["stats"][f"AllTraffic/{_fleets(sagemaker, swap_endpoint).pop()}"]
    assert green["errors"] == 0 and green["client_errors"] > 0


def test_rollback_when_green_fails_its_health_check(sagemaker, swap_endpoint, body):
    before = sagemaker.describe_endpoint(swap_endpoint)
    _config(sagemaker, "swap-bad-load", {"AllTraffic": ("bad-load", 1.0)})
    with pytest.raises(DeploymentError, match=r"health check.*weights are corrupt"):
        sagemaker.update_endpoint(EndpointName=swap_endpoint, EndpointConfigName="swap-bad-load")
    after = sagemaker.describe_endpoint(swap_endpoint)
    assert after["EndpointStatus"] == "InService"
    assert after["EndpointConfigName"] == before["EndpointConfigName"]
    assert "rolled back" in after["FailureReason"]
    response = _client(sagemaker, swap_endpoint).invoke_endpoint(
        EndpointName=swap_endpoint, Body=body, ContentType="application/json"
    )
    assert json.loads(response["Body"].read())["predictions"]


def test_rollback_when_green_error_rate_crosses_the_threshold(sagemaker, swap_endpoint, body):
    before = sagemaker.describe_endpoint(swap_endpoint)
    fleets_before = _fleets(sagemaker, swap_endpoint)
    _config(sagemaker, "swap-bad-predict", {"AllTraffic": ("bad-predict", 1.0)})
    port = before["LocalPort"]
    with Load(port, swap_endpoint, body, threads=2), pytest.raises(DeploymentError, match="error rate"):
        sagemaker.update_endpoint(
            EndpointName=swap_endpoint, EndpointConfigName="swap-bad-predict", DeploymentConfig=_canary(50, 5)
        )
    after = sagemaker.describe_endpoint(swap_endpoint)
    assert after["EndpointConfigName"] == before["EndpointConfigName"] and after["EndpointStatus"] == "InService"
    assert _fleets(sagemaker, swap_endpoint) == fleets_before
    assert not [p for p in processes.managed() if "bad" in " ".join(p.command)]  # green was terminated
    client = _client(sagemaker, swap_endpoint)
    for _ in range(20):  # only the old model answers now
        response = client.invoke_endpoint(EndpointName=swap_endpoint, Body=body, ContentType="application/json")
        assert json.loads(response["Body"].read())["predictions"]


def test_create_with_a_broken_model_fails_with_the_reason(sagemaker):
    _config(sagemaker, "broken-1", {"AllTraffic": ("bad-load", 1.0)})
    with pytest.raises(DeploymentError, match="weights are corrupt"):
        sagemaker.create_endpoint(EndpointName="broken", EndpointConfigName="broken-1")
    described = sagemaker.describe_endpoint("broken")
    assert described["EndpointStatus"] == "Failed" and "weights are corrupt" in described["FailureReason"]


def test_state_survives_restarts_and_make_stop_stops_endpoints(sagemaker, swap_endpoint, body):
    fresh = LocalSageMaker(sagemaker.config)  # a new process (e.g. Airflow restarted) reads the same state
    described = fresh.describe_endpoint(swap_endpoint)
    assert described["EndpointStatus"] == "InService" and described["LocalPort"]
    assert {p.name for p in processes.managed()} >= {f"endpoint-{swap_endpoint}"}
    processes.stop_all(timeout=10)  # what `make stop` runs
    assert fresh.describe_endpoint(swap_endpoint)["EndpointStatus"] == "OutOfService"
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", described["LocalPort"], timeout=2).request("GET", "/ping")
    restarted = fresh.ensure_running(swap_endpoint)
    assert restarted["EndpointStatus"] == "InService"
    assert restarted["LocalPort"] == described["LocalPort"]  # same URL after a restart
    response = _client(fresh, swap_endpoint).invoke_endpoint(
        EndpointName=swap_endpoint, Body=body, ContentType="application/json"
    )
    assert response["InvokedProductionVariant"] == "AllTraffic"


def test_endpoint_summary_gives_a_replayable_call(sagemaker, ab_endpoint, packages):
    import shutil
    import subprocess

    from mlops.serving import runtime

    summary = runtime.endpoint_summary(ab_endpoint)
    port = sagemaker.describe_endpoint(ab_endpoint)["LocalPort"]
    assert summary["invocation_url"] == f"http://127.0.0.1:{port}/endpoints/{ab_endpoint}/invocations"
    assert summary["sample_request"] == packages["blue"]["example"]  # the package's input_example.json
    assert summary["sample_response"]["predictions"][0]["label"] in {"cancelled", "delivered", "returned"}
    assert [e["EndpointName"] for e in runtime.list_endpoints()].count(ab_endpoint) == 1
    if shutil.which("curl"):
        replayed = subprocess.run(summary["replay"]["curl"], shell=True, capture_output=True, text=True, timeout=30)
        assert json.loads(replayed.stdout)["predictions"]
    namespace: dict = {}
    exec("import boto3\nanswer = " + summary["replay"]["boto3"], namespace)
    assert json.loads(namespace["answer"])["predictions"]
