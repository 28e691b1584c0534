"""The baseline and drift jobs as processing jobs (the local runner executes the same request as
SageMaker, with the SageMaker runtime), the baseline cache, the capture sensor's window logic and the
traffic sender. The jobs' code itself is tested in-process in tests/jobs/sagemaker."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from mlops.lake import local_path
from mlops.monitoring import baseline_steps, capture_keys, steps
from mlops.monitoring.traffic import drift_rows, load_rows, local_reporter, sample_rows, send_traffic
from mlops.monitoring.violations import validate
from mlops.reporting.store import read_window, sqlite_store
from mlops.sagemaker_local import run_processing_job
from mlops.sagemaker_local.layout import jobs_root
from tests.aws.botocore_validation import assert_valid_request
from tests.jobs.sagemaker.monitoring_fixtures import curated, make_lake, model_archive, model_package, write_capture

ENDPOINT = "mlops-orders"
T0 = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    config, lake = make_lake(tmp_path)
    uri, frame, spec = curated(lake, rows=5000)
    model = {"version": "3", "model_data_url": model_package(lake, spec), "model_package_group": "orders"}
    held_out = frame[frame.split == "test"][spec["numeric"] + spec["categorical"]]
    return config, lake, uri, spec, model, held_out


def _baseline(config, lake, model, training_uri=None, run_job=run_processing_job):
    """The model version's baseline through the baseline processing job (or the cache)."""
    return baseline_steps.ensure_baseline(
        config, lake, model, run_job=run_job, run_id="baseline-run", run_after=T0, training_uri=training_uri
    )


def _job(config, lake, model, baseline, run_id, end, minutes=60):
    window = steps.plan_window(lake, ENDPOINT, run_id=run_id, end=end, window_minutes=minutes)
    folders = steps.window_folders(
        steps.list_capture_keys(lake.capture(ENDPOINT)), window["window_start"], window["window_end"]
    )
    request = steps.drift_request(
        config,
        lake,
        run_id=run_id,
        run_after=end,
        model=model,
        baseline=baseline,
        window=window,
        folders=folders,
        image="local/sklearn",
        code_uri=steps.publish_code(lake),
    )
    described = run_processing_job(request)
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    return request, described, steps.evaluate(config, lake, run_id=run_id, processing=described)


def test_drift_job_runs_as_a_processing_job_and_the_policy_fires(env):
    config, lake, uri, spec, model, held_out = env
    baseline = _baseline(config, lake, model, training_uri=uri)
    assert baseline["created"] and baseline["item_count"] > 3000
    assert _baseline(config, lake, model)["created"] is False  # cached per model version

    write_capture(lake, ENDPOINT, sample_rows(held_out, 300, 1), T0 + timedelta(minutes=5))
    request, described, clean = _job(config, lake, model, baseline, "run-1", T0 + timedelta(hours=1))
    assert [i["InputName"] for i in request["ProcessingInputs"]] == ["code", "baseline", "capture-0"]
    assert not clean["fire"] and clean["status"] == "clean"
    out = local_path(described["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"])
    assert sorted(p.name for p in out.iterdir()) == [
        "constraint_violations.json",
        "drift_summary.json",
        "report.html",
        "statistics.json",
    ]
    assert validate(json.loads((out / "constraint_violations.json").read_text())) == {"violations": []}
    window_stats = json.loads((out / "statistics.json").read_text())
    assert window_stats["dataset"]["item_count"] == 300.0

    for hour in (1, 2):
        rows = drift_rows(sample_rows(held_out, 300, hour), spec["numeric"], spec["categorical"], seed=hour)
        write_capture(lake, ENDPOINT, rows, T0 + timedelta(hours=hour, minutes=5), csv=hour == 2)
    _, _, first = _job(config, lake, model, baseline, "run-2", T0 + timedelta(hours=2))
    _, described, second = _job(config, lake, model, baseline, "run-3", T0 + timedelta(hours=3))
    assert first["status"] == "drifted" and not first["fire"]
    assert second["fire"], second["reason"]
    extra = second["extra"]
    assert extra["drift_share"] >= 0.25 and extra["model_version"] == "3" and len(extra["windows"]) == 2
    summary = json.loads(local_path(second["drift_summary_uri"]).read_text())
    assert summary["rows"] == 300 and summary["window_start"] == (T0 + timedelta(hours=2)).isoformat()
    assert all(f["psi"] is not None for f in summary["features"])
    report = local_path(extra["report_uri"]).read_text()
    assert report.count("<svg") == len(spec["numeric"]) + len(spec["categorical"]) and "DRIFTED" in report


