"""Local stand-ins for the ingest stage's DMS steps (same arguments as the aws operators)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlops_airflow.operators.base import AWS_CONNECTION, SENSOR, LocalStandIn
from mlops_airflow.operators.replication import (
    FAILED_STATUSES,
    READY_STATUSES,
    ReplicationCheckOperator,
    jsonable,
    log_progress,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class LocalDmsSyncOperator(LocalStandIn):
    """local ``dms_sync``: the full load, or CDC batches until caught up (:meth:`LocalReplicator.sync_until_caught_up`).

    ``reload_tables`` (the DAG Param) first reloads those tables, as DMS's ReloadTables. The
    validation is the DMS stand-in's (:meth:`LocalReplicator.validate`): it compares the lake with
    the source and records the outcome in the task's DescribeTableStatistics.
    """

    template_fields: Sequence[str] = ("replication_task_arn", "reload_tables")
    ignored_provider_args = (*AWS_CONNECTION, *SENSOR)  # it replicates until caught up instead of waiting

    def __init__(
        self,
        *,
        replication_task_arn: str,
        target_statuses: Iterable[str] = READY_STATUSES,
        termination_statuses: Iterable[str] = FAILED_STATUSES,
        reload_tables: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.replication_task_arn = replication_task_arn
        self.target_statuses = tuple(target_statuses)
        self.termination_statuses = tuple(termination_statuses)
        self.reload_tables = reload_tables

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.local_stack import local_replicator
        from mlops.replication.checks import reload_tables_param
        from mlops_airflow.targets import pipeline_config

        config = pipeline_config()
        reload = reload_tables_param(self.reload_tables, config.replication.tables)
        replicator = local_replicator(config)
        if replicator.task_arn != self.replication_task_arn:
            raise ValueError(
                f"task {self.replication_task_arn} is not the local DMS task ({replicator.task_arn}); "
                "fix replication.task_id in include/pipeline.yaml"
            )
        if reload:
            self.log.info("reloading %s (DMS ReloadTables)", reload)
            replicator.reload(reload, progress=log_progress(self.log, "reloading"))
        result = replicator.sync_until_caught_up(progress=log_progress(self.log, "replicating"), report=self.log.info)
        task = replicator.status()["tasks"]["ReplicationTasks"][0]
        status = task["Status"]
        self.log.info("local DMS task %s: %s; batch: %s", task["ReplicationTaskIdentifier"], status, result)
        if status in self.termination_statuses or status not in self.target_statuses:
            raise RuntimeError(
                f"DMS task {task['ReplicationTaskIdentifier']} is {status!r} "
                f"(StopReason: {task.get('StopReason') or 'none'}); see `mlops status` and the task log"
            )
        return {"status": status, **jsonable(result)}


class LocalReplicationCheckOperator(ReplicationCheckOperator, LocalStandIn):
    """local ``check_replication``: evidence from the local DMS stand-in's status and the local lake.

    The status already holds the stand-in's data validation (run by ``dms_sync``); like the aws
    check, this one only reads it.
    """

    def collect_evidence(self, since: datetime | None) -> dict[str, Any]:
        from mlops.local_stack import local_dms_status
        from mlops.replication.content_local import run_locally
        from mlops.replication.lake_io import fresh_objects_by_table
        from mlops_airflow.targets import lake, pipeline_config

        config = pipeline_config()
        status = local_dms_status(config)
        raw_root = lake(config).uri(config.lake.raw_prefix, config.source.schema_name)
        return {
            "tasks": status["tasks"],
            "table_stats": status["table_statistics"],
            "cdc_lag_seconds": status["cdc_lag_seconds"],
            "fresh_objects": fresh_objects_by_table(raw_root, since),
            "quarantine": status["quarantine"],
            "content": run_locally(lake(config), config) if config.replication.content_checks else [],
        }
