"""The model-quality job as a processing job (the local runner executes the same request as SageMaker,
from the monitoring code bundle, in the SageMaker runtime), the evaluated mAP from the registry, the
quality windows and the retraining decision. The job's metrics are tested in-process in
tests/jobs/sagemaker/test_monitoring_quality.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from mlops import registry
from mlops.aws.sagemaker_requests import model_package_request
from mlops.lake import local_path
from mlops.monitoring import quality_steps, steps
from mlops.monitoring.steps import MonitoringError
from mlops.sagemaker_local import run_processing_job
from tests.jobs.sagemaker.monitoring_fixtures import curated_features, make_lake, model_archive
from tests.jobs.sagemaker.quality_fixtures import (
    concept_shifted_labels,
    sample_labels,
    scores,
    write_capture,
    write_orders,
)

T0 = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
EVALUATED_MAP = 0.66
CUTOFF = "2026-01-03T00:00:00+00:00"  # the fixture's labels are committed on 2026-01-05 (after it) unless told


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    config, lake = make_lake(tmp_path)
    config = config.model_copy(update={"monitoring": config.monitoring.model_copy(
        update={"quality": config.monitoring.quality.model_copy(update={"min_labelled_rows": 200})})})  # fmt: skip
    model_url = lake.models("training", "job-1", "output", "model.tar.gz")
    model_archive(local_path(model_url), {"numeric": [], "categorical": []})
    client = registry.local_registry()
    registry.ensure_group(client, "orders")
    request = model_package_request(config, image_uri="local/sklearn", model_data_url=model_url,
                                    evaluation_uri="file:///tmp/evaluation.json", description="test",
                                    metadata={"map": f"{EVALUATED_MAP:.6f}",
                                              "training_data_cutoff": CUTOFF})  # fmt: skip
    client.create_model_package(**{**request, "ModelPackageGroupName": "orders"})
    model = {"version": "1", "model_data_url": model_url, "model_package_group": "orders"}
    return config, lake, model


def _traffic(config, lake, start, rows, *, shifted: bool, seed: int, matured: float = 1.0, **orders):
    """Capture of ``rows`` single-order requests from ``start``; their orders' statuses in the raw table."""
    inputs = curated_features(rows, seed=seed)
    inputs["order_id"] += seed * 100_000  # distinct orders per batch
    proba = scores(inputs)
    labels = concept_shifted_labels(proba, seed) if shifted else sample_labels(proba, seed)
    write_capture(local_path(lake.capture()), inputs, proba, start)
    raw = local_path(lake.raw_table(config.source.schema_name, "orders")).parent
    write_orders(raw, inputs["order_id"].to_numpy(), labels, matured=matured, name=f"{seed}", **orders)


def _run(config, lake, model, run_id, end):
    window = quality_steps.plan_window(config, lake, run_id=run_id, end=end)
    keys = steps.list_capture_keys(lake.capture(config.serving.endpoint_name))
    package = quality_steps.registered_package(model)
    request = quality_steps.quality_request(
        config, lake, run_id=run_id, run_after=end, model=model, window=window,
        folders=steps.window_folders(keys, window["window_start"], window["window_end"]),
        baseline_map=quality_steps.evaluated_map(model, package=package), code_uri=steps.publish_code(lake),
        image="local/sklearn", labels_after=quality_steps.training_cutoff(package),
    )  # fmt: skip
    described = run_processing_job(request)
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    return request, quality_steps.evaluate(config, lake, run_id=run_id, processing=described)


