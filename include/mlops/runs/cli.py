"""`mlops runs start|status|apply`: the run API's code path from the command line.

Locally the commands talk to ``make airflow``'s REST API (``--airflow-url``); with
``--mwaa-environment NAME`` they call MWAA's InvokeRestApi instead (AWS credentials from the
usual chain). ``apply`` keeps what it applied in ``--state`` (a file, default
``<MLOPS_HOME>/runs/applied.json``, or ``s3://bucket/key`` in CodePipeline).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mlops.runs.requests import RunRequestError
from mlops.runs.service import AirflowApiError, RunsService
from mlops.runs.transport import AirflowUnreachable

runs = typer.Typer(
    help="Start pipeline runs by API call or from config files (pipelines/*.yaml).", no_args_is_help=True
)

AirflowUrl = Annotated[str, typer.Option("--airflow-url", help="local Airflow's API (make airflow)")]
Mwaa = Annotated[str | None, typer.Option("--mwaa-environment", help="call this MWAA environment instead")]


def _service(airflow_url: str, mwaa_environment: str | None) -> RunsService:
    from mlops.runs.handler import transport_from_environment

    environ = {"MWAA_ENVIRONMENT_NAME": mwaa_environment} if mwaa_environment else {"AIRFLOW_API_URL": airflow_url}
    return RunsService(transport_from_environment(environ))


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def _conf(value: str | None) -> Any:
    """``--conf``: a JSON object, or the path of a JSON file holding one."""
    if not value:
        return {}
    path = Path(value)
    text = path.read_text() if path.is_file() else value
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _fail(f"--conf is neither a JSON object nor a JSON file: {exc}") from None


@runs.command("start")
def start(
    dag_id: str,
    conf: Annotated[str | None, typer.Option(help="JSON object or file of the DAG's Params")] = None,
    note: Annotated[str | None, typer.Option(help="a note shown on the run")] = None,
    airflow_url: AirflowUrl = "http://127.0.0.1:8080",
    mwaa_environment: Mwaa = None,
) -> None:
    """Validate CONF against DAG_ID's Params and start a run; prints its run id."""
    try:
        run = _service(airflow_url, mwaa_environment).start(dag_id, _conf(conf), note)
    except (RunRequestError, AirflowApiError, AirflowUnreachable) as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps(run))


@runs.command("status")
def status(
    dag_id: str, run_id: str, airflow_url: AirflowUrl = "http://127.0.0.1:8080", mwaa_environment: Mwaa = None
) -> None:
    """The state of one run."""
    try:
        typer.echo(json.dumps(_service(airflow_url, mwaa_environment).status(dag_id, run_id), default=str))
    except (RunRequestError, AirflowApiError, AirflowUnreachable) as exc:
        raise _fail(str(exc)) from None


@runs.command("apply")
def apply(
    folder: Annotated[Path, typer.Argument(help="folder of pipeline files")] = Path("pipelines"),
    state: Annotated[str | None, typer.Option(help="applied-state file or s3:// URI")] = None,
    dry_run: Annotated[bool, typer.Option(help="validate and list what would start; start nothing")] = False,
    airflow_url: AirflowUrl = "http://127.0.0.1:8080",
    mwaa_environment: Mwaa = None,
) -> None:
    """Validate every pipeline file, then start a run for each one that changed since it was applied."""
    from mlops.runs import pipelines as pl
    from mlops.runs.state import StateStore

    service = _service(airflow_url, mwaa_environment)
    store = StateStore.at(state)
    try:
        loaded = pl.load_pipelines(folder, service.param_schemas)
        applied = store.read()
        todo = pl.changed(loaded, applied)
        typer.echo(f"{len(loaded)} pipeline(s) valid; {len(todo)} changed: {', '.join(p.name for p in todo) or 'none'}")
        for pipeline in [] if dry_run else todo:
            run = service.start(pipeline.dag_id, pipeline.conf, note=f"pipelines/{pipeline.path.name}")
            store.write(pl.record(applied, pipeline, run))  # after each run: a failure later keeps this one
            typer.echo(f"started {pipeline.dag_id} run {run['run_id']} for {pipeline.name}")
    except (pl.PipelineFileError, RunRequestError, AirflowApiError, AirflowUnreachable) as exc:
        raise _fail(str(exc)) from None
