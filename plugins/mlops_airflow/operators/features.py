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
``eda_report``          :class:`FeaturesEdaReportOperator`           the same class (reads the result CSVs;
                                                                     SVG charts, no pandas/matplotlib)
``validate_features``   ``AwsValidateFeaturesJobOperator``           :class:`LocalValidateFeaturesOperator`
                        (provider's GlueJobOperator on the           (the same StartJobRun through the local
                        validation job: GX on Glue 5.0, deferrable)  Glue stand-in, GX in the glue runtime)
======================  ===========================================  ==========================================

Every class takes the same keyword-only arguments on both targets, only stores them in
``__init__``, and returns a JSON-serialisable description (the XCom). The aws subclasses of
provider operators are built on first attribute access (module ``__getattr__``), so a local
run never imports the provider's Glue or Athena modules. Requests come from
:mod:`mlops.aws.glue_requests` / :mod:`mlops.aws.athena_requests`.

Nothing heavy runs in the task process: Spark and Great Expectations run in Glue jobs (locally,
as subprocesses of the glue runtime); on the worker the tasks read only small objects (the
curated pointer, the EDA result CSVs, the validation job's ``validation.json``) with plain file
I/O on ``file://`` and the provider's S3 client on ``s3://``. Local stand-ins import their
stand-in libraries (DuckDB) inside ``execute``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from mlops.validation.outcome import FIX_HINT, ValidationFailedError
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


class FeatureValidationError(AirflowFailException, ValidationFailedError):
    """The gate failed: fail the task without retries (the same snapshot fails the same way)."""


def _validation_request(run_key: str, min_rows: Any, max_rows: Any, code_uri: str) -> dict[str, Any]:
    """The validation job's StartJobRun; bad row-bound Params fail the task at once (a retry cannot fix them)."""
    from mlops.aws.glue_requests import start_validation_job_run_request
    from mlops_airflow.targets import lake, pipeline_config

    try:
        return start_validation_job_run_request(lake(), pipeline_config(), run_key, code_uri, min_rows, max_rows)
    except ValueError as bad:
        raise AirflowFailException(str(bad)) from None


def _report_uri(run_key: str) -> str:
    from mlops.etl.build_features import run_key_safe
    from mlops_airflow.targets import lake

    return lake().reports("features", run_key_safe(run_key))


def _gate(run_key: str, aws_args: dict[str, Any], context: Context, log: Callable[[str], Any]) -> dict[str, Any]:
    """Read the validation job's result; fail naming each broken expectation, or emit VALIDATED_FEATURES."""
    from mlops.validation.features_gate import run_gate

    try:
        extra = run_gate(_curated_uri(), _report_uri(run_key), run_key, _lake_files(aws_args), log=log)
    except ValidationFailedError as failed:
        raise FeatureValidationError(failed.failures, failed.summary, hint=FIX_HINT) from None
    context["outlet_events"][VALIDATED_FEATURES].extra = extra
    return extra


class LocalValidateFeaturesOperator(BaseOperator):
    """The gate: run the validation Glue job's StartJobRun locally (GX in the glue runtime), then gate on its result.

    The code bundle is published under ``<MLOPS_HOME>/artifacts/glue/libs/`` (the local artifacts
    bucket) and passed as ``--extra-py-files``, as on Glue. Emits VALIDATED_FEATURES with counts.
    """

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

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.config import mlops_home
        from mlops.etl.local_glue import run_job_locally
        from mlops.training import lake_io
        from mlops.validation.bundle import SCRIPT, code_bundle

        data, key = code_bundle()
        bundle = (mlops_home() / "artifacts").resolve() / key
        request = _validation_request(self.run_key, self.min_rows, self.max_rows, bundle.as_uri())
        if not bundle.exists():
            lake_io.write_bytes(bundle.as_uri(), data)  # atomic: a temporary file, then a rename
        self.log.info("StartJobRun %s with %s", request["JobName"], request["Arguments"])
        run_job_locally(request, SCRIPT, log=self.log.info)
        return _gate(self.run_key, self.aws_args, context, self.log.info)


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

    class AwsValidateFeaturesJobOperator(GlueJobOperator):
        """The gate on aws: the CloudFormation validation Glue job (Glue 5.0, GX) on the current snapshot; deferrable.

        Before the run, the job's script is uploaded to its ScriptLocation and the code bundle to
        ``glue/libs/<sha16>.zip`` in the artifacts bucket (``--extra-py-files``). After it, the
        worker reads only the job's small ``validation.json``: it fails naming each broken
        expectation, or writes the validated pointer and emits VALIDATED_FEATURES.
        """

        template_fields: Sequence[str] = (*GlueJobOperator.template_fields, "run_key", "min_rows", "max_rows")

        def __init__(
            self, *, run_key: str, min_rows: int | str | None = None, max_rows: int | str | None = None, **kwargs: Any
        ) -> None:
            kwargs.setdefault("deferrable", True)
            kwargs.setdefault("outlets", [VALIDATED_FEATURES])
            super().__init__(**kwargs)
            self.run_key = run_key
            self.min_rows = min_rows
            self.max_rows = max_rows

        def _prepare(self, code_uri: str) -> dict[str, Any]:
            request = _validation_request(self.run_key, self.min_rows, self.max_rows, code_uri)
            self.job_name = request["JobName"]
            self.script_args = request["Arguments"]
            self.run_job_kwargs = {"Timeout": request["Timeout"]}
            return request

        def _publish(self, bucket: str, key: str, data: bytes) -> None:
            """Upload the script and (once per content hash) the code bundle to the artifacts bucket."""
            from mlops.aws.glue_requests import VALIDATION_SCRIPT_KEY
            from mlops.validation.bundle import SCRIPT

            s3 = S3Hook(aws_conn_id=self.aws_conn_id)
            if not s3.check_for_key(key, bucket_name=bucket):
                s3.load_bytes(data, key, bucket_name=bucket, replace=True)
            s3.load_file(str(SCRIPT), VALIDATION_SCRIPT_KEY, bucket_name=bucket, replace=True)

        def execute(self, context: Context) -> Any:
            from mlops.validation.bundle import code_bundle
            from mlops_airflow.targets import pipeline_config

            bucket, (data, key) = pipeline_config().aws.artifacts_bucket, code_bundle()
            self._prepare(f"s3://{bucket}/{key}")  # validates the Params before anything is written
            self._publish(bucket, key, data)
            self.log.info("StartJobRun %s with %s", self.job_name, self.script_args)
            super().execute(context)  # deferrable: raises TaskDeferred here, and execute_complete gates
            return _gate(self.run_key, {"aws_conn_id": self.aws_conn_id}, context, self.log.info)

        def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
            super().execute_complete(context, event)
            return _gate(self.run_key, {"aws_conn_id": self.aws_conn_id}, context, self.log.info)

    return {
        cls.__name__: cls
        for cls in (AwsGlueFeaturesJobOperator, AwsAthenaEdaQueryOperator, AwsValidateFeaturesJobOperator)
    }


AWS_CLASS_NAMES = ("AwsGlueFeaturesJobOperator", "AwsAthenaEdaQueryOperator", "AwsValidateFeaturesJobOperator")
_AWS_CLASSES: dict[str, type] = {}


def __getattr__(name: str) -> type:
    if name in AWS_CLASS_NAMES:
        if not _AWS_CLASSES:
            _AWS_CLASSES.update(_build_aws_classes())
        return _AWS_CLASSES[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
