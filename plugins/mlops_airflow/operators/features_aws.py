"""The features stage on the aws target: the Amazon provider's Glue and Athena operators, Glue Data Catalog.

Each class is its step's shared class (:mod:`.features`) plus a provider operator; the DAG's doc_md
says what each step does. Before a Glue job runs, the task uploads the job's script to the job's
``ScriptLocation`` and its code bundle to ``glue/libs/<name>-<sha16>.zip`` in the artifacts bucket
(once per content hash), passed as ``--extra-py-files``: the job always runs the code this DAG was
deployed with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator

from mlops_airflow.operators.aws_hooks import S3ThroughHook
from mlops_airflow.operators.features import (
    BuildFeaturesStep,
    EdaQueryStep,
    RegisterCatalogStep,
    ValidateFeaturesStep,
    curated_uri,
    skip_if,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class PublishedGlueJob(GlueJobOperator, S3ThroughHook):
    """The provider's GlueJobOperator on a CloudFormation-defined job whose script and bundle the task publishes."""

    def bundle_uri(self, bundle: tuple[bytes, str]) -> str:
        """Where the code bundle is (or will be) in the artifacts bucket."""
        from mlops_airflow.targets import pipeline_config

        return f"s3://{pipeline_config().aws.artifacts_bucket}/{bundle[1]}"

    def use_request(self, request: dict[str, Any]) -> None:
        """Run this StartJobRun: the job, its arguments, its timeout."""
        self.job_name = request["JobName"]
        self.script_args = request["Arguments"]
        self.run_job_kwargs = {"Timeout": request["Timeout"]}

    def publish(self, script: Path, script_key: str, bundle: tuple[bytes, str]) -> None:
        """Upload the script to the job's ScriptLocation and (once per content hash) the code bundle."""
        from mlops_airflow.targets import pipeline_config

        bucket, (data, key) = pipeline_config().aws.artifacts_bucket, bundle
        s3 = S3Hook(aws_conn_id=self.aws_conn_id)
        if not s3.check_for_key(key, bucket_name=bucket):
            s3.load_bytes(data, key, bucket_name=bucket, replace=True)
        s3.load_file(str(script), script_key, bucket_name=bucket, replace=True)


class AwsGlueFeaturesJobOperator(BuildFeaturesStep, PublishedGlueJob):
    """aws ``build_features``: the features Glue job (Glue 5.0), deferrable."""

    template_fields: Sequence[str] = (*GlueJobOperator.template_fields, *BuildFeaturesStep.template_fields)
    provider_defaults = {"deferrable": True}

    def _prepare(self) -> dict[str, Any]:
        from mlops.etl.bundle import features_bundle

        request = self.request(self.bundle_uri(features_bundle()))
        self.use_request(request)
        return request

    def execute(self, context: Context) -> Any:
        from mlops.aws.glue_requests import SCRIPT_KEY
        from mlops.etl.bundle import FEATURES_SCRIPT, features_bundle

        self._prepare()  # validates the Params before anything is written
        self.publish(FEATURES_SCRIPT, SCRIPT_KEY, features_bundle())
        return self._describe(super().execute(context))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        self._prepare()
        return self._describe(super().execute_complete(context, event))

    def _describe(self, job_run_id: str | None) -> dict[str, Any]:
        return {"job_name": self.job_name, "job_run_id": job_run_id, "state": "SUCCEEDED", "curated_uri": curated_uri()}


class AwsCatalogRegisterOperator(RegisterCatalogStep, AwsBaseOperator[GlueCatalogHook], S3ThroughHook):
    """aws ``register_catalog``: Glue CreateTable / UpdateTable of the same TableInputs (no crawler)."""

    aws_hook_class = GlueCatalogHook
    template_fields: Sequence[str] = (*AwsBaseOperator.template_fields, *RegisterCatalogStep.template_fields)

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.aws.glue_requests import create_table_request, update_table_request

        database, inputs, pointer = self.table_inputs()
        glue = self.hook.conn
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
        snapshot_id = (pointer or {}).get("snapshot_id")
        return {"database": database, "created": created, "updated": updated, "snapshot_id": snapshot_id}


class AwsAthenaEdaQueryOperator(EdaQueryStep, AthenaOperator):
    """aws ``eda_query``: one EDA query on Athena (engine v3, Trino dialect), deferrable."""

    template_fields: Sequence[str] = (*AthenaOperator.template_fields, *EdaQueryStep.template_fields)
    provider_defaults = {"deferrable": True, "query": ""}  # the query comes from the request

    def _prepare(self) -> dict[str, Any]:
        request = self.request()
        self.query = request["QueryString"]
        self.database = request["QueryExecutionContext"]["Database"]
        self.catalog = request["QueryExecutionContext"]["Catalog"]
        self.output_location = request["ResultConfiguration"]["OutputLocation"]
        self.client_request_token = request["ClientRequestToken"]
        self.workgroup = request["WorkGroup"]
        return request

    def execute(self, context: Context) -> Any:
        skip_if(self.skip, f"EDA query {self.query_name}")
        self._prepare()
        return self._describe(super().execute(context))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        self._prepare()
        return self._describe(super().execute_complete(context, event))

    def _describe(self, query_execution_id: str | None) -> dict[str, Any]:
        return self.describe(query_execution_id, f"{self.output_location}{query_execution_id}.csv")


class AwsValidateFeaturesJobOperator(ValidateFeaturesStep, PublishedGlueJob):
    """aws ``validate_features``: the validation Glue job (Glue 5.0, GX) on the current snapshot, deferrable.

    After the job the worker reads only its small ``validation.json``: it fails naming each broken
    expectation, or writes the validated pointer and emits VALIDATED_FEATURES.
    """

    template_fields: Sequence[str] = (*GlueJobOperator.template_fields, *ValidateFeaturesStep.template_fields)
    provider_defaults = {"deferrable": True}

    def _prepare(self, code_uri: str) -> dict[str, Any]:
        request = self.request(code_uri)
        self.use_request(request)
        return request

    def execute(self, context: Context) -> Any:
        from mlops.aws.glue_requests import VALIDATION_SCRIPT_KEY
        from mlops.validation.bundle import SCRIPT, code_bundle

        bundle = code_bundle()
        self._prepare(self.bundle_uri(bundle))  # validates the Params before anything is written
        self.publish(SCRIPT, VALIDATION_SCRIPT_KEY, bundle)
        self.log.info("StartJobRun %s with %s", self.job_name, self.script_args)
        super().execute(context)  # deferrable: raises TaskDeferred here, and execute_complete gates
        return self.gate(context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        super().execute_complete(context, event)
        return self.gate(context)
