"""Runs started from outside Airflow: requests as data, conf checked against the DAGs' real Params,
the Lambda handler's answers, and pipeline files in Git (every file of pipelines/ is valid)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from mlops.runs import pipelines as pl
from mlops.runs import requests
from mlops.runs.handler import handler
from mlops.runs.params import validate_conf
from mlops.runs.requests import RunRequestError
from mlops.runs.service import RunsService
from tests.aws.botocore_validation import assert_valid_request

ROOT = Path(__file__).resolve().parents[2]


@cache
def dag_params() -> dict[str, dict[str, dict[str, Any]]]:
    """dag_id -> Param name -> JSON schema, from the real DAG files (what the REST API serves)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors
    return {dag_id: {k: dict(dag.params.get_param(k).schema) for k in dag.params} for dag_id, dag in bag.dags.items()}


class AirflowDouble:
    """A test double of Airflow's REST API: DAG details from the real DAGs, runs kept in memory."""

    environment = "test-env"

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.runs: dict[str, dict[str, Any]] = {}

    def send(self, request: dict[str, Any]) -> tuple[int, Any]:
        assert_valid_request("mwaa", "InvokeRestApi", request)
        self.sent.append(request)
        parts = request["Path"].strip("/").split("/")
        if parts[0] != "dags" or parts[1] not in dag_params():
            return 404, {"detail": f"The Dag with ID: `{parts[1]}` was not found"}
        if parts[2:] == ["details"]:
            return 200, {"params": {k: {"schema": v} for k, v in dag_params()[parts[1]].items()}}
        if parts[2:] == ["dagRuns"] and request["Method"] == "POST":
            run_id = f"manual__{len(self.runs)}"
            self.runs[run_id] = {"dag_id": parts[1], "dag_run_id": run_id, "state": "queued", **request["Body"]}
            return 200, self.runs[run_id]
        if len(parts) == 4 and parts[2] == "dagRuns" and parts[3] in self.runs:
            return 200, self.runs[parts[3]]
        return 404, {"detail": "not found"}


def event(method: str, path: str, body: Any = None) -> dict[str, Any]:
    raw = body if isinstance(body, str) else json.dumps(body) if body is not None else None
    return {"httpMethod": method, "path": path, "body": raw, "isBase64Encoded": False}


def test_requests_are_valid_invoke_rest_api_calls():
    for request in (
        requests.dag_details_request("mlops-dev", "mlops_train"),
        requests.trigger_request("mlops-dev", "mlops_train", {"map_threshold": 0.5}, note="by API"),
        requests.run_status_request("mlops-dev", "mlops_train", "manual__2026-12-01T00:00:00+00:00"),
    ):
        assert_valid_request("mwaa", "InvokeRestApi", request)
    assert requests.trigger_request("e", "mlops_train", {})["Body"]["logical_date"] is None
    assert "%3A" in requests.run_status_request("e", "d", "manual__2026-12-01T00:00:00")["Path"]
    with pytest.raises(RunRequestError, match="dag_id must be a DAG id"):
        requests.trigger_request("e", "../etc", {})


@pytest.mark.parametrize(
    ("conf", "field", "message"),
    [
        ({"map_threshold": 2}, "conf.map_threshold", "2 is greater than the maximum of 1"),
        ({"map_threshold": "high"}, "conf.map_threshold", "is not of type"),
        ({"n_estimators": 500}, "conf.n_estimators", r"not a Param of mlops_train \(its Params: force, hyper"),
        ({"force": "yes"}, "conf.force", "is not of type 'boolean'"),
        ([1, 2], "conf", "conf must be a JSON object"),
    ],
)
def test_conf_is_checked_against_the_dags_own_params(conf, field, message):
    with pytest.raises(RunRequestError, match=message) as error:
        validate_conf(conf, dag_params()["mlops_train"], "mlops_train")
    assert error.value.field == field


def test_the_handler_starts_a_run_and_reads_its_status():
    airflow = AirflowDouble()
    service = RunsService(airflow)
    body = {"dag_id": "mlops_train", "conf": {"map_threshold": 0.5}}
    started = handler(event("POST", "/runs", body), service=service)
    assert started["statusCode"] == 200, started
    run = json.loads(started["body"])
    assert run["dag_id"] == "mlops_train" and run["state"] == "queued"
    assert airflow.sent[-1]["Body"] == {"logical_date": None, "conf": {"map_threshold": 0.5}}
    status = handler(event("GET", f"/runs/mlops_train/{run['run_id']}"), service=service)
    assert status["statusCode"] == 200 and json.loads(status["body"])["dag_run_id"] == run["run_id"]


