"""`mlops`: the command line for the local operations a person needs.

    mlops generate --orders 100000     create and fill the source DB
    mlops activity --steps 5           inserts, updates and deletes over time (CDC work)
    mlops replicate                    the local DMS task: full load first, then CDC until caught up
    mlops replicate --reload [TABLE]   reload tables (all when none named), as DMS ReloadTables
    mlops status                       DMS task, table statistics, CDC lag, source counts
    mlops models list                  versions in the local model registry
    mlops models approve 3             approve version 3 (PendingManualApproval -> Approved)
    mlops models reject 3              reject version 3
    mlops endpoints list               local endpoints, status and invocation URLs
    mlops endpoints show NAME          URL, variants, a live sample request/response, replay commands
    mlops endpoints invoke NAME BODY   one request through boto3 sagemaker-runtime
    mlops endpoints start|delete NAME  restart a stopped endpoint / stop and forget it
    mlops runs start DAG --conf FILE   start a run through the run API path (Params validated first)
    mlops runs status DAG RUN_ID       the run's state
    mlops runs apply pipelines/        start a run for each pipeline file that changed

Later stages add their commands here. Run it as `.venv/bin/mlops` or `python -m mlops.cli`.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mlops.runs import cli as runs_cli

app = typer.Typer(help="Local operations of the MLOps pipeline.", no_args_is_help=True, add_completion=False)
console = Console()


@contextmanager
def progress_bar(description: str):
    """A rich progress bar; yields a ``(done, total)`` callback for long work."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


def _engine(url: str | None) -> Any:
    from mlops.config import load_config
    from mlops.source.db import make_engine

    config = load_config()
    return make_engine(url or config.source.url)


@app.command()
def generate(
    orders: Annotated[int | None, typer.Option(help="Orders to generate (default: source.orders)")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: source.seed)")] = None,
    covariate_drift: Annotated[float, typer.Option(min=0.0, max=1.0, help="Covariate shift strength")] = 0.0,
    concept_drift: Annotated[float, typer.Option(min=0.0, max=1.0, help="Concept shift strength")] = 0.0,
    append: Annotated[bool, typer.Option(help="Append after existing orders instead of starting empty")] = False,
    url: Annotated[str | None, typer.Option(help="Source DB URL (default: source.url or local SQLite)")] = None,
) -> None:
    """Create the source schema and fill it with deterministic e-commerce data."""
    from mlops.config import load_config
    from mlops.source.db import reset_schema, table_counts
    from mlops.source.generator import DriftSpec, check_seed, check_size, parse_start
    from mlops.source.generator import generate as run_generate

    config = load_config()
    orders = config.source.orders if orders is None else orders
    seed = config.source.seed if seed is None else seed
    try:  # every argument is checked before anything in the source DB changes
        check_size(orders, config.source.days)
        check_seed(seed)
        parse_start(config.source.start_date)
        drifting = covariate_drift or concept_drift
        drift = DriftSpec(covariate=covariate_drift, concept=concept_drift) if drifting else None
        engine = _engine(url)
        if not append:
            reset_schema(engine)
        with progress_bar("generating orders") as progress:
            result = run_generate(
                engine,
                orders=orders,
                seed=seed,
                start_date=config.source.start_date,
                days=config.source.days,
                drift=drift,
                progress=progress,
                append=append,
            )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    _print_counts("source DB", table_counts(engine))
    console.print(f"generated in {result.seconds:.1f}s")
    if not append and _replicated_before(config):
        console.print(
            "[yellow]the lake still holds the replicated old source, and its change capture is gone with the "
            "old tables:[/yellow] reload it with `mlops replicate --reload`"
        )


def _replicated_before(config: Any) -> bool:
    """True when the local DMS task has loaded this home's source before."""
    from mlops.config import mlops_home
    from mlops.replication.status import StatusStore, utc_now

    store = StatusStore(mlops_home() / "dms", config.replication.task_id)
    return store.path.exists() and store.load(list(config.replication.tables), utc_now()).full_load_done


