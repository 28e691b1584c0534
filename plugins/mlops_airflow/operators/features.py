"""The features stage's step classes: arguments, requests and checks both targets share.

What each step does on each target is told once, in the mlops_features DAG's doc_md
(``dags/mlops_features.py``). The aws classes are in :mod:`.features_aws`, the local stand-ins in
:mod:`.features_local`; ``eda_report`` is one class for both. Requests come from
:mod:`mlops.aws.glue_requests` / :mod:`mlops.aws.athena_requests`. On the worker the tasks read only
small objects (the curated pointer, the EDA result CSVs, the validation job's ``validation.json``)
through :class:`mlops.schema.snapshots.LakeFiles`: file I/O on ``file://``, the S3 client that
:meth:`FeaturesStep.s3_client` gives on ``s3://``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mlops.validation.outcome import FIX_HINT, ValidationFailedError
from mlops_airflow.assets import VALIDATED_FEATURES
from mlops_airflow.operators.base import StepOperator
from mlops_airflow.rendered import as_bool, as_float

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlops.schema.snapshots import LakeFiles

EDA_QUERY_TASK_ID = "eda_query"


class FeatureValidationError(AirflowFailException, ValidationFailedError):
    """The gate failed: fail the task without retries (the same snapshot fails the same way)."""


def curated_uri() -> str:
    """The curated features table's URI in the current target's lake."""
    from mlops.aws.glue_requests import FEATURES_TABLE
    from mlops_airflow.targets import lake

    return lake().curated(FEATURES_TABLE)


def skip_if(skip: Any, what: str) -> None:
    """Skip the task when the ``skip_eda`` Param is set."""
    if as_bool(skip, name="skip"):
        raise AirflowSkipException(f"{what} skipped (skip_eda param)")


class FeaturesStep(StepOperator):
    """A features step: reads and writes small lake objects through the target's S3 client."""

    s3_client: Callable[[], Any]  # LocalStandIn's (none: a file:// lake) or S3ThroughHook's (the provider hook's)

    def lake_files(self) -> LakeFiles:
        from mlops.schema.snapshots import LakeFiles

        return LakeFiles(self.s3_client)


