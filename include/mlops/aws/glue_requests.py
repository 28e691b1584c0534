"""Requests the features stage makes to AWS Glue (job runs and the Data Catalog).

Pure functions of the pipeline config and the run; tests validate each against botocore's
service model, and the local stand-ins execute the same dicts (``StartJobRun`` by
:mod:`mlops.etl.local_glue`, the catalog tables by :mod:`mlops.catalog.duckdb_catalog`).

Names follow the infra stacks (``infra/cfn/data.yaml``): resources are called
``<ProjectName>-<Environment>-...``, the Glue database ``<ProjectName>_<Environment>``, and
the lake bucket ``<ProjectName>-lake-<Environment>[-<account>-<region>]``, so
:func:`stack_names` derives project and environment from ``aws.lake_bucket``. The Glue jobs
(``curate-features``, the Spark ETL; ``validate-features``, the Great Expectations suite) are
created by CloudFormation (the MWAA role may start them, not create them); the tasks upload the
current script to the job's ``ScriptLocation`` and its code bundle under ``glue/libs/`` (passed as
``--extra-py-files``; :mod:`mlops.etl.bundle`) at run time, then start a run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlops.config import PipelineConfig
from mlops.lake import Lake
from mlops.schema.curated import RAW_TABLES, curated_types
from mlops.schema.snapshots import run_key_safe

GLUE_VERSION = "5.0"  # Spark 3.5, Python 3.11: the script keeps to the Spark 3.5 API
FEATURES_TABLE = "features"
PREVIOUS_FEATURES_TABLE = "features_previous"
OFFLINE_STORE_DATASET = "feature-store"  # the feature groups' offline store, under the curated prefix
FEATURE_STORE_SCHEME = "featurestore://"  # --online/offline_store_uri featurestore://<region>: SageMaker Feature Store
SCRIPT_KEY = "glue/scripts/curate_features.py"  # data.yaml GlueScriptKey default
VALIDATION_SCRIPT_KEY = "glue/scripts/validate_features.py"  # data.yaml GlueValidationScriptKey default
GX_MODULE = "great_expectations==1.24.1"  # the validation job's --additional-python-modules (envs/glue pins it too)
VALIDATION_TIMEOUT_MINUTES = 30
#: Arguments Glue documents as internal ("Do not set"): Glue passes ``--JOB_NAME`` to the script itself.
RESERVED_ARGUMENTS = frozenset({"--JOB_NAME", "--conf", "--debug", "--mode"})
#: What each job's script does with the S3 URIs of its run arguments: ``read``, ``write`` (both joined by
#: ``+``) or ``code`` (imported); ``put-records``: PutRecord into the feature groups ``<--feature_group_prefix>-
#: <group>`` of the Feature Store the argument names. The IAM coverage test derives the job roles' needs from it.
ARGUMENT_ACCESS: dict[str, dict[str, str]] = {
    "curate-features": {
        "--raw_uri": "read",
        "--curated_uri": "read+write",
        "--staging_uri": "read+write",
        "--extra-py-files": "code",
        "--online_store_uri": "put-records",
        "--offline_store_uri": "offline-store",
    },
    "validate-features": {
        "--curated_uri": "read",
        "--report_uri": "write",
        "--staging_uri": "read+write",
        "--extra-py-files": "code",
    },
}
_BUCKET = re.compile(r"^(?P<project>[a-z][a-z0-9-]*?)-lake-(?P<env>[a-z0-9]+)(?:-|$)")

# Spark/Hive types of the DMS Parquet columns, per raw table (schema order, after the DMS columns).
RAW_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "customers": [
        ("customer_id", "bigint"), ("email", "string"), ("country", "string"), ("segment", "string"),
        ("birth_year", "smallint"), ("marketing_opt_in", "boolean"), ("signup_ts", "timestamp"),
        ("updated_at", "timestamp"),
    ],
    "products": [
        ("product_id", "bigint"), ("sku", "string"), ("category", "string"), ("unit_price", "decimal(10,2)"),
        ("weight_kg", "decimal(8,3)"), ("is_fragile", "boolean"), ("updated_at", "timestamp"),
    ],
    "orders": [
        ("order_id", "bigint"), ("customer_id", "bigint"), ("order_ts", "timestamp"), ("channel", "string"),
        ("payment_method", "string"), ("shipping_method", "string"), ("ship_country", "string"),
        ("promised_days", "smallint"), ("shipping_fee", "decimal(8,2)"), ("discount_code", "string"),
        ("status", "string"), ("updated_at", "timestamp"),
    ],
    "order_items": [
        ("order_item_id", "bigint"), ("order_id", "bigint"), ("product_id", "bigint"), ("quantity", "smallint"),
        ("unit_price", "decimal(10,2)"), ("discount_pct", "decimal(5,2)"), ("updated_at", "timestamp"),
    ],
}  # fmt: skip
#: The columns DMS adds. It writes the ``TimestampColumnName`` column as a STRING
#: (``yyyy-MM-dd HH:mm:ss.SSSSSS``, S3 target endpoint settings), so readers cast it to a timestamp.
DMS_COLUMN_TYPES = [("Op", "string"), ("dms_commit_ts", "string"), ("dms_change_seq", "string")]
PARQUET_SERDE = {
    "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    "Parameters": {"serialization.format": "1"},
}
PARQUET_IO = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
}


@dataclass(frozen=True)
class StackNames:
    """AWS resource names of one deployed environment (see the module docstring)."""

    project: str
    environment: str

    @property
    def glue_job(self) -> str:
        return f"{self.project}-{self.environment}-curate-features"

    @property
    def validation_job(self) -> str:
        return f"{self.project}-{self.environment}-validate-features"

    @property
    def database(self) -> str:
        return f"{self.project}_{self.environment}".replace("-", "_")

    @property
    def workgroup(self) -> str:
        return f"{self.project}-{self.environment}"


def stack_names(config: PipelineConfig) -> StackNames:
    """Project and environment of the infra stacks, from ``aws.lake_bucket``."""
    match = _BUCKET.match(config.aws.lake_bucket)
    if not match:
        raise ValueError(
            f"aws.lake_bucket {config.aws.lake_bucket!r} does not follow the infra naming "
            "<project>-lake-<environment>[-<account>-<region>]; set it to the LakeBucketName stack output"
        )
    return StackNames(project=match["project"], environment=match["env"])


def script_location(config: PipelineConfig) -> str:
    """Where the job's script lives on S3 (the CloudFormation job's Command.ScriptLocation)."""
    return f"s3://{config.aws.artifacts_bucket}/{SCRIPT_KEY}"


def job_arguments(lake: Lake, config: PipelineConfig, run_key: str, sample_fraction: float = 1.0) -> dict[str, str]:
    """The script's ``--KEY value`` arguments for one run (target-independent: keys under the lake root)."""
    if not 0.0 < float(sample_fraction) <= 1.0:
        raise ValueError(f"sample_fraction must be in (0, 1], got {sample_fraction}")
    return {
        "--raw_uri": lake.uri(config.lake.raw_prefix, config.source.schema_name),
        "--curated_uri": lake.curated(FEATURES_TABLE),
        "--staging_uri": lake.staging(config.lake.curated_prefix, FEATURES_TABLE),
        "--run_key": run_key_safe(run_key),
        "--sample_fraction": f"{float(sample_fraction):g}",
        # The feature groups' offline stores are the training table's source: the job resolves each group's
        # folder (DescribeFeatureGroup's ResolvedOutputS3Uri), appends the history records that are new or
        # changed there in SageMaker's layout, as the Feature Store Spark connector's offline-store batch
        # ingestion does, and builds the point-in-time joins from what the store then holds. SageMaker's own
        # replication of the online puts below lands in the same folder; the job keeps each record's latest
        # write, as SageMaker's offline store queries do. The local stand-in swaps in a file:// store root.
        "--offline_store_uri": f"{FEATURE_STORE_SCHEME}{config.aws.region}",
        "--offline_store_writer": "job",
        "--feature_group_prefix": f"{stack_names(config).project}-{stack_names(config).environment}",
        "--region": config.aws.region,
        # each entity's latest record into the online store (PutRecord from the job's executors); the local
        # stand-in swaps in its SQLite store's file:// URI
        "--online_store_uri": f"{FEATURE_STORE_SCHEME}{config.aws.region}",
    }