@app.command()
def activity(
    steps: Annotated[int, typer.Option(min=1, help="Simulated time steps of OLTP activity")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed")] = 7,
    url: Annotated[str | None, typer.Option(help="Source DB URL")] = None,
) -> None:
    """Insert, update and delete source rows over time so CDC has work to do."""
    from mlops.source.activity import simulate_activity

    try:
        with progress_bar("simulating activity") as progress:
            result = simulate_activity(_engine(url), seed=seed, steps=steps, progress=progress)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print_json(json.dumps(_plain(result)))


@app.command()
def replicate(
    tables: Annotated[list[str] | None, typer.Argument(help="Tables to reload (with --reload; none = all)")] = None,
    reload: Annotated[bool, typer.Option("--reload", help="Reload the tables first (DMS ReloadTables)")] = False,
    one_batch: Annotated[bool, typer.Option(help="Apply one CDC batch instead of catching up")] = False,
    deadline: Annotated[
        int | None,
        typer.Option(min=1, help="Seconds to catch up before failing (default: replication.catch_up_deadline_seconds)"),
    ] = None,
) -> None:
    """Run the local DMS task: the full load if it has not run, else CDC until caught up; then validate.

    With --reload, reload the named tables (every table when none is named) from one snapshot first;
    the lake changes only once every table is reloaded, so a failed reload leaves the previous snapshot.
    """
    from mlops.local_stack import local_replicator

    try:  # every argument is checked before the task or the lake changes
        if tables and not reload:
            names = " ".join(tables)
            raise ValueError(f"tables {tables} are only for --reload; run `mlops replicate --reload {names}`")
        replicator = local_replicator()
        targets = replicator.reload_targets(tables) if reload else []
        with progress_bar("replicating") as progress:
            if targets:
                replicator.reload(targets, progress=progress)
            if one_batch:
                result = replicator.sync(progress=progress)
            else:
                result = replicator.sync_until_caught_up(deadline_seconds=deadline, progress=progress,
                                                         report=console.print)  # fmt: skip
    except (ValueError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    console.print_json(json.dumps(_plain(result)))


@app.command()
def status() -> None:
    """Show the local DMS task, its table statistics and validation, CDC lag and source row counts."""
    from mlops.local_stack import local_replicator, source_engine
    from mlops.source.db import table_counts

    replicator = local_replicator()
    state = replicator.status()
    task = state["tasks"]["ReplicationTasks"][0]
    stats = task.get("ReplicationTaskStats", {})
    console.print(
        f"[bold]{task['ReplicationTaskIdentifier']}[/bold] status={task['Status']} "
        f"full-load={stats.get('FullLoadProgressPercent', 0)}% cdc-lag={state['cdc_lag_seconds']}s"
    )
    table = Table(
        "table", "state", "full load rows", "inserts", "updates", "deletes", "last update",
        "validation", "pending", "failed", "suspended",
    )  # fmt: skip
    rows = state["table_statistics"]["TableStatistics"]
    for row in rows:
        table.add_row(
            row["TableName"],
            row["TableState"],
            str(row["FullLoadRows"]),
            str(row["Inserts"]),
            str(row["Updates"]),
            str(row["Deletes"]),
            str(row.get("LastUpdateTime", "")),
            row["ValidationState"],
            str(row["ValidationPendingRecords"]),
            str(row["ValidationFailedRecords"]),
            str(row["ValidationSuspendedRecords"]),
        )
    console.print(table)
    for row in rows:
        if row.get("ValidationStateDetails"):
            console.print(f"[bold]{row['TableName']}[/bold] validation: {row['ValidationStateDetails']}")
    for name, entry in state["quarantine"].items():
        if entry["open"]:
            console.print(f"[bold]{name}[/bold] quarantine: {entry['open']} open ({entry['total']} in all); "
                          + "; ".join(entry["examples"]))  # fmt: skip
    console.print(f"quarantine (dead-letter table): {replicator.quarantine_uri()}")
    _print_counts("source DB", table_counts(source_engine()))


models = typer.Typer(help="The local model registry (SageMaker ModelPackage semantics).", no_args_is_help=True)
app.add_typer(models, name="models")


def _group(group: str | None) -> str:
    from mlops.config import load_config

    return group or load_config().registry.model_package_group


@models.command("list")
def models_list(
    group: Annotated[
        str | None, typer.Option(help="Model package group (default: registry.model_package_group)")
    ] = None,
) -> None:
    """List the versions of a model package group, newest first."""
    from mlops.registry import list_packages

    table = Table("version", "status", "mAP", "model data", "created", title=_group(group))
    for package in list_packages(_group(group)):
        score = "" if package["map"] is None else f"{package['map']:.4f}"
        table.add_row(
            str(package["version"]),
            package["approval_status"],
            score,
            package["model_data_url"] or "",
            package["created"],
        )
    console.print(table)


@models.command("approve")
def models_approve(
    version: Annotated[int, typer.Argument(help="Version to approve")],
    group: Annotated[str | None, typer.Option(help="Model package group")] = None,
    note: Annotated[str | None, typer.Option(help="Approval description")] = None,
) -> None:
    """Approve a model version, so mlops_deploy may deploy it."""
    from mlops.registry import RegistryError, approve

    try:
        package = approve(_group(group), version, description=note)
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    console.print(f"{_group(group)} v{version}: {package['approval_status']}")


@models.command("reject")
def models_reject(
    version: Annotated[int, typer.Argument(help="Version to reject")],
    group: Annotated[str | None, typer.Option(help="Model package group")] = None,
    note: Annotated[str | None, typer.Option(help="Rejection reason")] = None,
) -> None:
    """Reject a model version; it is never deployed."""
    from mlops.registry import RegistryError, reject

    try:
        package = reject(_group(group), version, description=note)
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    console.print(f"{_group(group)} v{version}: {package['approval_status']}")


endpoints = typer.Typer(help="Local SageMaker-compatible endpoints.", no_args_is_help=True)
app.add_typer(endpoints, name="endpoints")
app.add_typer(runs_cli.runs, name="runs")


@endpoints.command("list")
def endpoints_list() -> None:
    """List local endpoints with their status and invocation URL."""
    from mlops.serving.runtime import list_endpoints

    table = Table("endpoint", "status", "invocation URL")
    for endpoint in list_endpoints():
        table.add_row(endpoint["EndpointName"], endpoint["EndpointStatus"], endpoint.get("LocalInvocationUrl", ""))
    console.print(table)


@endpoints.command("show")
def endpoints_show(name: Annotated[str, typer.Argument(help="Endpoint name")]) -> None:
    """Show an endpoint's URL and variants, send a sample request, and print replay commands."""
    from mlops.serving.runtime import endpoint_summary

    console.print_json(json.dumps(_plain(endpoint_summary(name)), default=str))


@endpoints.command("invoke")
def endpoints_invoke(
    name: Annotated[str, typer.Argument(help="Endpoint name")],
    body: Annotated[str, typer.Argument(help="Request body, e.g. '{\"instances\": [{...}]}' or a CSV row")],
    content_type: Annotated[str, typer.Option(help="application/json or text/csv")] = "application/json",
    target_variant: Annotated[str | None, typer.Option(help="Send to this production variant")] = None,
) -> None:
    """Invoke an endpoint through boto3's sagemaker-runtime client."""
    from mlops.serving.runtime import invoke_endpoint

    try:
        response = invoke_endpoint(name, body, content_type=content_type, target_variant=target_variant)
    except Exception as exc:  # botocore answers bad input with a ClientError naming the field
        raise _fail(str(exc)) from None
    console.print_json(json.dumps(_plain(response), default=str))


@endpoints.command("start")
def endpoints_start(name: Annotated[str, typer.Argument(help="Endpoint name")]) -> None:
    """Restart an endpoint stopped by `make stop`, on its current endpoint config and port."""
    from mlops.serving.runtime import start_endpoint

    console.print(start_endpoint(name).get("LocalInvocationUrl", name))


@endpoints.command("delete")
def endpoints_delete(name: Annotated[str, typer.Argument(help="Endpoint name")]) -> None:
    """Stop an endpoint's processes and forget it; its captured data stays in the lake."""
    from mlops.serving.runtime import delete_endpoint

    delete_endpoint(name)
    console.print(f"deleted {name}")


def _print_counts(title: str, counts: dict[str, int]) -> None:
    table = Table("table", "rows", title=title)
    for name, rows in counts.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)


def _plain(value: Any) -> Any:
    from dataclasses import asdict, is_dataclass
    from datetime import datetime

    if is_dataclass(value):
        value = asdict(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.isoformat() if isinstance(value, datetime) else value


if __name__ == "__main__":
    app()
