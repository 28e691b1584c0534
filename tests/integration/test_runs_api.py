"""The run API against a real local Airflow: the Lambda handler's code path, the REST calls, pipeline apply."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops.cli import app
from mlops.runs.handler import handler, transport_from_environment
from mlops.runs.service import RunsService
from tests import live_airflow

pytestmark = [pytest.mark.slow, pytest.mark.airflow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    home = tmp_path_factory.mktemp("runs-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        # Nothing unpaused: the tests count and describe runs, they need none to execute, and the hourly DAGs'
        # start-up runs (a burst of task processes on one SQLite file) can stall the API server past the
        # client's timeout on a busy 2-core machine.
        with live_airflow.running_airflow(live_airflow.airflow_env(home, MLOPS_AIRFLOW_UNPAUSE="none")) as url:
            yield url, home


def _event(method: str, path: str, body: dict | None = None) -> dict:
    return {"httpMethod": method, "path": path, "body": json.dumps(body) if body is not None else None}


def test_a_run_started_through_the_handler_is_a_real_run_with_a_status(airflow):
    url, _ = airflow
    service = RunsService(transport_from_environment({"AIRFLOW_API_URL": url}))
    body = {"dag_id": "mlops_train", "conf": {"map_threshold": 0.45, "force": True}, "note": "from the run API"}
    started = handler(_event("POST", "/runs", body), service=service)
    assert started["statusCode"] == 200, started
    run = json.loads(started["body"])
    assert run["dag_id"] == "mlops_train" and run["run_id"].startswith("manual__")
    status = handler(_event("GET", f"/runs/mlops_train/{run['run_id']}"), service=service)
    assert status["statusCode"] == 200, status
    described = json.loads(status["body"])
    assert described["dag_run_id"] == run["run_id"]
    assert described["conf"] == {"map_threshold": 0.45, "force": True}
    assert described["state"] in {"queued", "running", "success", "failed"}


def test_a_bad_body_is_refused_before_airflow_sees_it(airflow):
    url, _ = airflow
    service = RunsService(transport_from_environment({"AIRFLOW_API_URL": url}))
    runs_before = _run_count(url, "mlops_deploy")
    answer = handler(_event("POST", "/runs", {"dag_id": "mlops_deploy", "conf": {"model_versoin": 3}}), service=service)
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["field"] == "conf.model_versoin"
    assert _run_count(url, "mlops_deploy") == runs_before


def _run_count(url: str, dag_id: str) -> int:
    """The DAG's manual runs: the ones a request starts. Asset-triggered runs do not count: a training run
    started here registers a model whose event schedules mlops_deploy whenever the scheduler gets to it."""
    from mlops.runs.transport import LocalAirflowTransport, local_token

    status, body = LocalAirflowTransport(url, local_token(url)).send(
        {"Path": f"/dags/{dag_id}/dagRuns?run_type=manual", "Method": "GET"}
    )
    assert status == 200, body
    return body["total_entries"]


def test_apply_starts_exactly_the_changed_pipeline_once(airflow, tmp_path):
    url, home = airflow
    folder = tmp_path / "pipelines"
    shutil.copytree(ROOT / "pipelines", folder)
    state = str(home / "applied.json")
    runner = CliRunner()

    def apply() -> str:
        result = runner.invoke(app, ["runs", "apply", str(folder), "--state", state, "--airflow-url", url])
        assert result.exit_code == 0, result.output
        return result.output

    assert "started mlops_train" in apply()  # first apply: every pipeline is new
    before = {dag: _run_count(url, dag) for dag in ("mlops_train", "mlops_deploy")}
    assert "0 changed" in apply()
    candidate = folder / "train-candidate.yaml"
    candidate.write_text(candidate.read_text().replace("map_threshold: 0.42", "map_threshold: 0.43"))
    output = apply()
    assert "1 changed: train-candidate" in output and "started mlops_train" in output
    assert "0 changed" in apply()
    after = {dag: _run_count(url, dag) for dag in ("mlops_train", "mlops_deploy")}
    assert after == {"mlops_train": before["mlops_train"] + 1, "mlops_deploy": before["mlops_deploy"]}