def checked_arguments(arguments: dict[str, str]) -> dict[str, str]:
    """``arguments`` unchanged, or ValueError naming an argument Glue reserves for itself."""
    reserved = sorted(set(arguments) & RESERVED_ARGUMENTS)
    if reserved:
        raise ValueError(f"job arguments {reserved} are reserved by AWS Glue (it sets --JOB_NAME itself); remove them")
    return arguments


def start_job_run_request(
    lake: Lake,
    config: PipelineConfig,
    run_key: str,
    code_uri: str,
    sample_fraction: float = 1.0,
    job_name: str | None = None,
) -> dict[str, Any]:
    """Glue StartJobRun for the features job, with its code bundle (``mlops.schema``) on the Python path.

    Glue passes ``--JOB_NAME`` to the script itself.
    """
    name = job_name or stack_names(config).glue_job
    arguments = job_arguments(lake, config, run_key, sample_fraction)
    arguments = checked_arguments({**arguments, "--extra-py-files": code_uri})
    return {"JobName": name, "Arguments": arguments, "Timeout": 60}


def job_connections(config: PipelineConfig) -> dict[str, Any]:
    """``{"Connections": ...}`` of a Glue job that runs in the private network (``aws.glue_connections``), or ``{}``.

    A NETWORK connection puts the job's workers in its subnet and security group.
    """
    names = config.aws.glue_connections
    return {"Connections": {"Connections": list(names)}} if names else {}


