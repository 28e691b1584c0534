"""What DAG runs published, read inside the API server with Airflow's own models.

XComs come from the ``xcom`` table through :class:`~airflow.models.xcom.XComModel` (decoded with
its ``deserialize_value``, as the REST API does); Asset events from ``asset_event`` by their
source run. Read-only; the caller passes the request's session and checks access first.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_airflow.ui.discovery import TaskOutput

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

RECENT_XCOM_ROWS = 400


@dataclass(frozen=True)
class RunInfo:
    """The few facts of a DAG run a page shows."""

    dag_id: str
    run_id: str
    state: str
    run_after: str


def run_info(session: Session, dag_id: str, run_id: str) -> RunInfo | None:
    """The run, or None when there is no such run."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    if run is None:
        return None
    return RunInfo(run.dag_id, run.run_id, str(run.state), str(run.run_after))


def _xcom_output(row: Any) -> TaskOutput:
    from airflow.models.xcom import XComModel

    return TaskOutput(row.task_id, row.map_index, row.key, XComModel.deserialize_value(row))


def run_outputs(session: Session, dag_id: str, run_id: str) -> list[TaskOutput]:
    """Every XCom of the run (in the order written), then the extras of the Asset events it emitted.
    A task returning a dict from ``@task`` has each key as an XCom of its own besides ``return_value``."""
    from airflow.models.asset import AssetEvent
    from airflow.models.xcom import XComModel
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    rows = session.scalars(
        select(XComModel)
        .where(XComModel.dag_id == dag_id, XComModel.run_id == run_id)
        .order_by(XComModel.timestamp, XComModel.task_id, XComModel.map_index)
    )
    outputs = [_xcom_output(row) for row in rows]
    events = session.scalars(
        select(AssetEvent)
        .options(joinedload(AssetEvent.asset))
        .where(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == run_id)
        .order_by(AssetEvent.timestamp)
    )
    for event in events:
        name = event.asset.name if event.asset is not None else f"asset {event.asset_id}"
        task_id = event.source_task_id or "(asset event)"
        outputs.append(TaskOutput(task_id, event.source_map_index or -1, f"asset event {name}", event.extra or {}))
    return outputs


def recent_outputs(
    session: Session, dag_ids: Collection[str], task_id: str | None = None, rows: int = RECENT_XCOM_ROWS
) -> dict[tuple[str, str], list[TaskOutput]]:
    """The newest XComs of ``dag_ids`` (optionally of one task), grouped by (dag_id, run_id), newest run first."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    if not dag_ids:
        return {}
    query = select(XComModel).where(XComModel.dag_id.in_(list(dag_ids)))
    if task_id is not None:
        query = query.where(XComModel.task_id == task_id)
    grouped: dict[tuple[str, str], list[TaskOutput]] = {}
    for row in session.scalars(query.order_by(XComModel.timestamp.desc()).limit(rows)):
        grouped.setdefault((row.dag_id, row.run_id), []).insert(0, _xcom_output(row))
    return grouped