def test_report_shows_real_time_aggregates(env, tmp_path):
    config, lake, uri, _spec, model, held_out = env
    config = config.model_copy(
        update={"reporting": config.reporting.model_copy(update={"sqlite_path": str(tmp_path / "realtime.sqlite")})}
    )
    store = sqlite_store(tmp_path / "realtime.sqlite")
    local_reporter(store)(
        [
            {
                "type": "prediction",
                "endpoint": ENDPOINT,
                "variant": "AllTraffic",
                "time": (T0 + timedelta(minutes=7)).isoformat(),
                "label": "returned",
                "latency_ms": 4.0,
            }
        ]
    )
    assert read_window(store, [f"{ENDPOINT}#AllTraffic"], T0, T0 + timedelta(hours=1))[0]["label_returned"] == 1.0
    baseline = _baseline(config, lake, model, training_uri=uri)
    write_capture(lake, ENDPOINT, sample_rows(held_out, 150, 1), T0 + timedelta(minutes=5))
    window = {"window_start": T0.isoformat(), "window_end": (T0 + timedelta(hours=1)).isoformat()}
    aggregates = steps.publish_aggregates(config, lake, "job-x", window)
    assert aggregates is not None
    folders = steps.window_folders(steps.list_capture_keys(lake.capture(ENDPOINT)), T0, T0 + timedelta(hours=1))
    request = steps.drift_request(
        config,
        lake,
        run_id="r",
        run_after=T0,
        model=model,
        baseline=baseline,
        window=window,
        folders=folders,
        image="i",
        code_uri=steps.publish_code(lake),
        aggregates_uri=aggregates,
    )
    described = run_processing_job(request)
    report = local_path(steps.job_outputs(described)["report_uri"]).read_text()
    assert "2026-11-24T17:07Z" in report and "label_returned" in report


def test_capture_keys_and_window_folders():
    key = "AllTraffic/2026/11/24/17/05-09-123-7f1c.jsonl"
    assert capture_keys.key_time(key) == datetime(2026, 11, 24, 17, 5, 9, 123000, tzinfo=UTC)
    assert capture_keys.key_time("AllTraffic/x.jsonl") is None
    keys = [key, "B/2026/11/24/18/00-01-000-a.jsonl", "AllTraffic/2026/11/24/16/59-59-000-b.jsonl"]
    assert steps.window_folders(keys, T0, T0 + timedelta(hours=1)) == ["AllTraffic/2026/11/24/17", "B/2026/11/24/18"]
    assert capture_keys.hour_folders(T0, T0 + timedelta(minutes=90)) == ["2026/11/24/17", "2026/11/24/18"]


def test_local_capture_sensor_pokes_the_window(env):
    from mlops_airflow.operators.monitoring_local import LocalCaptureSensor

    _, lake, _, _, _, held_out = env
    sensor = LocalCaptureSensor(
        task_id="wait",
        capture_uri=lake.capture(ENDPOINT),
        window_start=T0.isoformat(),
        window_end=(T0 + timedelta(hours=1)).isoformat(),
        soft_fail=True,
        deferrable=True,
    )
    assert sensor.mode == "reschedule" and sensor.soft_fail
    assert sensor.poke({}) is False  # no traffic yet
    write_capture(lake, ENDPOINT, held_out.iloc[:10], T0 - timedelta(hours=2))
    assert sensor.poke({}) is False  # traffic, but not in this window
    write_capture(lake, ENDPOINT, held_out.iloc[:10], T0 + timedelta(minutes=30))
    assert sensor.poke({}) is True
    sensor.force = "True"
    sensor.capture_uri = lake.capture("other-endpoint")
    assert sensor.poke({}) is True


def test_missing_model_or_training_data_messages(env):
    _, lake, _, _, _, _ = env
    with pytest.raises(steps.MonitoringError, match="deploy one with mlops_deploy"):
        steps.monitored_model([], {}, ENDPOINT)
    events = [
        {"model_version": 1, "model_data_url": "file:///a", "endpoint_name": "other"},
        {"model_version": 2, "model_data_url": "file:///b", "endpoint_name": ENDPOINT, "model_package_group": "g"},
    ]
    assert steps.monitored_model(events, {}, ENDPOINT)["version"] == "2"
    assert (
        steps.monitored_model(events, {"model_data_url": "file:///c", "model_version": 7}, ENDPOINT)["version"] == "7"
    )
    with pytest.raises(steps.MonitoringError, match="pass training_data_uri"):
        baseline_steps.training_data_uri({"version": "9", "model_data_url": "file:///nowhere/model.tar.gz"}, lake)


