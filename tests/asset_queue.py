"""The metadata DB's asset-triggered run queue (``AssetDagRunQueue``) and pause flags, for tests that check
whether a run's Asset events schedule a downstream DAG as the scheduler would."""

from __future__ import annotations


def set_paused(dag_id: str, paused: bool) -> None:
    """Pause or unpause ``dag_id`` in the metadata DB (only unpaused consumers get queued runs)."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == dag_id).values(is_paused=paused))


def queued_dag_ids() -> set[str]:
    """The DAGs an Asset event has queued a run of, waiting for the scheduler."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return set(session.scalars(select(AssetDagRunQueue.target_dag_id)))


def clear_queue(dag_id: str | None = None) -> None:
    """Take every queued run (of ``dag_id`` only, when given) off the queue."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    query = delete(AssetDagRunQueue)
    if dag_id is not None:
        query = query.where(AssetDagRunQueue.target_dag_id == dag_id)
    with create_session() as session:
        session.execute(query)
