"""Operators for the ingest stage: wait for / run DMS replication, then check it.

Two steps, each with an aws and a local operator taking the same arguments (DESIGN.md §1.1):

- ``dms_sync``: on aws the provider's :class:`DmsTaskBaseSensor` waits until the DMS task is
  replicating (``running``) or finished its full load (``stopped``); locally
  :class:`LocalDmsSyncOperator` runs the replicator for one batch, as the always-on DMS task
  would have in the meantime, and then applies the same status rule.
- ``replication_check``: both collect the same evidence (DescribeReplicationTasks,
  DescribeTableStatistics, CDC latency, fresh lake objects, source-vs-lake reconciliation)
  and apply the same pure checks from :mod:`mlops.replication.checks`.

Heavy imports (pyarrow, sqlalchemy, boto3 clients) happen inside ``execute``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.sensors.dms import DmsTaskBaseSensor
from airflow.sdk import BaseOperator

from mlops_airflow.assets import RAW_DATA

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops.replication.checks import CheckResult

READY_STATUSES: tuple[str, ...] = ("running", "stopped")
FAILED_STATUSES: tuple[str, ...] = ("failed", "failed-move", "deleting", "creating", "ready")


class DmsReplicationReadySensor(DmsTaskBaseSensor):
    """aws ``dms_sync``: wait (rescheduling) until the DMS task is running CDC or its full load stopped."""

    def __init__(
        self,
        *,
        replication_task_arn: str,
        target_statuses: Iterable[str] = READY_STATUSES,
        termination_statuses: Iterable[str] = FAILED_STATUSES,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(
            replication_task_arn=replication_task_arn,
            target_statuses=list(target_statuses),
            termination_statuses=list(termination_statuses),
            **kwargs,
        )


class LocalDmsSyncOperator(BaseOperator):
    """local ``dms_sync``: run one replication batch (full load first, then CDC) into the lake."""

    template_fields: Sequence[str] = ("replication_task_arn",)

    def __init__(
        self,
        *,
        replication_task_arn: str,
        target_statuses: Iterable[str] = READY_STATUSES,
        termination_statuses: Iterable[str] = FAILED_STATUSES,
        **kwargs: Any,
    ) -> None:
        for name in ("mode", "poke_interval", "timeout", "aws_conn_id", "region_name"):
            kwargs.pop(name, None)  # sensor/AWS arguments have no meaning for the local stand-in
        super().__init__(**kwargs)
        self.replication_task_arn = replication_task_arn
        self.target_statuses = tuple(target_statuses)
        self.termination_statuses = tuple(termination_statuses)

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_airflow.local_services import local_replicator

        replicator = local_replicator()
        if replicator.task_arn != self.replication_task_arn:
            raise ValueError(
                f"task {self.replication_task_arn} is not the local DMS task ({replicator.task_arn}); "
                "fix replication.task_id in include/pipeline.yaml"
            )
        result = replicator.sync(progress=_log_progress(self.log, "replicating"))
        task = replicator.status()["tasks"]["ReplicationTasks"][0]
        status = task["Status"]
        self.log.info("local DMS task %s: %s; batch: %s", task["ReplicationTaskIdentifier"], status, result)
        if status in self.termination_statuses or status not in self.target_statuses:
            raise RuntimeError(
                f"DMS task {task['ReplicationTaskIdentifier']} is {status!r} "
                f"(StopReason: {task.get('StopReason') or 'none'}); see `mlops status` and the task log"
            )
        return {"status": status, **_jsonable(result)}


class ReplicationCheckOperator(BaseOperator):
    """Fail unless replication is healthy and the lake reconciles with the source; emit RAW_DATA.

    Subclasses only collect evidence (:meth:`collect_evidence`); the checks are the same pure
    functions on both targets.
    """

    template_fields: Sequence[str] = (
        "replication_task_arn",
        "expected_tables",
        "max_cdc_lag_seconds",
        "require_fresh_objects",
    )

    def __init__(
        self,
        *,
        replication_task_arn: str,
        expected_tables: Sequence[str] | None = None,
        max_cdc_lag_seconds: float | str | None = None,
        require_fresh_objects: bool | str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [RAW_DATA])
        super().__init__(**kwargs)
        self.replication_task_arn = replication_task_arn
        self.expected_tables = expected_tables
        self.max_cdc_lag_seconds = max_cdc_lag_seconds
        self.require_fresh_objects = require_fresh_objects

    def collect_evidence(self, since: datetime | None) -> dict[str, Any]:
        """Return tasks, table_stats (DMS response shapes), cdc_lag_seconds and fresh_objects."""
        raise NotImplementedError

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.replication.checks import check_replication, format_results, raise_on_failures
        from mlops.replication.reconcile import reconcile
        from mlops_airflow.targets import lake, pipeline_config, source_engine

        config = pipeline_config()
        tables = list(self.expected_tables or config.replication.tables)
        max_lag = float(self.max_cdc_lag_seconds or config.replication.max_cdc_lag_seconds)
        require_fresh = _as_bool(self.require_fresh_objects, config.replication.require_fresh_objects)
        since = context.get("prev_start_date_success")
        evidence = self.collect_evidence(since)
        results: list[CheckResult] = check_replication(
            tasks_response=evidence["tasks"],
            table_stats_response=evidence["table_stats"],
            expected_tables=tables,
            max_cdc_lag_seconds=max_lag,
            cdc_lag_seconds=evidence["cdc_lag_seconds"],
            fresh_objects=evidence["fresh_objects"],
            require_fresh_objects=require_fresh,
        )
        results += reconcile(source_engine(config), lake(config), config.source.schema_name, tables)
        self.log.info("replication checks (fresh objects since %s):\n%s", since or "the beginning", format_results(results))
        raise_on_failures(results)
        extra = _asset_extra(results, evidence, lake(config).uri(config.lake.raw_prefix, config.source.schema_name))
        context["outlet_events"][RAW_DATA].extra = extra
        return extra


class LocalReplicationCheckOperator(ReplicationCheckOperator):
    """local ``replication_check``: evidence from the local DMS stand-in's status and the local lake."""

    def collect_evidence(self, since: datetime | None) -> dict[str, Any]:
        from mlops.replication.checks import count_fresh_objects
        from mlops_airflow.local_services import local_replicator
        from mlops_airflow.targets import lake, pipeline_config

        config = pipeline_config()
        status = local_replicator().status()
        raw_root = lake(config).uri(config.lake.raw_prefix, config.source.schema_name)
        return {
            "tasks": status["tasks"],
            "table_stats": status["table_statistics"],
            "cdc_lag_seconds": status["cdc_lag_seconds"],
            "fresh_objects": count_fresh_objects(raw_root, since),
        }