def test_quality_windows_wait_for_labels_then_fire_on_the_drop_once(env):
    config, lake, model = env
    _traffic(config, lake, T0 - timedelta(hours=20), 400, shifted=False, seed=1)
    _request, clean = _run(config, lake, model, "run-1", T0)
    assert clean["status"] == "evaluated" and not clean["fire"], clean["reason"]
    assert clean["extra"]["baseline_map"] == EVALUATED_MAP and clean["extra"]["labelled"] == 400

    _traffic(config, lake, T0 + timedelta(hours=2), 600, shifted=True, seed=2, matured=0.1)
    _request, pending = _run(config, lake, model, "run-2", T0 + timedelta(days=1))
    assert pending["status"] == "pending" and not pending["fire"] and "coverage 10%" in pending["reason"]

    _traffic(config, lake, T0 + timedelta(hours=2), 600, shifted=True, seed=2)  # the labels arrived
    _request, degraded = _run(config, lake, model, "run-3", T0 + timedelta(days=2))
    extra = degraded["extra"]
    assert extra["window_start"] == pending["extra"]["window_start"] == T0.isoformat()  # the pending window grew
    assert degraded["fire"] and extra["trigger"] == "model_quality" and extra["labelled"] == 600
    assert extra["map"] < extra["threshold"] == pytest.approx(EVALUATED_MAP - 0.05)
    violations = json.loads(local_path(extra["violations_uri"]).read_text())["violations"]
    assert violations[0]["metric_name"] == "mean_average_precision"
    assert "VIOLATION" in local_path(extra["report_uri"]).read_text()

    _request, again = _run(config, lake, model, "run-3", T0 + timedelta(days=2))  # a re-run fires again
    assert again["fire"] and again["extra"]["window_end"] == extra["window_end"]


def test_quality_request_reads_the_raw_orders_table_and_is_valid(env):
    from tests.aws.botocore_validation import assert_valid_request

    config, lake, model = env
    window = quality_steps.plan_window(config, lake, run_id="r", end=T0)
    request = quality_steps.quality_request(
        config, lake, run_id="r", run_after=T0, model=model, window=window, folders=["AllTraffic/2026/11/24/16"],
        baseline_map=0.6, code_uri=steps.publish_code(lake), image="local/sklearn",
    )  # fmt: skip
    assert_valid_request("sagemaker", "CreateProcessingJob", request)
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in request["ProcessingInputs"]}
    assert inputs["ground_truth"].endswith("/orders/") and set(inputs) == {"code", "ground_truth", "capture-0"}
    arguments = request["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--baseline-map") + 1] == "0.600000"


def test_a_model_without_an_evaluated_map_is_refused_with_the_fix(env):
    _config, _lake, model = env
    with pytest.raises(MonitoringError, match="evaluated_map param"):
        quality_steps.evaluated_map({**model, "version": "9", "model_data_url": "file:///elsewhere/model.tar.gz",
                                     "model_package_group": "other"})  # fmt: skip


def _with_new_label_threshold(config, minimum: int):
    monitoring = config.monitoring
    new_labels = monitoring.retrain_on_new_labels.model_copy(update={"min_new_labelled_orders": minimum})
    return config.model_copy(update={"monitoring": monitoring.model_copy(update={"retrain_on_new_labels": new_labels})})


def test_enough_new_labels_since_the_training_cutoff_fire_once_per_batch(env):
    config, lake, model = env
    config = _with_new_label_threshold(config, 500)
    old = {"committed": "2026-01-02 00:00:00.000000"}  # labelled before the cut-off: in the training data
    _traffic(config, lake, T0 - timedelta(hours=20), 400, shifted=False, seed=1, **old)
    _traffic(config, lake, T0 - timedelta(hours=20), 300, shifted=False, seed=2)
    _request, few = _run(config, lake, model, "run-1", T0)
    assert not few["fire"] and "300 orders labelled after the training data cut-off" in few["reason"], few["reason"]

    _traffic(config, lake, T0 + timedelta(hours=2), 300, shifted=False, seed=3)
    request, enough = _run(config, lake, model, "run-2", T0 + timedelta(days=1))
    arguments = request["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--labels-after") + 1] == CUTOFF
    extra = enough["extra"]
    assert enough["fire"] and extra["trigger"] == "new_labelled_data" and extra["triggers"] == ["new_labelled_data"]
    assert (extra["new_labelled"], extra["new_labelled_threshold"], extra["labels_after"]) == (600, 500, CUTOFF)
    assert "600 orders labelled" in local_path(extra["report_uri"]).read_text()

    _request, same = _run(config, lake, model, "run-3", T0 + timedelta(days=2))  # no new batch: no second trigger
    assert not same["fire"] and same["reason"].endswith(f"{CUTOFF} < 1100 (it fired at 600)"), same["reason"]
    _request, rerun = _run(config, lake, model, "run-2", T0 + timedelta(days=1))  # a re-run of the firing run
    assert rerun["fire"]
    _traffic(config, lake, T0 + timedelta(days=2, hours=2), 500, shifted=False, seed=4)
    _request, cooling = _run(config, lake, model, "run-4", T0 + timedelta(days=1, hours=12))
    assert not cooling["fire"] and "cooldown" in cooling["reason"], cooling["reason"]
    _request, batch = _run(config, lake, model, "run-5", T0 + timedelta(days=3))
    assert batch["fire"] and batch["extra"]["new_labelled"] == 1100, batch["reason"]


