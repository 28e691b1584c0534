"""`make airflow` unpauses the project's DAGs, or only those MLOPS_AIRFLOW_UNPAUSE lists."""

from __future__ import annotations

import urllib.error

import pytest

from mlops_tools.local_airflow import AirflowApi, dags_to_unpause, project_dag_ids


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


def test_an_unpause_without_an_answer_is_retried_then_named(monkeypatch):
    api, calls = AirflowApi(8080), []

    def slow_then_ok(method, path, body=None, auth=True):
        calls.append((method, path, body))
        if len(calls) == 1:
            raise TimeoutError("timed out")  # what urlopen raises when the answer does not come in time
        if len(calls) == 2:
            raise urllib.error.HTTPError(path, 503, "busy", {}, None)

    monkeypatch.setattr(api, "_call", slow_then_ok)
    api.unpause("mlops_ingest", pause_s=0)
    assert calls == [("PATCH", "/api/v2/dags/mlops_ingest", {"is_paused": False})] * 3

    def never(method, path, body=None, auth=True):
        raise urllib.error.URLError(TimeoutError("timed out"))

    monkeypatch.setattr(api, "_call", never)
    with pytest.raises(RuntimeError, match=r"unpausing mlops_ingest failed 3 times .*no answer.*make stop && make"):
        api.unpause("mlops_ingest", attempts=3, pause_s=0)

    def refused(method, path, body=None, auth=True):
        raise urllib.error.HTTPError(path, 404, "not found", {}, None)

    monkeypatch.setattr(api, "_call", refused)
    with pytest.raises(urllib.error.HTTPError):  # a 4xx is not a busy server: no retry
        api.unpause("mlops_nope", pause_s=0)
