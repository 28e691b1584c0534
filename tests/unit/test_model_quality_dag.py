"""mlops_model_quality through dag.test(): a window of predictions whose labels agree with the model
(no event), then a concept shift (labels change, inputs don't) that fires
mlops_model_quality_degraded with its evidence; and the DAG's wiring to mlops_train."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from mlops.lake import local_path
from tests.jobs.sagemaker.monitoring_fixtures import curated_features, model_archive
from tests.jobs.sagemaker.quality_fixtures import (
    concept_shifted_labels,
    sample_labels,
    scores,
    write_capture,
    write_orders,
)

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
START = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
ENDPOINT = f"dag-quality-{os.getpid()}"  # the Airflow test DB outlives a session: no stale events
EVALUATED_MAP = 0.66


@pytest.fixture(scope="module")
def quality_env(tmp_path_factory):
    from mlops.lake import Lake
    from mlops_airflow.targets import pipeline_config

    home = tmp_path_factory.mktemp("quality-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        patch.setenv("MLOPS_TARGET", "local")
        patch.setenv("MLOPS__SERVING__ENDPOINT_NAME", ENDPOINT)
        patch.setenv("MLOPS__MONITORING__IMAGE_URI", "local/sklearn:1.2-1")
        pipeline_config.cache_clear()
        config = pipeline_config()
        lake = Lake.for_target(config, "local")
        model = lake.models("training", "job-q", "output", "model.tar.gz")
        model_archive(local_path(model), {"numeric": [], "categorical": []})
        yield {"home": home, "lake": lake, "config": config, "model": model}
        pipeline_config.cache_clear()


def _day(env, day: int, *, shifted: bool):
    from mlops_tools.dag_runner import run_dag

    inputs = curated_features(500, seed=day)
    inputs["order_id"] += day * 100_000
    proba = scores(inputs)
    labels = concept_shifted_labels(proba, day) if shifted else sample_labels(proba, day)
    write_capture(
        local_path(env["lake"].capture()), inputs, proba, START + timedelta(days=day, hours=1), endpoint=ENDPOINT
    )
    raw = local_path(env["lake"].raw_table(env["config"].source.schema_name, "orders")).parent
    write_orders(raw, inputs["order_id"].to_numpy(), labels, name=str(day))
    conf = {
        "model_version": "1",
        "model_data_url": env["model"],
        "evaluated_map": EVALUATED_MAP,
        "window_end": (START + timedelta(days=day + 1)).isoformat(),
    }
    result = run_dag("mlops_model_quality", conf=conf, log_path=env["home"] / "logs" / "mlops_model_quality.log")
    assert result.succeeded, f"{result.task_states} {result.error} (log: {result.log_path})"
    return result


def test_concept_shift_fires_the_quality_asset_with_its_evidence(quality_env):
    clean = _day(quality_env, 0, shifted=False)
    assert clean.xcoms["evaluate_quality"]["status"] == "evaluated"
    assert clean.task_states["emit_quality_degraded"] == "skipped" and not clean.asset_extras

    shifted = _day(quality_env, 1, shifted=True)
    assert shifted.task_states["emit_quality_degraded"] == "success"
    extra = shifted.asset_extras["mlops_model_quality_degraded"]
    assert extra["trigger"] == "model_quality" and extra["labelled"] == 500 and extra["label_coverage"] == 1.0
    assert extra["map"] < extra["threshold"] == pytest.approx(EVALUATED_MAP - 0.05)
    assert extra["window_start"] == (START + timedelta(days=1)).isoformat()  # after the evaluated window
    assert set(extra["per_class_ap"]) == {"cancelled", "delivered", "returned"}


def test_dag_shape_schedule_and_training_trigger():
    from mlops.config import load_config
    from mlops_tools.dag_runner import load_dag

    dag = load_dag("mlops_model_quality")
    assert dag.schedule == load_config().monitoring.quality.schedule == "@daily"
    assert [o.name for o in dag.get_task("emit_quality_degraded").outlets] == ["mlops_model_quality_degraded"]
    assert dag.get_task("build_quality_request").downstream_task_ids == {"quality_job"}
    assert {"window_end", "model_version", "model_data_url", "evaluated_map"} <= set(dag.params)
    # mlops_train schedules on the asset: tests/unit/test_training_dag.py::test_dag_wiring


def test_training_log_names_the_trigger_and_its_evidence():
    from mlops_airflow.tasks.training import trigger_line

    line = trigger_line("mlops_model_quality_degraded", {"trigger": "model_quality", "map": 0.41, "threshold": 0.6})
    assert line == "triggered by mlops_model_quality_degraded (model_quality): {'map': 0.41, 'threshold': 0.6}"
    assert "(new data)" in trigger_line("mlops_validated_features", {"rows": 10})


def test_training_log_names_the_new_labelled_data_trigger():
    from mlops_airflow.tasks.training import trigger_line

    extra = {"trigger": "new_labelled_data", "new_labelled": 6000, "new_labelled_threshold": 5000,
             "labels_after": "2026-01-03T00:00:00+00:00", "map": None}  # fmt: skip
    line = trigger_line("mlops_model_quality_degraded", extra)
    assert line.startswith("triggered by mlops_model_quality_degraded (new_labelled_data): ")
    assert "'new_labelled': 6000, 'new_labelled_threshold': 5000" in line and "'map'" not in line


def test_the_training_data_cutoff_comes_from_the_snapshot_manifest(tmp_path):
    import json

    from mlops.training.steps import training_data_cutoff

    snapshot = tmp_path / "curated" / "features" / "snapshots" / "run-1"
    (snapshot / "split=train").mkdir(parents=True)
    (snapshot / "_manifest.json").write_text(json.dumps({"orders_through": "2026-01-03T00:00:00.000000+00:00"}))
    channel = {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": f"file://{snapshot}/split=train"}}}
    assert training_data_cutoff({"InputDataConfig": [channel]}) == "2026-01-03T00:00:00.000000+00:00"
    (snapshot / "_manifest.json").unlink()
    assert training_data_cutoff({"InputDataConfig": [channel]}) == ""  # an older snapshot: no cut-off known


def test_record_failed_window_runs_only_when_the_quality_job_failed():
    from mlops_tools.dag_runner import load_dag

    dag = load_dag("mlops_model_quality")
    task = dag.get_task("record_failed_window")
    assert task.trigger_rule == "one_failed" and "quality_job" in task.upstream_task_ids
