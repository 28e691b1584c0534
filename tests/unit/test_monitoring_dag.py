"""mlops_monitor through dag.test(): a clean window, then drifted windows until the policy fires
once (the drift Asset carries the details), then dedupe; and the DAG's shape and Params."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from mlops.lake import local_path
from mlops.monitoring.traffic import drift_rows, sample_rows
from tests.jobs.sagemaker.monitoring_fixtures import curated, model_package, write_capture

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
START = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
ENDPOINT = f"dag-monitor-{os.getpid()}"  # the Airflow test DB outlives a session: no stale events


@pytest.fixture(scope="module")
def monitor_env(tmp_path_factory):
    from mlops.lake import Lake
    from mlops_airflow.targets import pipeline_config

    home = tmp_path_factory.mktemp("monitor-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        patch.setenv("MLOPS_TARGET", "local")
        patch.setenv("MLOPS__SERVING__ENDPOINT_NAME", ENDPOINT)
        patch.setenv("MLOPS__MONITORING__IMAGE_URI", "local/sklearn:1.2-1")
        patch.setenv("MLOPS__MONITORING__CONSECUTIVE_WINDOWS", "2")
        patch.setenv("MLOPS__MONITORING__SENSOR_TIMEOUT_MINUTES", "1")  # bound any wait; tests never need one
        patch.setenv("MLOPS__MONITORING__SENSOR_POKE_SECONDS", "5")
        pipeline_config.cache_clear()
        lake = Lake.for_target(pipeline_config(), "local")
        uri, frame, spec = curated(lake, rows=5000)
        model_uri = model_package(lake, spec)
        yield {"home": home, "lake": lake, "curated": uri, "frame": frame, "spec": spec, "model": model_uri}
        pipeline_config.cache_clear()


def _run(env, hour: int, *, drifted: bool):
    from mlops_tools.dag_runner import run_dag

    spec = env["spec"]
    rows = sample_rows(env["frame"][env["frame"].split == "test"][spec["numeric"] + spec["categorical"]], 400, hour)
    if drifted:
        rows = drift_rows(rows, spec["numeric"], spec["categorical"], seed=hour)
    window_end = START + timedelta(hours=hour + 1)
    write_capture(env["lake"], ENDPOINT, rows, START + timedelta(hours=hour, minutes=10))
    conf = {
        "model_version": "1",
        "model_data_url": env["model"],
        "training_data_uri": env["curated"],
        "window_end": window_end.isoformat(),
    }
    result = run_dag("mlops_monitor", conf=conf, log_path=env["home"] / "logs" / "mlops_monitor.log")
    assert result.succeeded, f"{result.task_states} {result.error} (log: {result.log_path})"
    return result


def test_policy_fires_once_per_drift_episode(monitor_env):
    clean = _run(monitor_env, 0, drifted=False)
    assert clean.task_states["emit_drift_detected"] == "skipped"
    assert clean.xcoms["evaluate_policy"]["status"] == "clean"
    assert not clean.asset_extras
    assert clean.xcoms["ensure_baseline"]["created"] is True
    assert clean.task_states["baseline_job"] == "success"  # the baseline is a processing job
    assert clean.xcoms["baseline_job"]["Processing"]["ProcessingJobName"] == clean.xcoms["ensure_baseline"]["job_name"]

    first = _run(monitor_env, 1, drifted=True)
    assert first.xcoms["evaluate_policy"]["status"] == "drifted"
    assert first.task_states["emit_drift_detected"] == "skipped"  # 1 of 2 consecutive windows
    assert first.xcoms["ensure_baseline"]["created"] is False  # cached per model version
    assert first.task_states["baseline_job"] == "skipped"  # no job started

    second = _run(monitor_env, 2, drifted=True)
    assert second.task_states["emit_drift_detected"] == "success"
    extra = second.asset_extras["mlops_drift_detected"]
    assert extra["drift_share"] >= 0.25 and extra["model_version"] == "1"
    assert {"drift_share", "drifted_features", "windows", "model_version", "violations_uri", "report_uri"} <= set(extra)
    assert len(extra["windows"]) == 2
    violations = json.loads(local_path(extra["violations_uri"]).read_text())
    assert any(v["constraint_check_type"] == "baseline_drift_check" for v in violations["violations"])
    assert "<svg" in local_path(extra["report_uri"]).read_text()

    third = _run(monitor_env, 3, drifted=True)  # same episode: deduplicated
    assert third.task_states["emit_drift_detected"] == "skipped"
    assert "already triggered" in third.xcoms["evaluate_policy"]["reason"]


def test_dag_shape_and_schedule_match_config():
    from mlops.config import load_config
    from mlops_tools.dag_runner import load_dag

    dag = load_dag("mlops_monitor")
    assert dag.schedule == load_config().monitoring.schedule or str(dag.timetable.summary) == "@hourly"
    assert {"window_minutes", "window_end", "force", "model_version", "model_data_url"} <= set(dag.params)
    emit = dag.get_task("emit_drift_detected")
    assert [o.name for o in emit.outlets] == ["mlops_drift_detected"]
    assert dag.get_task("plan_baseline").downstream_task_ids == {"baseline_job"}
    assert dag.get_task("ensure_baseline").trigger_rule == "none_failed_min_one_success"
    sensor = dag.get_task("wait_for_capture")
    assert sensor.soft_fail is True and sensor.mode == "reschedule"
    assert dag.catchup is False and dag.default_args["retries"] >= 2


def test_no_deployed_model_skips_the_run(monitor_env):
    from mlops_tools.dag_runner import run_dag

    result = run_dag("mlops_monitor", conf={}, log_path=monitor_env["home"] / "logs" / "mlops_monitor.log")
    assert result.succeeded, result.error
    assert result.task_states["find_monitored_model"] == "skipped"
    skipped = ("baseline_job", "ensure_baseline", "wait_for_capture", "drift_job", "emit_drift_detected")
    assert {result.task_states[t] for t in skipped} == {"skipped"}
    assert not result.asset_extras


def test_model_comes_from_the_endpoint_live_event(monitor_env):
    """Without Params the monitor follows the newest mlops_endpoint_live event of its endpoint."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from mlops_airflow.assets import ENDPOINT_LIVE
    from mlops_tools.dag_runner import run_dag

    with create_session() as session:
        asset = session.scalar(select(AssetModel).where(AssetModel.name == "mlops_endpoint_live"))
        if asset is None:
            asset = AssetModel(name=ENDPOINT_LIVE.name, uri=ENDPOINT_LIVE.uri, group=ENDPOINT_LIVE.group)
            session.add(asset)
            session.flush()
        for version, endpoint in (("5", ENDPOINT), ("6", "some-other-endpoint")):
            session.add(
                AssetEvent(
                    asset_id=asset.id,
                    source_dag_id="mlops_deploy",
                    source_task_id="smoke_test",
                    source_run_id=f"manual__v{version}",
                    extra={
                        "model_version": version,
                        "model_data_url": monitor_env["model"],
                        "model_package_group": "orders",
                        "endpoint_name": endpoint,
                        "training_data_uri": monitor_env["curated"],
                    },
                )
            )
    result = run_dag("mlops_monitor", conf={"force": True}, log_path=monitor_env["home"] / "logs" / "mlops_monitor.log")
    assert result.succeeded, result.error
    assert result.xcoms["find_monitored_model"]["version"] == "5"
    assert result.xcoms["ensure_baseline"]["baseline_uri"].endswith("/baselines/orders/v5")
    assert result.task_states["wait_for_capture"] == "success"  # force: no waiting


