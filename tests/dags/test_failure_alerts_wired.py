"""Every task of every DAG reports its final failure through mlops_airflow.callbacks.task_failure_alert."""

from __future__ import annotations

from pathlib import Path

from mlops_airflow.callbacks import task_failure_alert

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


def test_every_task_has_the_failure_alert(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("MLOPS_TARGET", "aws")
    dagbag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert not dagbag.import_errors and dagbag.dags
    missing = [
        f"{dag_id}.{task.task_id}"
        for dag_id, dag in dagbag.dags.items()
        for task in dag.tasks
        if task_failure_alert not in (task.on_failure_callback if isinstance(task.on_failure_callback, list)
                                      else [task.on_failure_callback])
    ]  # fmt: skip
    assert not missing, f"tasks without the failure alert (default_args on_failure_callback): {missing}"
