"""Operators for the features stage (DESIGN.md §1.1: one class per step and target, same arguments).

======================  ===========================================  ==========================================
step                    aws                                          local
======================  ===========================================  ==========================================
``glue_etl``            ``AwsGlueFeaturesJobOperator`` (provider's   :class:`LocalGlueFeaturesJobOperator`
                        GlueJobOperator, Glue 5.0, deferrable; the   (the same script as a ``local[*]`` Spark
                        script is uploaded to the job's S3 script    subprocess, same ``--KEY value`` args)
                        location at run time)
``catalog_register``    :class:`GlueCatalogRegisterOperator`         :class:`LocalCatalogRegisterOperator`
                        (Glue CreateTable / UpdateTable)             (the same TableInputs as DuckDB views)
``athena_eda``          ``AwsAthenaEdaQueryOperator`` (provider's    :class:`LocalAthenaEdaQueryOperator`
                        AthenaOperator, deferrable)                  (sqlglot -> DuckDB, CSV like Athena)
``eda_report``          :class:`FeaturesEdaReportOperator`           the same class (reads the result CSVs)
``validate_features``   :class:`ValidateFeaturesOperator`            the same class (GX on pandas)
======================  ===========================================  ==========================================

Every class takes the same keyword-only arguments on both targets, only stores them in
``__init__``, and returns a JSON-serialisable description (the XCom). The aws subclasses of
provider operators are built on first attribute access (module ``__getattr__``), so a local
run never imports the provider's Glue or Athena modules. Requests come from
:mod:`mlops.aws.glue_requests` / :mod:`mlops.aws.athena_requests`; heavy libraries are
imported inside ``execute``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from mlops_airflow.assets import VALIDATED_FEATURES

if TYPE_CHECKING:
    from airflow.sdk import Context

AWS_ONLY_ARGS = ("aws_conn_id", "region_name", "verify", "botocore_config", "deferrable", "waiter_delay",
                 "waiter_max_attempts", "sleep_time", "max_polling_attempts")  # fmt: skip
EDA_QUERY_TASK_ID = "eda_query"


def _pop_aws_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Accept the aws operators' connection/polling args on the local classes too (same signatures)."""
    return {name: kwargs.pop(name) for name in AWS_ONLY_ARGS if name in kwargs}


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _fraction(value: Any) -> float:
    return float(value) if value not in (None, "", "None") else 1.0


def _skip_if(skip: Any, what: str) -> None:
    if _truthy(skip):
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"{what} skipped (skip_eda param)")


def _job_request(run_key: str, sample_fraction: Any) -> dict[str, Any]:
    from mlops.aws.glue_requests import start_job_run_request
    from mlops_airflow.targets import lake, pipeline_config

    return start_job_run_request(lake(), pipeline_config(), run_key, _fraction(sample_fraction))


def _query_request(query_name: str, run_key: str) -> dict[str, Any]:
    from mlops.aws.athena_requests import start_query_execution_request
    from mlops_airflow.targets import lake, pipeline_config

    return start_query_execution_request(lake(), pipeline_config(), query_name, run_key)


def _s3_client(aws_args: dict[str, Any]) -> Callable[[], Any]:
    """A zero-argument factory of the provider's S3 client, called only when an ``s3://`` URI is touched."""

    def client() -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=aws_args.get("aws_conn_id", "aws_default")).get_conn()

    return client


def _lake_files(aws_args: dict[str, Any]) -> Any:
    """Pointer reads and writes: plain file I/O on ``file://``, the provider's S3 client on ``s3://``."""
    from mlops.etl.build_features import LakeFiles

    return LakeFiles(_s3_client(aws_args))


def _curated_uri() -> str:
    from mlops.aws.glue_requests import FEATURES_TABLE
    from mlops_airflow.targets import lake

    return lake().curated(FEATURES_TABLE)


# --------------------------------------------------------------------------------- glue_etl


