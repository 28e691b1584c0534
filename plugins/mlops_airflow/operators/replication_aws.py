"""The ingest stage's DMS steps on the aws target, on the Amazon provider's sensor and hooks.

The check reads DMS and CloudWatch responses and an S3 listing through boto3 clients: no
source-DB connection and no table read on the MWAA worker (DMS validates the data itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.sensors.dms import DmsTaskBaseSensor

from mlops_airflow.operators.base import StepOperator
from mlops_airflow.operators.replication import FAILED_STATUSES, READY_STATUSES, ReplicationCheckOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class DmsReplicationReadySensor(StepOperator, DmsTaskBaseSensor):
    """aws ``dms_sync``: wait (rescheduling) until the DMS task is running CDC or its full load stopped.

    It pokes every ``aws.dms_poll_interval_seconds`` and gives up after ``aws.dms_max_attempts`` pokes.

    With ``reload_tables`` (the DAG Param) its first poke calls DMS ReloadTables for them, and it
    waits until those tables are loaded again.
    """

    provider_defaults = {
        "target_statuses": list(READY_STATUSES),
        "termination_statuses": list(FAILED_STATUSES),
        "mode": "reschedule",
    }

    template_fields: Sequence[str] = (*DmsTaskBaseSensor.template_fields, "reload_tables")

    def __init__(self, *, reload_tables: str | Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reload_tables = reload_tables

    def _reloading(self) -> list[str]:
        from mlops.replication.checks import reload_tables_param
        from mlops_airflow.targets import pipeline_config

        return reload_tables_param(self.reload_tables, pipeline_config().replication.tables)

    def apply_timing(self) -> None:
        """Poke interval and timeout from ``aws.dms_poll_interval_seconds`` x ``aws.dms_max_attempts`` (read at run
        time; the DAG's values are parse-time placeholders)."""
        from mlops_airflow.targets import pipeline_config

        aws = pipeline_config().aws
        self.poke_interval = aws.dms_poll_interval_seconds
        self.timeout = aws.dms_poll_interval_seconds * aws.dms_max_attempts

    def execute(self, context: Context) -> Any:
        self.apply_timing()
        tables = self._reloading()
        if tables and context["ti"].get_first_reschedule_date(context) is None:
            from mlops.aws.dms_requests import reload_tables_request
            from mlops_airflow.targets import pipeline_config

            schema = pipeline_config().source.schema_name
            self.log.info("DMS ReloadTables %s", tables)
            self.hook.conn.reload_tables(**reload_tables_request(self.replication_task_arn, schema, tables))
        return super().execute(context)

    def poke(self, context: Context) -> bool:
        if not super().poke(context):
            return False
        tables = self._reloading()
        if not tables:
            return True
        from mlops.replication.checks import reload_progress

        stats = _all_table_statistics(self.hook.conn, self.replication_task_arn)["TableStatistics"]
        loading, errored = reload_progress(stats, tables)
        if errored:
            raise RuntimeError(f"DMS could not reload {errored} (TableState 'Table error'); see the task log")
        self.log.info("tables still reloading: %s", loading or "none")
        return not loading


class AwsReplicationCheckOperator(ReplicationCheckOperator):
    """aws ``check_replication``: evidence from DMS and CloudWatch through the provider's hooks."""

    template_fields: Sequence[str] = (*ReplicationCheckOperator.template_fields, "aws_conn_id")

    def __init__(self, *, aws_conn_id: str | None = "aws_default", region_name: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def collect_evidence(self, since: datetime | None) -> dict[str, Any]:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
        from airflow.providers.amazon.aws.hooks.dms import DmsHook
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from mlops.aws import dms_requests
        from mlops.replication.fresh_objects import fresh_s3_objects_by_table
        from mlops_airflow.targets import lake, pipeline_config

        config = pipeline_config()
        dms = DmsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).conn
        tasks = dms.describe_replication_tasks(
            **dms_requests.describe_replication_task_request(self.replication_task_arn)
        )
        if not tasks.get("ReplicationTasks"):
            raise RuntimeError(f"DMS task {self.replication_task_arn} not found; check aws.dms_replication_task_arn")
        stats = _all_table_statistics(dms, self.replication_task_arn)
        lag = _cdc_latency(
            AwsBaseHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type="cloudwatch").conn,
            tasks["ReplicationTasks"][0],
        )
        raw_root = lake(config).uri(config.lake.raw_prefix, config.source.schema_name)
        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        return {
            "tasks": tasks,
            "table_stats": stats,
            "cdc_lag_seconds": lag,
            "fresh_objects": fresh_s3_objects_by_table(s3, raw_root, since),
            "quarantine": None,  # DMS logs records it cannot apply (DataErrorPolicy LOG_ERROR); validation fails them
            "content": self._content(config, s3) if config.replication.content_checks else [],
        }

    def _content(self, config: Any, s3: Any) -> list[Any]:
        """The lake content checks, run by Athena (this worker starts the queries and reads one-row CSVs)."""
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        from mlops.replication.content import run_on_athena
        from mlops_airflow.targets import lake

        def client(kind: str) -> Any:
            return AwsBaseHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type=kind).conn

        return run_on_athena(client("athena"), s3, client("glue"), lake(config), config)


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