class BuildFeaturesStep(FeaturesStep):
    """``build_features``: one run of the features Glue job (the ETL script) for this run."""

    template_fields: Sequence[str] = ("run_key", "sample_fraction")

    def __init__(self, *, run_key: str, sample_fraction: float | str = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_key = run_key
        self.sample_fraction = sample_fraction

    def request(self, code_uri: str) -> dict[str, Any]:
        """The job's StartJobRun, with its code bundle (the ``mlops.schema`` package) at ``code_uri``."""
        from mlops.aws.glue_requests import start_job_run_request
        from mlops_airflow.targets import lake, pipeline_config

        fraction = as_float(self.sample_fraction, 1.0, name="sample_fraction")
        return start_job_run_request(lake(), pipeline_config(), self.run_key, code_uri, fraction)


class RegisterCatalogStep(FeaturesStep):
    """``register_catalog``: the raw change-log tables and the current/previous snapshots as catalog tables."""

    template_fields: Sequence[str] = ("database",)
    ui_color = "#e8f4fd"

    def __init__(self, *, database: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.database = database

    def table_inputs(self) -> tuple[str, list[dict[str, Any]], dict[str, Any] | None]:
        """(database, Glue TableInputs, the curated pointer or None before the first snapshot)."""
        from mlops.aws.glue_requests import catalog_table_inputs, stack_names
        from mlops.schema.snapshots import read_current
        from mlops_airflow.targets import lake, pipeline_config

        config = pipeline_config()
        pointer = read_current(curated_uri(), self.lake_files())
        database = self.database or stack_names(config).database
        return database, catalog_table_inputs(lake(), config, pointer), pointer


class EdaQueryStep(FeaturesStep):
    """``eda_query``: one EDA query of this run (mapped over :data:`mlops.eda.EDA_QUERIES`)."""

    template_fields: Sequence[str] = ("query_name", "run_key", "skip")
    ui_color = "#fdf2e9"

    def __init__(self, *, query_name: str, run_key: str, skip: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.query_name, self.run_key, self.skip = query_name, run_key, skip

    def request(self) -> dict[str, Any]:
        """The query's StartQueryExecution."""
        from mlops.aws.athena_requests import start_query_execution_request
        from mlops_airflow.targets import lake, pipeline_config

        return start_query_execution_request(lake(), pipeline_config(), self.query_name, self.run_key)

    def describe(self, query_execution_id: str | None, output_uri: str) -> dict[str, Any]:
        """The XCom: which query ran and where its result CSV is."""
        return {"query_name": self.query_name, "query_execution_id": query_execution_id, "output_uri": output_uri}


class FeaturesEdaReportOperator(FeaturesStep):
    """``eda_report`` on both targets: the HTML EDA report from the EDA queries' result CSVs (file:// or s3://).

    ``aws_conn_id`` is the connection of the S3 client when the lake is on S3.
    """

    template_fields: Sequence[str] = ("run_key", "skip")
    ui_color = "#fdf2e9"

    def __init__(
        self,
        *,
        run_key: str,
        query_task_id: str = EDA_QUERY_TASK_ID,
        skip: bool | str = False,
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.run_key, self.query_task_id, self.skip, self.aws_conn_id = run_key, query_task_id, skip, aws_conn_id

    def s3_client(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id).get_conn()

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.eda.report import build_report
        from mlops.schema.snapshots import read_current, run_key_safe
        from mlops_airflow.targets import lake

        skip_if(self.skip, "EDA report")
        described = context["ti"].xcom_pull(task_ids=self.query_task_id) or []
        described = [described] if isinstance(described, dict) else list(described)
        csv_uris = {d["query_name"]: d["output_uri"] for d in described if d}
        pointer = read_current(curated_uri(), self.lake_files()) or {}
        report_uri = lake().reports("features", run_key_safe(self.run_key), "eda.html")
        meta = {
            "run_key": self.run_key,
            "snapshot_id": pointer.get("snapshot_id"),
            "rows": pointer.get("rows"),
            "splits": pointer.get("splits"),
            "previous": (pointer.get("previous") or {}).get("snapshot_id"),
        }
        summary = build_report(csv_uris, report_uri, meta, s3=self.s3_client)
        self.log.info("EDA report: %s", report_uri)
        return summary


class ValidateFeaturesStep(FeaturesStep):
    """``validate_features``, the gate: the validation Glue job on the current snapshot, then its verdict.

    Emits VALIDATED_FEATURES with counts when the suite passed; fails (no retry) naming each broken
    expectation when it did not.
    """

    template_fields: Sequence[str] = ("run_key", "min_rows", "max_rows")
    ui_color = "#e9f7ef"

    def __init__(
        self, *, run_key: str, min_rows: int | str | None = None, max_rows: int | str | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("outlets", [VALIDATED_FEATURES])
        super().__init__(**kwargs)
        self.run_key, self.min_rows, self.max_rows = run_key, min_rows, max_rows

    def request(self, code_uri: str) -> dict[str, Any]:
        """The validation job's StartJobRun; bad row-bound Params fail the task at once (a retry cannot fix them)."""
        from mlops.aws.glue_requests import start_validation_job_run_request
        from mlops_airflow.targets import lake, pipeline_config

        try:
            return start_validation_job_run_request(
                lake(), pipeline_config(), self.run_key, code_uri, self.min_rows, self.max_rows
            )
        except ValueError as bad:
            raise AirflowFailException(str(bad)) from None

    def gate(self, context: Context) -> dict[str, Any]:
        """Read the validation job's result; fail naming each broken expectation, or emit VALIDATED_FEATURES."""
        from mlops.schema.snapshots import run_key_safe
        from mlops.validation.features_gate import run_gate
        from mlops_airflow.targets import lake

        report_uri = lake().reports("features", run_key_safe(self.run_key))
        try:
            extra = run_gate(curated_uri(), report_uri, self.run_key, self.lake_files(), log=self.log.info)
        except ValidationFailedError as failed:
            raise FeatureValidationError(failed.failures, failed.summary, hint=FIX_HINT) from None
        context["outlet_events"][VALIDATED_FEATURES].extra = extra
        return extra