class FakeRuntime:
    """Stands in for boto3's sagemaker-runtime client: answers one prediction per instance."""

    def __init__(self):
        self.calls = []

    def invoke_endpoint(self, **kwargs):
        self.calls.append(kwargs)
        rows = json.loads(kwargs["Body"])["instances"]
        body = json.dumps({"predictions": [{"label": "delivered", "probabilities": {"delivered": 1.0}}] * len(rows)})
        return {"Body": io.BytesIO(body.encode()), "InvokedProductionVariant": "AllTraffic"}


def test_send_traffic_sends_feature_rows_and_reports(env, tmp_path):
    _, _, uri, spec, model, _held_out = env
    runtime, store = FakeRuntime(), sqlite_store(tmp_path / "rt.sqlite")
    result = send_traffic(
        "http://127.0.0.1:18080/endpoints/mlops-orders/invocations",
        45,
        drifted=True,
        source=uri,
        feature_spec=spec,
        batch_size=20,
        client=runtime,
        reporter=local_reporter(store),
        id_column=None,  # no inference ids: rows are batched
    )
    assert result["rows"] == 45 and result["requests"] == 3 and result["failed_requests"] == 0
    assert [c["EndpointName"] for c in runtime.calls] == ["mlops-orders"] * 3
    sent = json.loads(runtime.calls[0]["Body"])["instances"]
    assert len(sent) == 20 and set(sent[0]) == set(spec["numeric"] + spec["categorical"])
    assert isinstance(sent[0]["basket_units"], int)  # integral columns stay integral on the wire
    now = datetime.now(UTC)
    rows = read_window(store, ["mlops-orders#AllTraffic"], now - timedelta(minutes=5), now + timedelta(minutes=1))
    assert sum(r["predictions"] for r in rows) == 45
    with pytest.raises(ValueError, match="invocation URL"):
        send_traffic("http://127.0.0.1:1/ping", 1, source=uri, feature_spec=spec, client=runtime)
    url = "http://127.0.0.1:18080/endpoints/mlops-orders/invocations"
    send_traffic(url, 5, source=uri, model_data_url=model["model_data_url"], client=runtime)  # the package's spec
    assert set(json.loads(runtime.calls[-1]["Body"])["instances"][0]) == set(spec["numeric"] + spec["categorical"])


def test_send_traffic_scores_each_order_with_its_order_id_as_inference_id(env):
    _, _, uri, spec, _model, _held_out = env
    runtime = FakeRuntime()
    url = "http://127.0.0.1:18080/endpoints/mlops-orders/invocations"
    result = send_traffic(url, 7, source=uri, feature_spec=spec, batch_size=20, client=runtime, seed=3)
    sent_ids = [c["InferenceId"] for c in runtime.calls]
    assert result["requests"] == 7 and result["inference_ids"] is True
    assert all(len(json.loads(c["Body"])["instances"]) == 1 for c in runtime.calls)
    source_ids = set(load_rows(uri)["order_id"].astype(str))
    assert set(sent_ids) <= source_ids and "order_id" not in json.loads(runtime.calls[0]["Body"])["instances"][0]


def test_a_window_without_capture_is_insufficient_not_an_error(env):
    config, lake, uri, _spec, model, _held_out = env
    baseline = _baseline(config, lake, model, training_uri=uri)
    request, _described, decision = _job(config, lake, model, baseline, "empty-run", T0 + timedelta(hours=1))
    assert [i["InputName"] for i in request["ProcessingInputs"]] == ["code", "baseline"]
    assert decision["status"] == "insufficient" and not decision["fire"]
    assert decision["extra"]["rows"] == 0


