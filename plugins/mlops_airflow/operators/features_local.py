"""Local stand-ins of the features stage: the same requests, run on this machine.

The Glue jobs run as subprocesses of the glue runtime (:mod:`mlops.etl.local_glue`) with their code
bundles published under ``<MLOPS_HOME>/artifacts/glue/libs/`` (the local artifacts bucket), Athena
queries on DuckDB, catalog tables as DuckDB views. Stand-in libraries are imported inside ``execute``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_airflow.operators.base import ATHENA_QUERY, AWS_CONNECTION, DEFERRAL, GLUE_JOB, LocalStandIn
from mlops_airflow.operators.features import (
    BuildFeaturesStep,
    EdaQueryStep,
    RegisterCatalogStep,
    ValidateFeaturesStep,
    skip_if,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


def local_artifacts() -> Path:
    """The local artifacts bucket (``<MLOPS_HOME>/artifacts``)."""
    from mlops.config import mlops_home

    return mlops_home() / "artifacts"


class LocalGlueFeaturesJobOperator(BuildFeaturesStep, LocalStandIn):
    """local ``build_features``: the job's StartJobRun on local Spark (a subprocess, as Glue runs the script)."""

    ignored_provider_args = (*AWS_CONNECTION, *DEFERRAL, *GLUE_JOB)

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.aws.glue_requests import OFFLINE_STORE_DATASET
        from mlops.etl.bundle import FEATURES_SCRIPT, features_bundle, publish_locally
        from mlops.etl.local_glue import run_job_locally
        from mlops.feature_store import local_online_store
        from mlops_airflow.targets import lake

        request = self.request(publish_locally(features_bundle(), local_artifacts()))
        # SageMaker Feature Store's stores (the request's featurestore://<region>) stand in locally: the online
        # store is a SQLite file; the offline store is the groups' S3Uri in the local lake (curated/feature-store),
        # where the job creates each group's <group>-<created> folder on its first run
        request["Arguments"]["--online_store_uri"] = local_online_store().as_uri()
        request["Arguments"]["--offline_store_uri"] = lake().curated(OFFLINE_STORE_DATASET)
        self.log.info("StartJobRun %s with %s", request["JobName"], request["Arguments"])
        response = run_job_locally(request, FEATURES_SCRIPT, log=self.log.info)
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


class LocalCatalogRegisterOperator(RegisterCatalogStep, LocalStandIn):
    """local ``register_catalog``: the same Glue TableInputs as views of the local DuckDB catalog."""

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.catalog.duckdb_catalog import apply_table_inputs, local_catalog_path

        database, inputs, pointer = self.table_inputs()
        result = apply_table_inputs(local_catalog_path(), database, inputs)
        self.log.info(
            "catalog %s: registered %s, skipped (no data yet) %s", database, result["registered"], result["skipped"]
        )
        return {**result, "catalog": str(local_catalog_path()), "snapshot_id": (pointer or {}).get("snapshot_id")}


class LocalAthenaEdaQueryOperator(EdaQueryStep, LocalStandIn):
    """local ``eda_query``: the query's StartQueryExecution on DuckDB; the result CSV lands where Athena puts it."""

    ignored_provider_args = (*AWS_CONNECTION, *DEFERRAL, *ATHENA_QUERY)

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.catalog.duckdb_catalog import local_catalog_path
        from mlops.eda.runner import execute_locally

        skip_if(self.skip, f"EDA query {self.query_name}")
        request = self.request()
        self.log.info("StartQueryExecution %s:\n%s", self.query_name, request["QueryString"])
        execution = execute_locally(request, local_catalog_path())["QueryExecution"]
        self.log.info("results: %s", execution["ResultConfiguration"]["OutputLocation"])
        return self.describe(execution["QueryExecutionId"], execution["ResultConfiguration"]["OutputLocation"])


class LocalValidateFeaturesOperator(ValidateFeaturesStep, LocalStandIn):
    """local ``validate_features``: the validation job's StartJobRun through the local Glue stand-in, then the gate."""

    ignored_provider_args = (*AWS_CONNECTION, *DEFERRAL, *GLUE_JOB)

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.etl.bundle import local_uri, publish_locally
        from mlops.etl.local_glue import run_job_locally
        from mlops.validation.bundle import SCRIPT, code_bundle

        bundle = code_bundle()
        request = self.request(local_uri(bundle, local_artifacts()))  # validates the Params before writing
        publish_locally(bundle, local_artifacts())
        self.log.info("StartJobRun %s with %s", request["JobName"], request["Arguments"])
        run_job_locally(request, SCRIPT, log=self.log.info)
        return self.gate(context)
