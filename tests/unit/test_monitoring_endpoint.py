"""send_traffic against a real local endpoint (router + model-server processes on 127.0.0.1): its
requests are captured in SageMaker's format and the drift job's reader turns them back into the
rows that were sent; drifted traffic is detected against the model's baseline."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlops import processes
from mlops.config import ServingConfig
from mlops.monitoring import capture_reader
from mlops.monitoring.baseline import compute_baseline
from mlops.monitoring.drift import DriftSettings, compare, drift_share
from mlops.monitoring.traffic import local_reporter, send_traffic
from mlops.reporting.store import read_window, sqlite_store
from mlops.training.synthetic import curated_features
from tests.sagemaker_runtime import build_model_packages

pytestmark = [pytest.mark.slow]
ENDPOINT = "traffic-orders"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    from mlops.serving.manager import LocalSageMaker

    home = tmp_path_factory.mktemp("traffic-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        manager = LocalSageMaker(ServingConfig(port_range=(28600, 28699)))
        built = build_model_packages(home / "pkg", {"m1": {"seed": 7}})["m1"]  # the training stage's model
        package = Path(built["archive"])
        manager.create_model(
            ModelName="m1",
            ExecutionRoleArn="arn:aws:iam::000000000000:role/x",
            PrimaryContainer={"Image": "local", "ModelDataUrl": package.as_uri()},
        )
        capture = home / "lake" / "capture"
        manager.create_endpoint_config(
            EndpointConfigName="c1",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m1",
                    "InitialVariantWeight": 1.0,
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
            DataCaptureConfig={
                "EnableCapture": True,
                "InitialSamplingPercentage": 100,
                "DestinationS3Uri": capture.as_uri(),
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            },
        )
        manager.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="c1")
        described = manager.describe_endpoint(ENDPOINT)
        try:
            yield home, package, built["feature_spec"], capture, described["LocalInvocationUrl"]
        finally:
            manager.delete_endpoint(ENDPOINT)
            processes.stop_all(timeout=10)


def test_traffic_is_captured_and_drift_is_detected(endpoint):
    home, package, spec, capture, url = endpoint
    source = curated_features(3000, seed=21)
    stats, constraints = compute_baseline(curated_features(5000, seed=7), spec["numeric"], spec["categorical"])
    store = sqlite_store(home / "rt.sqlite")
    started = datetime.now(UTC) - timedelta(seconds=1)
    normal = send_traffic(
        url, 300, source=source, model_data_url=package.as_uri(), seed=1, reporter=local_reporter(store)
    )
    middle = datetime.now(UTC)
    drifted = send_traffic(url, 300, drifted=True, source=source, feature_spec=spec, seed=2)
    assert normal["failed_requests"] == drifted["failed_requests"] == 0
    assert sum(normal["labels"].values()) == 300
    time.sleep(2.5)  # the capture writer flushes about once a second
    root = capture / ENDPOINT
    columns = spec["numeric"] + spec["categorical"]
    first = capture_reader.read_folder(root, columns, started, middle)
    second = capture_reader.read_folder(root, columns, middle, datetime.now(UTC))
    assert (len(first.frame), len(second.frame)) == (300, 300) and first.malformed == 0
    assert len(first.predicted_labels) == 300
    clean_results, clean_violations = compare(first.frame, stats, constraints, DriftSettings())
    drift_results, _ = compare(second.frame, stats, constraints, DriftSettings())
    assert drift_share(clean_results, len(columns)) < 0.25 and not [
        v for v in clean_violations if v["constraint_check_type"] == "data_type_check"
    ]
    assert drift_share(drift_results, len(columns)) >= 0.6
    rows = read_window(store, [f"{ENDPOINT}#AllTraffic"], started, datetime.now(UTC))
    assert sum(r["predictions"] for r in rows) == 300