class AwsReplicationCheckOperator(ReplicationCheckOperator):
    """aws ``replication_check``: evidence from DMS and CloudWatch through the provider's hooks."""

    template_fields: Sequence[str] = (*ReplicationCheckOperator.template_fields, "aws_conn_id")

    def __init__(self, *, aws_conn_id: str | None = "aws_default", region_name: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def collect_evidence(self, since: datetime | None) -> dict[str, Any]:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
        from airflow.providers.amazon.aws.hooks.dms import DmsHook

        from mlops.aws import dms_requests
        from mlops.replication.checks import count_fresh_objects
        from mlops_airflow.targets import lake, pipeline_config

        config = pipeline_config()
        dms = DmsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).conn
        tasks = dms.describe_replication_tasks(**dms_requests.describe_replication_task_request(self.replication_task_arn))
        if not tasks.get("ReplicationTasks"):
            raise RuntimeError(f"DMS task {self.replication_task_arn} not found; check aws.dms_replication_task_arn")
        stats = _all_table_statistics(dms, self.replication_task_arn)
        lag = _cdc_latency(
            AwsBaseHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type="cloudwatch").conn,
            tasks["ReplicationTasks"][0],
        )
        raw_root = lake(config).uri(config.lake.raw_prefix, config.source.schema_name)
        return {"tasks": tasks, "table_stats": stats, "cdc_lag_seconds": lag, "fresh_objects": count_fresh_objects(raw_root, since)}


def _all_table_statistics(dms: Any, task_arn: str) -> dict[str, Any]:
    from mlops.aws.dms_requests import describe_table_statistics_request

    request = describe_table_statistics_request(task_arn)
    statistics: list[dict[str, Any]] = []
    while True:
        page = dms.describe_table_statistics(**request)
        statistics += page.get("TableStatistics", [])
        if not page.get("Marker"):
            return {"ReplicationTaskArn": task_arn, "TableStatistics": statistics}
        request = {**request, "Marker": page["Marker"]}


def _cdc_latency(cloudwatch: Any, task: dict[str, Any]) -> float | None:
    """Worst CDCLatencySource + CDCLatencyTarget over the last window; None when DMS reported none."""
    from mlops.aws.dms_requests import cdc_latency_request, task_identifier

    instance_arn = task.get("ReplicationInstanceArn", "")
    request = cdc_latency_request(
        replication_instance_id=task_identifier(instance_arn) if instance_arn else "",
        task_resource_id=task_identifier(task["ReplicationTaskArn"]),
        end=datetime.now(UTC),
    )
    series = cloudwatch.get_metric_data(**request)["MetricDataResults"]
    values = [max(s["Values"]) for s in series if s.get("Values")]
    return sum(values) if values else None


def _asset_extra(results: list[CheckResult], evidence: dict[str, Any], raw_uri: str) -> dict[str, Any]:
    rows = {r.table: int(r.value) for r in results if r.name == "reconcile_row_count" and r.table}
    return {
        "raw_uri": raw_uri,
        "rows": rows,
        "total_rows": sum(rows.values()),
        "cdc_lag_seconds": evidence["cdc_lag_seconds"],
        "fresh_objects": evidence["fresh_objects"],
        "task_status": evidence["tasks"]["ReplicationTasks"][0]["Status"],
    }


def _as_bool(value: bool | str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if value.strip().lower() in ("true", "1", "yes"):
        return True
    if value.strip().lower() in ("false", "0", "no"):
        return False
    raise ValueError(f"require_fresh_objects={value!r} is not a boolean; use true or false")


def _jsonable(result: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    data = asdict(result) if is_dataclass(result) else dict(result)
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}


def _log_progress(log: Any, what: str) -> Any:
    last = {"pct": -10}

    def report(done: int, total: int) -> None:
        pct = int(100 * done / total) if total else 100
        if pct >= last["pct"] + 10 or done == total:
            last["pct"] = pct
            log.info("%s: %d/%d rows (%d%%)", what, done, total, pct)

    return report