def test_curated_source_follows_the_validated_pointer(env):
    from mlops.monitoring.traffic import curated_source
    from mlops.training import lake_io

    _, lake, uri, _spec, _model, _held_out = env
    with pytest.raises(FileNotFoundError, match="run mlops_features"):
        curated_source(lake)
    lake_io.write_bytes(lake_io.join(lake.curated("features"), "_validated.json"), json.dumps({"uri": uri}).encode())
    assert curated_source(lake) == uri
    rows = load_rows(curated_source(lake))
    assert len(rows) > 500 and "split" in rows.columns and set(rows["split"].astype(str)) == {"test"}


# ---- the baseline step: a processing job, once per model version ------------------------------------------


def _processing_jobs() -> set[str]:
    folder = jobs_root() / "processing"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_baseline_step_runs_as_a_processing_job_once_per_model_version(env):
    config, lake, uri, spec, model, _held_out = env
    request = baseline_steps.plan_baseline(config, lake, model, run_id="run-1", run_after=T0, training_uri=uri)
    assert_valid_request("sagemaker", "CreateProcessingJob", request)
    entry_point = request["AppSpecification"]["ContainerEntrypoint"]
    assert entry_point == ["python3", "/opt/ml/processing/input/code/baseline_job.py"]
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in request["ProcessingInputs"]}
    assert set(inputs) == {"code", "model", "train"}
    assert inputs["model"] == model["model_data_url"] and inputs["train"] == uri
    staged = request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    final = baseline_steps.baseline_uri(lake, model)
    assert staged.startswith(lake.staging()) and not staged.startswith(final)

    described = run_processing_job(request)  # the job runs with the SageMaker runtime, not in this process
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    assert not (local_path(final) / "statistics.json").exists()  # staged only, until it is swapped in
    baseline = baseline_steps.finish_baseline(lake, model, described)
    assert baseline["created"] and baseline["job_name"] == request["ProcessingJobName"]
    assert baseline["training_data_uri"] == uri and baseline["features"] == len(spec["numeric"] + spec["categorical"])
    folder = local_path(baseline["baseline_uri"])
    assert sorted(p.name for p in folder.iterdir()) == [
        "baseline_info.json",
        "constraints.json",
        "feature_spec.json",
        "statistics.json",
    ]
    statistics = json.loads((folder / "statistics.json").read_text())
    assert statistics["dataset"]["item_count"] == baseline["item_count"] > 3000
    assert (
        json.loads((folder / "constraints.json").read_text())["monitoring_config"]["distribution_constraints"][
            "comparison_method"
        ]
        == config.monitoring.comparison_method
    )

    jobs = _processing_jobs()
    started = []
    again = _baseline(config, lake, model, run_job=started.append)  # a second run: the cached baseline
    assert started == [] and _processing_jobs() == jobs  # no job started, nothing run
    assert baseline_steps.plan_baseline(config, lake, model, run_id="run-2", run_after=T0) is None
    assert again == {**baseline, "created": False}


def test_baseline_inputs_are_checked_before_any_job(env):
    config, lake, uri, _spec, model, _held_out = env
    missing_model = {**model, "model_data_url": lake.models("training", "gone", "output", "model.tar.gz")}
    with pytest.raises(steps.MonitoringError, match=r"model package of model v3 is missing: nothing at .*gone"):
        baseline_steps.plan_baseline(config, lake, missing_model, run_id="r", run_after=T0, training_uri=uri)
    with pytest.raises(steps.MonitoringError, match=r"training data of model v3 is missing.*training_data_uri Param"):
        baseline_steps.plan_baseline(config, lake, model, run_id="r", run_after=T0, training_uri=uri + "-gone")
    assert _processing_jobs() == set()


def test_a_failed_baseline_job_leaves_no_baseline(env):
    config, lake, uri, _spec, model, _held_out = env
    broken = {**model, "version": "4", "model_data_url": lake.models("training", "x", "output", "model.tar.gz")}
    model_archive(local_path(broken["model_data_url"]), None)  # a package without feature_spec.json
    with pytest.raises(steps.MonitoringError, match=r"baseline job .* Failed: FeatureSpecError: .*feature_spec\.json"):
        _baseline(config, lake, broken, training_uri=uri)
    with pytest.raises(steps.MonitoringError, match=r"finished without statistics\.json"):
        baseline_steps.finish_baseline(
            lake,
            broken,
            {
                "ProcessingJobName": "j",
                "ProcessingOutputConfig": {"Outputs": [{"S3Output": {"S3Uri": lake.staging("nothing-here")}}]},
            },
        )
    assert baseline_steps.cached_baseline(lake, broken) is None  # the next run computes it again