def create_job_request(config: PipelineConfig, role_arn: str, workers: int = 2) -> dict[str, Any]:
    """Glue CreateJob equal to the CloudFormation job (for accounts without the stack, and for parity tests)."""
    names = stack_names(config)
    return {
        "Name": names.glue_job,
        "Description": "PySpark job raw/dms (full load + CDC, Op column) -> curated features.",
        "Role": role_arn,
        "Command": {"Name": "glueetl", "ScriptLocation": script_location(config), "PythonVersion": "3"},
        "GlueVersion": GLUE_VERSION,
        "WorkerType": "G.1X",
        "NumberOfWorkers": workers,
        "Timeout": 60,
        "MaxRetries": 0,
        "ExecutionProperty": {"MaxConcurrentRuns": 1},
        "DefaultArguments": {
            "--job-language": "python",
            "--enable-metrics": "true",
            "--enable-glue-datacatalog": "true",
            "--job-bookmark-option": "job-bookmark-disable",
        },
        **job_connections(config),
    }


# ------------------------------------------------------------------------- the validation job


def validation_script_location(config: PipelineConfig) -> str:
    """Where the validation job's script lives on S3 (the CloudFormation job's Command.ScriptLocation)."""
    return f"s3://{config.aws.artifacts_bucket}/{VALIDATION_SCRIPT_KEY}"


def row_bounds(min_rows: int | str | None, max_rows: int | str | None) -> tuple[int | None, int | None]:
    """The suite's row-count bounds from Params (``None`` / empty = the suite's default); ValueError names the fix."""

    def parse(name: str, value: int | str | None, lowest: int) -> int | None:
        if value is None or str(value).strip() in ("", "None"):
            return None
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"{name} must be a whole number, got {value!r}; fix the {name} Param") from None
        if number < lowest:
            raise ValueError(f"{name} must be >= {lowest}, got {number}; fix the {name} Param")
        return number

    low, high = parse("min_rows", min_rows, 0), parse("max_rows", max_rows, 1)
    if low is not None and high is not None and low > high:
        raise ValueError(f"min_rows ({low}) is above max_rows ({high}); fix the Params")
    return low, high


def validation_job_arguments(
    lake: Lake,
    config: PipelineConfig,
    run_key: str,
    code_uri: str,
    min_rows: int | str | None = None,
    max_rows: int | str | None = None,
) -> dict[str, str]:
    """The validation script's ``--KEY value`` arguments for one run, with its code bundle on the Python path."""
    low, high = row_bounds(min_rows, max_rows)
    key = run_key_safe(run_key)
    arguments = {
        "--curated_uri": lake.curated(FEATURES_TABLE),
        "--report_uri": lake.reports("features", key),
        "--staging_uri": lake.staging(config.lake.reports_prefix, "features"),
        "--run_key": key,
        "--extra-py-files": code_uri,
    }
    for name, value in (("--min_rows", low), ("--max_rows", high)):
        if value is not None:
            arguments[name] = str(value)
    return arguments


def start_validation_job_run_request(
    lake: Lake,
    config: PipelineConfig,
    run_key: str,
    code_uri: str,
    min_rows: int | str | None = None,
    max_rows: int | str | None = None,
    job_name: str | None = None,
) -> dict[str, Any]:
    """Glue StartJobRun for the features validation job (GX on the current snapshot)."""
    name = job_name or stack_names(config).validation_job
    arguments = checked_arguments(validation_job_arguments(lake, config, run_key, code_uri, min_rows, max_rows))
    return {"JobName": name, "Arguments": arguments, "Timeout": VALIDATION_TIMEOUT_MINUTES}


def create_validation_job_request(config: PipelineConfig, role_arn: str, workers: int = 2) -> dict[str, Any]:
    """Glue CreateJob equal to the CloudFormation validation job (accounts without the stack, parity tests)."""
    return {
        "Name": stack_names(config).validation_job,
        "Description": "Great Expectations suite on the current curated snapshot -> validation.json + Data Docs.",
        "Role": role_arn,
        "Command": {"Name": "glueetl", "ScriptLocation": validation_script_location(config), "PythonVersion": "3"},
        "GlueVersion": GLUE_VERSION,
        "WorkerType": "G.1X",
        "NumberOfWorkers": workers,
        "Timeout": VALIDATION_TIMEOUT_MINUTES,
        "MaxRetries": 0,
        "ExecutionProperty": {"MaxConcurrentRuns": 1},
        "DefaultArguments": {
            "--job-language": "python",
            "--enable-metrics": "true",
            "--job-bookmark-option": "job-bookmark-disable",
            "--additional-python-modules": GX_MODULE,
        },
        **job_connections(config),
    }