def test_a_failed_drift_job_is_recorded_as_a_failed_window(monitor_env):
    """Issue 13.6: a window whose drift job fails is recorded as failed, with the reason, once the job's
    retries are spent; the next run's window starts after it (before, nothing was recorded: the span was
    later skipped unmonitored, and the run failed on every retry)."""
    from mlops.monitoring.steps import load_state
    from mlops_tools.dag_runner import run_dag

    lake, spec = monitor_env["lake"], monitor_env["spec"]
    broken = local_path(lake.monitoring("baselines", "manual", "v8"))  # a cached baseline the job cannot read
    broken.mkdir(parents=True, exist_ok=True)
    (broken / "statistics.json").write_text("{not json")
    (broken / "constraints.json").write_text("{}")
    (broken / "feature_spec.json").write_text(json.dumps(spec))
    uri = lake.monitoring("baselines", "manual", "v8")
    (broken / "baseline_info.json").write_text(json.dumps({"baseline_uri": uri, "model_version": "8"}))
    held_out = monitor_env["frame"][monitor_env["frame"].split == "test"]
    rows = sample_rows(held_out[spec["numeric"] + spec["categorical"]], 200, 6)
    write_capture(lake, ENDPOINT, rows, START + timedelta(hours=6, minutes=10))
    window_end = START + timedelta(hours=7)
    conf = {"model_version": "8", "model_data_url": monitor_env["model"], "window_end": window_end.isoformat()}
    result = run_dag("mlops_monitor", conf=conf, log_path=monitor_env["home"] / "logs" / "mlops_monitor.log")
    assert not result.succeeded  # the failure stays visible
    assert result.task_states["drift_job"] == "failed"
    assert result.task_states["record_failed_window"] == "success"
    record = result.xcoms["record_failed_window"]
    assert record["status"] == "failed" and "JSONDecodeError" in record["reason"]
    state = load_state(lake, ENDPOINT)
    [failed] = [w for w in state["windows"] if w["run_id"] == record["run_id"]]
    assert failed["status"] == "failed" and failed["window_end"] == window_end.isoformat()


def test_record_failed_window_runs_only_when_the_drift_job_failed():
    from mlops_tools.dag_runner import load_dag

    dag = load_dag("mlops_monitor")
    task = dag.get_task("record_failed_window")
    assert task.trigger_rule == "one_failed" and "drift_job" in task.upstream_task_ids


def test_a_window_ends_the_capture_flush_lag_before_its_run():
    """Issue 12.6: capture flushed after the trigger must fall into the next window, not into none."""
    from types import SimpleNamespace

    from mlops_airflow.tasks.monitoring import window_end_of_run

    triggered = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
    manual = {"params": {}, "dag_run": SimpleNamespace(run_type="manual", run_after=triggered)}
    assert window_end_of_run(manual, 5) == triggered - timedelta(seconds=5)
    interval_end = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    scheduled = {**manual, "dag_run": SimpleNamespace(run_type="scheduled", run_after=triggered)}
    at_interval_end = {**scheduled, "data_interval_end": interval_end}
    assert window_end_of_run(at_interval_end, 300) == interval_end - timedelta(minutes=5)
    chosen = {**manual, "params": {"window_end": "2026-03-01T11:00:00+00:00"}}
    assert window_end_of_run(chosen, 5) == "2026-03-01T11:00:00+00:00", "a window end a person chose is kept as given"
