"""mlops_train: its wiring, and three dag.test() runs (fresh, step-cache hit, gate rejection)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.lake import Lake, local_path
from mlops.training import synthetic
from tests.asset_queue import clear_queue, queued_dag_ids, set_paused


def test_dag_wiring():
    from mlops_airflow.assets import DRIFT_DETECTED, MODEL_QUALITY_DEGRADED, REGISTERED_MODEL, VALIDATED_FEATURES
    from mlops_tools.dag_runner import load_dag

    dag = load_dag("mlops_train")
    assert not dag.catchup and "training" in dag.tags and dag.default_args["retries"] >= 1
    # new features, drift, or measured quality loss
    assert dag.timetable.asset_condition == VALIDATED_FEATURES | DRIFT_DETECTED | MODEL_QUALITY_DEGRADED
    assert set(dag.params) == {"hyperparameters", "map_threshold", "force"}
    register = dag.get_task("register")
    assert REGISTERED_MODEL in register.outlets
    assert {t.task_id for t in register.upstream_list} >= {"train", "evaluate", "find_champion", "plan_training"}
    assert dag.get_task("train").template_fields[-1] == "force"


@pytest.fixture(scope="module")
def dag_env(tmp_path_factory):
    from mlops.config import load_config
    from mlops_airflow.targets import pipeline_config

    home = tmp_path_factory.mktemp("train-dag-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        patch.setenv("MLOPS_TARGET", "local")
        pipeline_config.cache_clear()
        lake = Lake.for_target(load_config(), "local")
        synthetic.write_dataset(synthetic.curated_features(2500, seed=21), local_path(lake.curated("features")))
        yield home
        pipeline_config.cache_clear()


def _sync_deploy_dag() -> None:
    """Put mlops_deploy, unpaused, into the metadata DB, so a registered-model event queues a run of it as under
    the scheduler."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    from mlops_tools.dag_runner import DAGS_FOLDER

    sync_bag_to_db(DagBag(dag_folder=str(DAGS_FOLDER / "mlops_deploy.py")), "dags-folder", None)
    set_paused("mlops_deploy", False)


def _deploy_queued() -> bool:
    """Whether an Asset event waits to trigger mlops_deploy (the scheduler's AssetDagRunQueue)."""
    return "mlops_deploy" in queued_dag_ids()


def _clear_deploy_queue() -> None:
    clear_queue("mlops_deploy")


def _run(conf: dict, home):
    from mlops_tools.dag_runner import run_dag

    # keep_queued: the queue is this test's probe of whether a run's event schedules mlops_deploy
    return run_dag("mlops_train", conf=conf, log_path=home / "logs" / "mlops_train.log", keep_queued=True)


@pytest.mark.airflow
@pytest.mark.slow
def test_train_register_then_cache_hit_then_gate_rejects(dag_env):
    from mlops_tools.dag_runner import ensure_airflow_db

    ensure_airflow_db()
    _sync_deploy_dag()
    _clear_deploy_queue()
    hyperparameters = {"hyperparameters": {"n_estimators": 30, "num_leaves": 15}}
    first = _run(hyperparameters, dag_env)
    assert first.succeeded, f"{first.task_states} {first.error} (log: {first.log_path})"
    extra = first.asset_extras["mlops_registered_model"]
    assert extra["version"] == 1 and extra["approval_status"] == "Approved" and extra["map"] > 0.45
    assert extra["model_data_url"].endswith("/output/model.tar.gz") and local_path(extra["model_data_url"]).exists()
    assert first.xcoms["train"]["CacheHit"] is False

    assert _deploy_queued(), (
        "the harness queues mlops_deploy on a registered-model event (else the check below is moot)"
    )
    _clear_deploy_queue()

    second = _run(hyperparameters, dag_env)
    assert second.succeeded, f"{second.task_states} {second.error}"
    assert second.xcoms["train"]["CacheHit"] is True  # same snapshot, code and hyperparameters: no retraining
    # Issue 12.5: the same model again is nothing new: register skips, so no event and no redeploy
    assert second.task_states["register"] == "skipped" and "mlops_registered_model" not in second.asset_extras
    again = second.xcoms["register"]
    assert again["version"] == 1 and again["champion_version"] == 1 and not again["created"]
    assert not _deploy_queued(), "a reused model version must not schedule mlops_deploy"

    rejected = _run({**hyperparameters, "map_threshold": 0.99}, dag_env)
    assert rejected.task_states["register"] == "failed" and "mlops_registered_model" not in rejected.asset_extras
    log = Path(rejected.log_path).read_text(errors="replace")
    assert "model gate rejected the challenger: mAP" in log and "below the threshold 0.9900" in log