@pytest.mark.parametrize(
    ("request_event", "field"),
    [
        (event("POST", "/runs", {"dag_id": "mlops_train", "conf": {"map_threshold": 7}}), "conf.map_threshold"),
        (event("POST", "/runs", {"dag_id": "mlops_train", "conf": {"colour": "red"}}), "conf.colour"),
        (event("POST", "/runs", {"dag_id": "no_such_dag", "conf": {}}), "dag_id"),
        (event("POST", "/runs", "{not json"), "body"),
        (event("POST", "/runs", {"dag_id": "mlops_train", "extra": 1}), "extra"),
        (event("POST", "/runs", "x" * 70_000), "body"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field_and_triggers_nothing(request_event, field):
    airflow = AirflowDouble()
    answer = handler(request_event, service=RunsService(airflow))
    assert answer["statusCode"] == 400, answer
    assert json.loads(answer["body"])["field"] == field
    assert not airflow.runs


def test_an_unknown_route_is_a_404():
    answer = handler(event("DELETE", "/runs/x/y"), service=RunsService(AirflowDouble()))
    assert answer["statusCode"] == 404 and "POST /runs" in json.loads(answer["body"])["message"]


def test_every_pipeline_file_in_the_repository_is_valid():
    loaded = pl.load_pipelines(ROOT / "pipelines", lambda dag_id: dag_params()[dag_id])
    assert {p.dag_id for p in loaded} <= set(dag_params()) and loaded


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("dag_id: mlops_train\nconf: {map_threshold: 3}\n", "conf.map_threshold"),
        ("dag_id: mlops_train\nconf: {}\nschedule: daily\n", "unknown key 'schedule'"),
        ("dag_id: mlops_train\ndag_id: mlops_deploy\n", "'dag_id' appears twice"),
        ("dag_id: '../x'\n", "dag_id:"),
        ("dag_id: mlops_train\nconf: [1]\n", "conf must be a mapping"),
    ],
)
def test_an_invalid_pipeline_file_is_named_with_its_key(tmp_path, text, named):
    (tmp_path / "good.yaml").write_text("dag_id: mlops_deploy\n")
    (tmp_path / "bad-one.yaml").write_text(text)
    with pytest.raises(pl.PipelineFileError) as error:
        pl.load_pipelines(tmp_path, lambda dag_id: dag_params()[dag_id])
    assert "bad-one.yaml" in str(error.value) and named in str(error.value)


def test_apply_starts_exactly_what_changed(tmp_path):
    (tmp_path / "a.yaml").write_text("dag_id: mlops_train\nconf: {map_threshold: 0.5}\n")
    (tmp_path / "b.yaml").write_text("dag_id: mlops_deploy\n")
    schemas = lambda dag_id: dag_params()[dag_id]  # noqa: E731
    applied: dict[str, Any] = {}
    first = pl.changed(pl.load_pipelines(tmp_path, schemas), applied)
    assert [p.name for p in first] == ["a", "b"]
    for pipeline in first:
        pl.record(applied, pipeline, {"run_id": f"r-{pipeline.name}"})
    assert pl.changed(pl.load_pipelines(tmp_path, schemas), applied) == []
    (tmp_path / "a.yaml").write_text("dag_id: mlops_train\nconf: {map_threshold: 0.55}\n")
    assert [p.name for p in pl.changed(pl.load_pipelines(tmp_path, schemas), applied)] == ["a"]


def test_an_airflow_that_does_not_answer_is_named_with_the_command_to_check_it():
    """A local Airflow that is down (or too busy to answer) is a clear error with exit 2, not a traceback."""
    import socket

    from typer.testing import CliRunner

    from mlops.cli import app

    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(
        app, ["runs", "status", "mlops_train", "r1", "--airflow-url", f"http://127.0.0.1:{port}"]
    )
    assert result.exit_code == 2, result.output
    assert f"local Airflow at http://127.0.0.1:{port} did not answer" in result.output
    assert "make airflow-status" in result.output
