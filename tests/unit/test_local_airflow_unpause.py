"""`make airflow` unpauses the project's DAGs, or only those MLOPS_AIRFLOW_UNPAUSE lists."""

from __future__ import annotations

import pytest

from mlops_tools.local_airflow import dags_to_unpause, project_dag_ids


def test_every_project_dag_by_default_none_or_a_list_on_request():
    project = project_dag_ids()
    assert "mlops_train" in project
    assert dags_to_unpause(None, project) == project
    assert dags_to_unpause("none", project) == dags_to_unpause(" None ", project) == []
    assert dags_to_unpause("mlops_train, mlops_deploy", project) == ["mlops_train", "mlops_deploy"]


def test_an_unknown_dag_is_refused_naming_the_project_dags():
    refused = r"names \['mlops_trian'\], which are not DAGs of this project \(.*mlops_train"
    with pytest.raises(ValueError, match=refused):
        dags_to_unpause("mlops_trian", project_dag_ids())