# ----------------------------------------------------------------------------- the catalog


def _columns(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"Name": name.lower(), "Type": kind} for name, kind in pairs]


def raw_table_input(lake: Lake, config: PipelineConfig, table: str) -> dict[str, Any]:
    """TableInput of a raw DMS change-log table (``raw_<table>``: every full-load and CDC row)."""
    location = lake.raw_table(config.source.schema_name, table) + "/"
    return {
        "Name": f"raw_{table}",
        "Description": f"DMS full load + CDC rows of {config.source.schema_name}.{table} (Op I/U/D).",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE", "primary_key": RAW_TABLES[table]},
        "StorageDescriptor": {
            "Columns": _columns(DMS_COLUMN_TYPES + RAW_COLUMNS[table]),
            "Location": location,
            **PARQUET_IO,
            "SerdeInfo": PARQUET_SERDE,
        },
    }


def features_table_input(snapshot_uri: str, name: str = FEATURES_TABLE, snapshot_id: str = "") -> dict[str, Any]:
    """TableInput of the curated features at one snapshot, partitioned by ``split`` via partition projection.

    Projection means Athena needs no partitions registered: swapping the snapshot is one
    UpdateTable of ``Location`` and ``storage.location.template``.
    """
    location = snapshot_uri.rstrip("/") + "/"
    types = curated_types()
    return {
        "Name": name,
        "Description": f"Curated order features (snapshot {snapshot_id or 'unknown'}); key order_id, label label.",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "classification": "parquet",
            "EXTERNAL": "TRUE",
            "projection.enabled": "true",
            "projection.split.type": "enum",
            "projection.split.values": "train,validation,test",
            "storage.location.template": location + "split=${split}/",
            "mlops.snapshot_id": snapshot_id,
        },
        "PartitionKeys": [{"Name": "split", "Type": "string"}],
        "StorageDescriptor": {
            "Columns": _columns([(c, t) for c, t in types.items() if c != "split"]),
            "Location": location,
            **PARQUET_IO,
            "SerdeInfo": PARQUET_SERDE,
        },
    }


def create_table_request(database: str, table_input: dict[str, Any]) -> dict[str, Any]:
    """Glue CreateTable."""
    return {"DatabaseName": database, "TableInput": table_input}


def update_table_request(database: str, table_input: dict[str, Any]) -> dict[str, Any]:
    """Glue UpdateTable (same TableInput; no new version is kept beyond Glue's own history)."""
    return {"DatabaseName": database, "TableInput": table_input, "SkipArchive": True}


def catalog_table_inputs(lake: Lake, config: PipelineConfig, pointer: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every table the features stage registers: raw change logs, then current and previous features."""
    inputs = [raw_table_input(lake, config, table) for table in RAW_TABLES]
    if pointer:
        inputs.append(features_table_input(pointer["uri"], FEATURES_TABLE, pointer["snapshot_id"]))
        previous = pointer.get("previous") or pointer
        inputs.append(features_table_input(previous["uri"], PREVIOUS_FEATURES_TABLE, previous["snapshot_id"]))
        inputs.extend(offline_store_table_inputs(config, pointer.get("offline_store") or {}))
    return inputs


def offline_store_table_inputs(config: PipelineConfig, data_uris: dict[str, str]) -> list[dict[str, Any]]:
    """TableInputs of the feature groups' offline stores the features run wrote (group name -> data URI), as
    SageMaker's ``DataCatalogConfig`` names them; hourly ``year/month/day/hour`` partitions."""
    from mlops.aws.feature_store_requests import offline_table_name
    from mlops.schema.feature_groups import FEATURE_GROUPS

    inputs = []
    for group in (g for g in FEATURE_GROUPS if g.name in data_uris):
        kinds = {"Integral": "bigint", "Fractional": "double", "String": "string"}
        columns = [(d["FeatureName"], kinds[d["FeatureType"]]) for d in group.feature_definitions()]
        columns += [("write_time", "timestamp"), ("api_invocation_time", "timestamp"), ("is_deleted", "boolean")]
        inputs.append(
            {
                "Name": offline_table_name(config, group),
                "Description": f"Offline store of the {group.name} feature group (SageMaker Feature Store layout).",
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
                "PartitionKeys": [{"Name": n, "Type": "string"} for n in ("year", "month", "day", "hour")],
                "StorageDescriptor": {
                    "Columns": _columns(columns),
                    "Location": data_uris[group.name].rstrip("/") + "/",
                    **PARQUET_IO,
                    "SerdeInfo": PARQUET_SERDE,
                },
            }
        )
    return inputs