class LocalGlueFeaturesJobOperator(BaseOperator):
    """Run the features Glue job's StartJobRun request on local Spark (a subprocess, like Glue runs it)."""

    template_fields: Sequence[str] = ("run_key", "sample_fraction")
    ui_color = "#ededed"

    def __init__(self, *, run_key: str, sample_fraction: float | str = 1.0, **kwargs: Any) -> None:
        self.aws_args = _pop_aws_args(kwargs)
        super().__init__(**kwargs)
        self.run_key = run_key
        self.sample_fraction = sample_fraction

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.etl import build_features
        from mlops.etl.local_glue import run_job_locally

        request = _job_request(self.run_key, self.sample_fraction)
        self.log.info("StartJobRun %s with %s", request["JobName"], request["Arguments"])
        response = run_job_locally(request, Path(build_features.__file__), log=self.log.info)
        result = response["Result"] or {}
        return {
            "job_name": request["JobName"],
            "job_run_id": response["JobRun"]["Id"],
            "state": response["JobRun"]["JobRunState"],
            "snapshot_id": result.get("snapshot_id"),
            "snapshot_uri": result.get("uri"),
            "rows": result.get("rows"),
            "splits": result.get("splits"),
        }


# ------------------------------------------------------------------------- catalog_register


class _CatalogRegisterOperator(BaseOperator):
    """Register the raw change-log tables and the current/previous features snapshots in the catalog."""

    template_fields: Sequence[str] = ("database",)
    ui_color = "#e8f4fd"

    def __init__(self, *, database: str | None = None, **kwargs: Any) -> None:
        self.aws_args = _pop_aws_args(kwargs)
        super().__init__(**kwargs)
        self.database = database

    def table_inputs(self) -> tuple[str, list[dict[str, Any]], dict[str, Any] | None]:
        from mlops.aws.glue_requests import catalog_table_inputs, stack_names
        from mlops.etl.build_features import read_current
        from mlops_airflow.targets import lake, pipeline_config

        config = pipeline_config()
        pointer = read_current(_curated_uri(), _lake_files(self.aws_args))
        database = self.database or stack_names(config).database
        return database, catalog_table_inputs(lake(), config, pointer), pointer


class LocalCatalogRegisterOperator(_CatalogRegisterOperator):
    """Apply the Glue TableInputs to the local DuckDB catalog."""

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.catalog.duckdb_catalog import apply_table_inputs, local_catalog_path

        database, inputs, pointer = self.table_inputs()
        result = apply_table_inputs(local_catalog_path(), database, inputs)
        self.log.info(
            "catalog %s: registered %s, skipped (no data yet) %s", database, result["registered"], result["skipped"]
        )
        return {**result, "catalog": str(local_catalog_path()), "snapshot_id": (pointer or {}).get("snapshot_id")}


class GlueCatalogRegisterOperator(_CatalogRegisterOperator):
    """Create or update the same TableInputs in the Glue Data Catalog (explicit tables, no crawler)."""

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook

        from mlops.aws.glue_requests import create_table_request, update_table_request

        database, inputs, pointer = self.table_inputs()
        glue = GlueCatalogHook(aws_conn_id=self.aws_args.get("aws_conn_id", "aws_default")).get_conn()
        created, updated = [], []
        for table_input in inputs:
            try:
                glue.get_table(DatabaseName=database, Name=table_input["Name"])
            except glue.exceptions.EntityNotFoundException:
                glue.create_table(**create_table_request(database, table_input))
                created.append(table_input["Name"])
            else:
                glue.update_table(**update_table_request(database, table_input))
                updated.append(table_input["Name"])
        self.log.info("Glue database %s: created %s, updated %s", database, created, updated)
        return {
            "database": database,
            "created": created,
            "updated": updated,
            "snapshot_id": (pointer or {}).get("snapshot_id"),
        }


# ------------------------------------------------------------------------------ athena_eda