def test_the_new_label_verdict_needs_a_cutoff_and_can_be_turned_off():
    from mlops.monitoring.quality_policy import QualityPolicy, new_labels_verdict

    record = {"run_id": "r", "model_version": "2", "window_end": T0.isoformat(), "new_labelled": 9000}
    fire, reason = new_labels_verdict([], {**record, "labels_after": None}, QualityPolicy(min_new_labelled_orders=10))
    assert not fire and "no training data cut-off" in reason and "mlops_train" in reason
    fire, reason = new_labels_verdict([], {**record, "labels_after": CUTOFF}, QualityPolicy())
    assert not fire and "off" in reason
    assert new_labels_verdict([], {**record, "labels_after": CUTOFF}, QualityPolicy(min_new_labelled_orders=10))[0]


def test_a_failed_quality_job_and_a_killed_run_are_recorded_as_failed_windows(env):
    """Issue 16: the quality job failing (the orders table has no status) is recorded with its reason; a
    run killed before it recorded anything is recorded failed by the next run. Neither fires."""
    from mlops.monitoring.policy import UNFINISHED_REASON

    config, lake, model = env
    raw = local_path(lake.raw_table(config.source.schema_name, "orders"))
    raw.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"order_id": [1], "state": ["x"]}).to_parquet(raw / "LOAD00000001.parquet")
    _traffic_capture_only(lake, T0 - timedelta(hours=20))
    window = quality_steps.plan_window(config, lake, run_id="broken", end=T0)
    name = steps.job_name(config, "broken", T0, step="quality")
    quality_steps.record_window(config, lake, run_id="broken", window=window, model=model, name=name)
    keys = steps.list_capture_keys(lake.capture(config.serving.endpoint_name))
    request = quality_steps.quality_request(
        config, lake, run_id="broken", run_after=T0, model=model, window=window, baseline_map=EVALUATED_MAP,
        folders=steps.window_folders(keys, window["window_start"], window["window_end"]),
        code_uri=steps.publish_code(lake), image="local/sklearn",
    )  # fmt: skip
    assert run_processing_job(request)["ProcessingJobStatus"] == "Failed"
    failed = quality_steps.record_failed_window(config, lake, run_id="broken", run_after=T0, window=window, model=model)
    assert failed["status"] == "failed" and "quality job" in failed["reason"] and "status" in failed["reason"]

    killed = quality_steps.plan_window(config, lake, run_id="killed", end=T0 + timedelta(days=1))
    quality_steps.record_window(config, lake, run_id="killed", window=killed, model=model, name="job-k")
    later = quality_steps.plan_window(config, lake, run_id="later", end=T0 + timedelta(days=1, hours=12))
    assert later["window_start"] == (T0 + timedelta(hours=12)).isoformat()  # failed windows do not move the start
    state = quality_steps.load_state(lake, config.serving.endpoint_name)
    records = {w["run_id"]: w for w in state["windows"]}
    assert records["killed"]["status"] == "failed" and records["killed"]["reason"] == UNFINISHED_REASON
    assert records["broken"]["status"] == "failed" and not any(w["fired"] for w in state["windows"])


def _traffic_capture_only(lake, start):
    inputs = curated_features(50, seed=31)
    write_capture(local_path(lake.capture()), inputs, scores(inputs), start)
