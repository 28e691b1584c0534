"""send_traffic against a real local endpoint (router + model-server processes on 127.0.0.1): its
requests are captured in SageMaker's format, and the monitor's jobs, run as the monitor runs them
(the local processing runner with the SageMaker runtime), turn them back into the rows that were
sent: the baseline job computes the model's baseline, the drift job detects the drifted traffic."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlops import processes
from mlops.config import PipelineConfig, ServingConfig
from mlops.lake import Lake, local_path
from mlops.monitoring import baseline_steps, steps
from mlops.monitoring.traffic import local_reporter, send_traffic
from mlops.reporting.store import read_window, sqlite_store
from mlops.sagemaker_local import run_processing_job
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
            yield home, package, built["feature_spec"], described["LocalInvocationUrl"]
        finally:
            manager.delete_endpoint(ENDPOINT)
            processes.stop_all(timeout=10)


def _drift_summary(config, lake, model, baseline, run_id, start, end):
    """Run the drift job over ``[start, end)`` of the endpoint's capture; return its drift_summary.json."""
    window = {"window_start": start.isoformat(), "window_end": end.isoformat()}
    folders = steps.window_folders(steps.list_capture_keys(lake.capture(ENDPOINT)), start, end)
    request = steps.drift_request(
        config,
        lake,
        run_id=run_id,
        run_after=end,
        model=model,
        baseline=baseline,
        window=window,
        folders=folders,
        image="local",
        code_uri=steps.publish_code(lake),
    )
    described = run_processing_job(request)
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    return json.loads(local_path(steps.job_outputs(described)["drift_summary_uri"]).read_text())


def test_traffic_is_captured_and_drift_is_detected(endpoint):
    home, package, spec, url = endpoint
    config = PipelineConfig.model_validate(
        {"lake": {"local_root": str(home / "lake")}, "serving": {"endpoint_name": ENDPOINT}}
    )
    lake = Lake.for_target(config, "local")
    training = lake.uri(config.lake.curated_prefix, "features", "snapshots", "fixture")
    local_path(training).mkdir(parents=True)
    training_frame = curated_features(5000, seed=7)
    training_frame.to_parquet(local_path(training) / "part-0.parquet", index=False)
    model = {"version": "1", "model_data_url": package.as_uri(), "model_package_group": "traffic"}
    baseline = baseline_steps.ensure_baseline(
        config, lake, model, run_job=run_processing_job, run_id="b", run_after="2026-01-01", training_uri=training
    )
    train_rows = int((training_frame["split"] == "train").sum())  # the baseline is the training split's
    assert baseline["item_count"] == train_rows
    assert baseline["features"] == len(spec["numeric"]) + len(spec["categorical"])

    source = curated_features(3000, seed=21)
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
    first = _drift_summary(config, lake, model, baseline, "clean", started, middle)
    second = _drift_summary(config, lake, model, baseline, "drifted", middle, datetime.now(UTC))
    assert (first["rows"], second["rows"]) == (300, 300) and first["malformed_records"] == 0
    assert first["predicted_labels"] == 300
    assert first["drift_share"] < 0.25 and "data_type_check" not in first["violation_counts"]
    assert second["drift_share"] >= 0.6
    rows = read_window(store, [f"{ENDPOINT}#AllTraffic"], started, datetime.now(UTC))
    assert sum(r["predictions"] for r in rows) == 300