class LocalAthenaEdaQueryOperator(BaseOperator):
    """Execute one EDA query's StartQueryExecution request with DuckDB; the CSV lands like Athena's."""

    template_fields: Sequence[str] = ("query_name", "run_key", "skip")
    ui_color = "#fdf2e9"

    def __init__(self, *, query_name: str, run_key: str, skip: bool | str = False, **kwargs: Any) -> None:
        self.aws_args = _pop_aws_args(kwargs)
        super().__init__(**kwargs)
        self.query_name = query_name
        self.run_key = run_key
        self.skip = skip

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.catalog.duckdb_catalog import local_catalog_path
        from mlops.eda.runner import execute_locally

        _skip_if(self.skip, f"EDA query {self.query_name}")
        request = _query_request(self.query_name, self.run_key)
        self.log.info("StartQueryExecution %s:\n%s", self.query_name, request["QueryString"])
        execution = execute_locally(request, local_catalog_path())["QueryExecution"]
        self.log.info("results: %s", execution["ResultConfiguration"]["OutputLocation"])
        return {
            "query_name": self.query_name,
            "query_execution_id": execution["QueryExecutionId"],
            "output_uri": execution["ResultConfiguration"]["OutputLocation"],
        }


# ----------------------------------------------------------------------------- eda_report


class FeaturesEdaReportOperator(BaseOperator):
    """Render the HTML EDA report from the EDA queries' result CSVs (both targets: file:// or s3://)."""

    template_fields: Sequence[str] = ("run_key", "skip")
    ui_color = "#fdf2e9"

    def __init__(
        self, *, run_key: str, query_task_id: str = EDA_QUERY_TASK_ID, skip: bool | str = False, **kwargs: Any
    ) -> None:
        self.aws_args = _pop_aws_args(kwargs)
        super().__init__(**kwargs)
        self.run_key = run_key
        self.query_task_id = query_task_id
        self.skip = skip

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.eda.report import build_report
        from mlops.etl.build_features import read_current, run_key_safe
        from mlops_airflow.targets import lake

        _skip_if(self.skip, "EDA report")
        described = context["ti"].xcom_pull(task_ids=self.query_task_id) or []
        described = [described] if isinstance(described, dict) else list(described)
        csv_uris = {d["query_name"]: d["output_uri"] for d in described if d}
        pointer = read_current(_curated_uri(), _lake_files(self.aws_args)) or {}
        report_uri = lake().reports("features", run_key_safe(self.run_key), "eda.html")
        meta = {
            "run_key": self.run_key,
            "snapshot_id": pointer.get("snapshot_id"),
            "rows": pointer.get("rows"),
            "splits": pointer.get("splits"),
            "previous": (pointer.get("previous") or {}).get("snapshot_id"),
        }
        summary = build_report(csv_uris, report_uri, meta, s3=_s3_client(self.aws_args))
        self.log.info("EDA report: %s", report_uri)
        return summary


# ------------------------------------------------------------------------ validate_features


