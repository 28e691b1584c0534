"""Operators for the ingest stage: wait for / run DMS replication, then check it.

Two steps, each with an aws and a local operator taking the same arguments; what they do on each
target is told in the mlops_ingest DAG's doc_md (``dags/mlops_ingest.py``):

- ``dms_sync``: on aws the provider's :class:`DmsTaskBaseSensor`; locally
  :class:`LocalDmsSyncOperator` runs the replicator for one batch, then applies the same status rule.
- ``check_replication``: both collect the same evidence and apply the same pure checks from
  :mod:`mlops.replication.checks`; it never opens the source DB or reads a table.

Imports happen inside ``execute``; the aws path imports only boto3-level code.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from mlops_airflow.assets import RAW_DATA
from mlops_airflow.rendered import as_bool, as_float

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops.replication.checks import CheckResult

READY_STATUSES: tuple[str, ...] = ("running", "stopped")
FAILED_STATUSES: tuple[str, ...] = ("failed", "failed-move", "deleting", "creating", "ready")


class ReplicationCheckOperator(BaseOperator):
    """Fail unless replication is healthy and DMS validated the lake against the source; emit RAW_DATA.

    Subclasses only collect evidence (:meth:`collect_evidence`); the checks are the same pure
    functions on both targets.
    """

    template_fields: Sequence[str] = (
        "replication_task_arn",
        "expected_tables",
        "max_cdc_lag_seconds",
        "require_fresh_objects",
        "max_validation_pending_seconds",
    )

    def __init__(
        self,
        *,
        replication_task_arn: str,
        expected_tables: Sequence[str] | None = None,
        max_cdc_lag_seconds: float | str | None = None,
        require_fresh_objects: bool | str | None = None,
        max_validation_pending_seconds: float | str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [RAW_DATA])
        super().__init__(**kwargs)
        self.replication_task_arn = replication_task_arn
        self.expected_tables = expected_tables
        self.max_cdc_lag_seconds = max_cdc_lag_seconds
        self.require_fresh_objects = require_fresh_objects
        self.max_validation_pending_seconds = max_validation_pending_seconds

    def previous_check(self, context: Context, raw_uri: str) -> dict[str, Any]:
        """The XCom of the last successful check of this lake ({} on the first run).

        It says when the lake was last listed (``checked_at``), the changes DMS had applied per table
        (``applied_changes``) and since when tables await validation (``validation_pending_since``).
        """
        previous = context["ti"].xcom_pull(task_ids=self.task_id, include_prior_dates=True)
        candidates = previous if isinstance(previous, list) else [previous]
        checks = [
            item
            for item in candidates
            if isinstance(item, dict) and item.get("checked_at") and item.get("raw_uri") == raw_uri
        ]
        return max(checks, key=lambda item: datetime.fromisoformat(item["checked_at"]), default={})

    def collect_evidence(self, since: datetime | None) -> dict[str, Any]:
        """Return tasks, table_stats (DMS response shapes), cdc_lag_seconds and fresh_objects (per table)."""
        raise NotImplementedError

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.replication.checks import (
            check_replication,
            format_results,
            raise_on_failures,
            validation_pending_since,
        )
        from mlops_airflow.targets import lake, pipeline_config

        config = pipeline_config()
        tables = list(self.expected_tables or config.replication.tables)
        replication = config.replication
        max_lag = as_float(self.max_cdc_lag_seconds, float(replication.max_cdc_lag_seconds), "max_cdc_lag_seconds")
        require_fresh = as_bool(self.require_fresh_objects, replication.require_fresh_objects, "require_fresh_objects")
        max_pending = as_float(
            self.max_validation_pending_seconds,
            float(replication.max_validation_pending_seconds),
            "max_validation_pending_seconds",
        )
        raw_uri = lake(config).uri(config.lake.raw_prefix, config.source.schema_name)
        previous = self.previous_check(context, raw_uri)
        since = datetime.fromisoformat(previous["checked_at"]) if previous else None
        checked_at = datetime.now(UTC)
        evidence = self.collect_evidence(since)
        statistics = evidence["table_stats"].get("TableStatistics") or []
        pending_since = validation_pending_since(
            statistics, tables, previous.get("validation_pending_since") or {}, checked_at
        )
        results: list[CheckResult] = check_replication(
            tasks_response=evidence["tasks"],
            table_stats_response=evidence["table_stats"],
            expected_tables=tables,
            max_cdc_lag_seconds=max_lag,
            cdc_lag_seconds=evidence["cdc_lag_seconds"],
            fresh_objects=evidence["fresh_objects"],
            require_fresh_objects=require_fresh,
            max_validation_pending_seconds=max_pending,
            pending_since=pending_since,
            now=checked_at,
            previous_applied=previous.get("applied_changes") or {},
            since=since,
            quarantine=evidence.get("quarantine"),
            content=evidence.get("content", ()),
        )
        self.log.info(
            "replication checks (changes and lake objects since %s):\n%s",
            since or "the beginning",
            format_results(results),
        )
        raise_on_failures(results)
        extra = _asset_extra(statistics, tables, evidence, raw_uri)
        extra["validation_pending_since"] = {table: moment.isoformat() for table, moment in pending_since.items()}
        extra["checked_at"] = checked_at.isoformat()
        context["outlet_events"][RAW_DATA].extra = extra
        return extra


def _asset_extra(
    statistics: list[dict[str, Any]], tables: list[str], evidence: dict[str, Any], raw_uri: str
) -> dict[str, Any]:
    """Row counts (DMS's counters) and validation state per table, lag, applied changes, fresh objects, task status."""
    from mlops.replication.checks import replicated_rows
    from mlops.replication.source_changes import applied_changes

    rows = replicated_rows(statistics, tables)
    fresh = evidence["fresh_objects"] or {}
    validation = {
        row["TableName"]: {
            "state": row.get("ValidationState"),
            "pending": row.get("ValidationPendingRecords", 0),
            "failed": row.get("ValidationFailedRecords", 0),
            "suspended": row.get("ValidationSuspendedRecords", 0),
        }
        for row in statistics
    }
    return {
        "raw_uri": raw_uri,
        "rows": rows,
        "total_rows": sum(rows.values()),
        "validation": validation,
        "cdc_lag_seconds": evidence["cdc_lag_seconds"],
        "applied_changes": applied_changes(statistics, tables),
        "fresh_objects": sum(fresh.values()),
        "fresh_objects_by_table": dict(fresh),
        "task_status": evidence["tasks"]["ReplicationTasks"][0]["Status"],
    }


def jsonable(result: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    data = asdict(result) if is_dataclass(result) else dict(result)
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}


def log_progress(log: Any, what: str) -> Any:
    last = {"pct": -10}

    def report(done: int, total: int) -> None:
        pct = int(100 * done / total) if total else 100
        if pct >= last["pct"] + 10 or done == total:
            last["pct"] = pct
            log.info("%s: %d/%d rows (%d%%)", what, done, total, pct)

    return report