class ValidateFeaturesOperator(BaseOperator):
    """The gate: GX suite on the current snapshot; emits VALIDATED_FEATURES with counts in its extra."""

    template_fields: Sequence[str] = ("run_key", "min_rows", "max_rows")
    ui_color = "#e9f7ef"

    def __init__(
        self, *, run_key: str, min_rows: int | str | None = None, max_rows: int | str | None = None, **kwargs: Any
    ) -> None:
        self.aws_args = _pop_aws_args(kwargs)
        kwargs.setdefault("outlets", [VALIDATED_FEATURES])
        super().__init__(**kwargs)
        self.run_key = run_key
        self.min_rows = min_rows
        self.max_rows = max_rows

    def bounds(self) -> Any:
        from mlops.validation.features_suite import SuiteBounds

        default = SuiteBounds()
        return SuiteBounds(
            min_rows=int(self.min_rows) if self.min_rows not in (None, "", "None") else default.min_rows,
            max_rows=int(self.max_rows) if self.max_rows not in (None, "", "None") else default.max_rows,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.etl.build_features import run_key_safe
        from mlops.validation.features_gate import run_gate
        from mlops_airflow.targets import lake

        docs_uri = lake().reports("features", run_key_safe(self.run_key), "data_docs")
        extra = run_gate(_curated_uri(), docs_uri, self.run_key, self.bounds(), log=self.log.info)
        context["outlet_events"][VALIDATED_FEATURES].extra = extra
        return extra


# ------------------------------------------------------------------- aws provider subclasses


def _build_aws_classes() -> dict[str, type]:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.amazon.aws.operators.athena import AthenaOperator
    from airflow.providers.amazon.aws.operators.glue import GlueJobOperator

    class AwsGlueFeaturesJobOperator(GlueJobOperator):
        """Start the CloudFormation-defined features Glue job (Glue 5.0) with this run's arguments; deferrable.

        The script in this repository is uploaded to the job's ScriptLocation first, so the job
        always runs the code this DAG was deployed with.
        """

        template_fields: Sequence[str] = (*GlueJobOperator.template_fields, "run_key", "sample_fraction")

        def __init__(self, *, run_key: str, sample_fraction: float | str = 1.0, **kwargs: Any) -> None:
            kwargs.setdefault("deferrable", True)
            super().__init__(**kwargs)
            self.run_key = run_key
            self.sample_fraction = sample_fraction

        def _prepare(self) -> dict[str, Any]:
            request = _job_request(self.run_key, self.sample_fraction)
            self.job_name = request["JobName"]
            self.script_args = request["Arguments"]
            self.run_job_kwargs = {"Timeout": request["Timeout"]}
            return request

        def execute(self, context: Context) -> Any:
            from mlops.aws.glue_requests import SCRIPT_KEY
            from mlops.etl import build_features
            from mlops_airflow.targets import pipeline_config

            self._prepare()
            S3Hook(aws_conn_id=self.aws_conn_id).load_file(
                build_features.__file__, SCRIPT_KEY, bucket_name=pipeline_config().aws.artifacts_bucket, replace=True
            )
            return self._describe(super().execute(context))

        def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
            self._prepare()
            return self._describe(super().execute_complete(context, event))

        def _describe(self, job_run_id: str | None) -> dict[str, Any]:
            return {
                "job_name": self.job_name,
                "job_run_id": job_run_id,
                "state": "SUCCEEDED",
                "curated_uri": _curated_uri(),
            }

    class AwsAthenaEdaQueryOperator(AthenaOperator):
        """Run one EDA query on Athena (engine v3, Trino dialect); deferrable."""

        template_fields: Sequence[str] = (*AthenaOperator.template_fields, "query_name", "run_key", "skip")

        def __init__(self, *, query_name: str, run_key: str, skip: bool | str = False, **kwargs: Any) -> None:
            kwargs.setdefault("deferrable", True)
            kwargs.setdefault("query", "")
            super().__init__(**kwargs)
            self.query_name = query_name
            self.run_key = run_key
            self.skip = skip

        def _prepare(self) -> dict[str, Any]:
            request = _query_request(self.query_name, self.run_key)
            self.query = request["QueryString"]
            self.database = request["QueryExecutionContext"]["Database"]
            self.catalog = request["QueryExecutionContext"]["Catalog"]
            self.output_location = request["ResultConfiguration"]["OutputLocation"]
            self.client_request_token = request["ClientRequestToken"]
            self.workgroup = request["WorkGroup"]
            return request

        def execute(self, context: Context) -> Any:
            _skip_if(self.skip, f"EDA query {self.query_name}")
            self._prepare()
            return self._describe(super().execute(context))

        def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
            self._prepare()
            return self._describe(super().execute_complete(context, event))

        def _describe(self, query_execution_id: str | None) -> dict[str, Any]:
            return {
                "query_name": self.query_name,
                "query_execution_id": query_execution_id,
                "output_uri": f"{self.output_location}{query_execution_id}.csv",
            }

    return {cls.__name__: cls for cls in (AwsGlueFeaturesJobOperator, AwsAthenaEdaQueryOperator)}


AWS_CLASS_NAMES = ("AwsGlueFeaturesJobOperator", "AwsAthenaEdaQueryOperator")
_AWS_CLASSES: dict[str, type] = {}


def __getattr__(name: str) -> type:
    if name in AWS_CLASS_NAMES:
        if not _AWS_CLASSES:
            _AWS_CLASSES.update(_build_aws_classes())
        return _AWS_CLASSES[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
