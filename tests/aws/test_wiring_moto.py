"""Every DAG on the aws target, against a moto server on 127.0.0.1: the wiring, not the results.

``MLOPS_TARGET=aws`` picks the Amazon provider's operators; Airflow's ``aws_default`` points at moto
through ``AIRFLOW_CONN_AWS_DEFAULT`` (``endpoint_url`` in its extra) and plain boto3/pyarrow through
``AWS_ENDPOINT_URL``. moto is seeded with what the infra stacks and the earlier stages leave behind:
the lake and artifacts buckets, the raw DMS files and the curated snapshot (made by the local
stand-ins, then uploaded), a started DMS task with its instance and endpoints, CloudWatch CDC
latency, the Glue database and jobs (curate and validate features), the Athena workgroup, the IAM
roles of ``training.role_arn`` and the Glue jobs, the SageMaker model package group, and (for
mlops_monitor) captured endpoint traffic in the window. Bucket and endpoint names are unique per
session: the Airflow test DB keeps earlier sessions' XComs and Asset events.

The tests run in pipeline order, one DAG each, through ``run_dag`` (dag.test()); each works on what
the previous one left in moto (mlops_train reads the curated snapshot, mlops_deploy serves the
package mlops_train registered, mlops_monitor watches that model). Every task must succeed.

moto accepts the calls and executes nothing. Only these operations are stubbed (botocore's
``BaseClient._make_api_call``, per operation name; every other call reaches moto unchanged):

- ``DescribeTableStatistics`` (DMS): moto does not implement it. Answered with the local
  replicator's statistics of the same tables (the stand-in's DescribeTableStatistics shape),
  whose ``Validation*`` fields come from the stand-in's own data validation of the seeded lake
  against the seeded source DB (``sync()`` in the seeding: full load, then validation).
- ``CreateTrainingJob`` / ``CreateProcessingJob`` (SageMaker): passed to moto (which marks the job
  Completed at once), then the job's work is done as SageMaker would do it: the same request is
  executed by the local stand-in (:mod:`mlops.sagemaker_local`) on a local mirror of its S3 inputs,
  and its outputs (model.tar.gz; evaluation.json; the monitoring jobs' files) are uploaded to the
  request's S3 output keys. moto writes no job outputs, and the next tasks read them.
  For mlops_monitor these are the baseline job (statistics.json / constraints.json, staged, then
  swapped in by the worker) and the drift job.
- ``StartQueryExecution`` (Athena): passed to moto, then the same query is executed by the local
  stand-in (DuckDB over a local copy of the lake, registered with the same TableInputs) and its CSV
  uploaded to ``<athena-results>/<moto's QueryExecutionId>.csv``: moto writes no result file, and
  the EDA report reads them.
- ``StartJobRun`` of the features validation job (Glue): passed to moto, then the job's work is
  done as Glue would do it: its inputs (the curated pointer and snapshot, the ``--extra-py-files``
  bundle and the script the task uploaded to the job's ScriptLocation) are mirrored locally (JSON
  pointers with their ``s3://`` URIs rewritten to the mirror), the same request runs through the
  local Glue stand-in (:mod:`mlops.etl.local_glue`, GX in the glue runtime), and its outputs
  (``validation.json``, Data Docs) are uploaded to the request's ``--report_uri`` with the URIs in
  the JSON rewritten back to ``s3://``. The gate reads that JSON. Other job runs pass through.

Not stubs: moto's own control API makes Glue job runs and Athena queries finish on the first poll
(its state manager) and gives InvokeEndpoint a canned answer in the inference contract (its
endpoint-results API).
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.aws.moto_server import MotoServer, S3Mirror, stub_operations, upload_tree

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/mlops-sagemaker-execution"
GLUE_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/mlops-glue"
# The Airflow test DB outlives a session (prior XComs and Asset events): names unique per session.
ENDPOINT = f"mlops-wiring-{os.getpid()}"
LAKE_BUCKET = f"mlops-lake-w{os.getpid()}"  # infra naming <project>-lake-<env>: Glue/Athena names follow
ARTIFACTS_BUCKET = f"mlops-artifacts-w{os.getpid()}"
WINDOW_END = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
PREDICTION = {"label": "delivered", "probabilities": {"delivered": 0.7, "returned": 0.2, "cancelled": 0.1}}


# ---- seeding ----------------------------------------------------------------------------------------


def _role_policy() -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": ["sagemaker.amazonaws.com", "glue.amazonaws.com"]},
         "Action": "sts:AssumeRole"}]})  # fmt: skip


def _seed_raw_lake(config: Any, local_lake: Any) -> tuple[Any, Path]:
    """A small source DB (the default SQLite under MLOPS_HOME), fully loaded and validated by the local replicator."""
    from mlops.lake import local_path
    from mlops.replication.replicator import LocalReplicator
    from mlops.source.db import make_engine
    from mlops.source.generator import generate

    engine = make_engine(None)
    generate(engine, orders=1200, seed=11)
    replicator = LocalReplicator(config, engine, local_lake)
    replicator.sync()  # the full load, then DMS-style validation: the DescribeTableStatistics stub's source
    return replicator, local_path(local_lake.uri(config.lake.raw_prefix, config.source.schema_name))


def _seed_curated(config: Any, local_lake: Any, raw_dir: Path) -> dict[str, Any]:
    """The curated snapshot the Glue job would write: the pandas twin of the job, swapped in locally."""
    from mlops.etl import pandas_features
    from mlops.lake import local_path
    from mlops.schema.curated import LABEL, LABEL_CLASSES, SPLIT, SPLITS, curated_types
    from mlops.schema.snapshots import LakeFiles, swap_in

    frame = pandas_features.run(raw_dir)
    curated_uri = local_lake.curated("features")
    staged = local_lake.staging(config.lake.curated_prefix, "features", "seed")
    for split, rows in frame.groupby(SPLIT):
        folder = local_path(staged) / f"{SPLIT}={split}"
        folder.mkdir(parents=True, exist_ok=True)
        rows.drop(columns=SPLIT).to_parquet(folder / "part-00000.snappy.parquet", index=False)
    local_path(curated_uri).mkdir(parents=True, exist_ok=True)
    manifest = {
        "rows": len(frame),
        "splits": {s: int((frame[SPLIT] == s).sum()) for s in SPLITS},
        "labels": {c: int((frame[LABEL] == c).sum()) for c in LABEL_CLASSES},
        "columns": [{"name": n, "type": t} for n, t in curated_types().items()],
        "run_key": "seed",
        "job_name": "seed",
        "raw_uri": local_lake.uri(config.lake.raw_prefix, config.source.schema_name),
        "curated_uri": curated_uri,
        "sample_fraction": 1.0,
    }
    return swap_in(LakeFiles(), staged, curated_uri, "seed", manifest)


def _publish_lake(s3: Any, local_lake: Any, aws_lake: Any, config: Any) -> None:
    """Upload the local raw + curated trees to the lake bucket; pointers get s3:// URIs."""
    from mlops.lake import local_path

    root = local_path(local_lake.root)
    bucket = config.aws.lake_bucket
    for prefix in (config.lake.raw_prefix, config.lake.curated_prefix):
        folder = root / prefix
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = path.relative_to(root).as_posix()
            if path.suffix == ".json":
                body = path.read_text().replace(local_lake.root, aws_lake.root).encode()
                s3.put_object(Bucket=bucket, Key=key, Body=body)
            else:
                s3.upload_file(str(path), bucket, key)


def _seed_dms(server: MotoServer, config: Any) -> str:
    from mlops.aws.dms_requests import task_identifier
    from mlops.replication.status import table_mappings

    dms = server.client("dms")
    instance = dms.create_replication_instance(
        ReplicationInstanceIdentifier="mlops-dms", ReplicationInstanceClass="dms.t3.micro"
    )["ReplicationInstance"]
    source = dms.create_endpoint(EndpointIdentifier="mlops-source", EndpointType="source", EngineName="postgres",
                                 ServerName="127.0.0.1", Port=5432, DatabaseName="shop", Username="dms",
                                 Password="dms")["Endpoint"]  # fmt: skip
    target = dms.create_endpoint(EndpointIdentifier="mlops-lake", EndpointType="target", EngineName="s3",
                                 S3Settings={"BucketName": config.aws.lake_bucket,
                                             "BucketFolder": config.lake.raw_prefix,
                                             "ServiceAccessRoleArn": ROLE_ARN})["Endpoint"]  # fmt: skip
    task = dms.create_replication_task(
        ReplicationTaskIdentifier=config.replication.task_id,
        SourceEndpointArn=source["EndpointArn"],
        TargetEndpointArn=target["EndpointArn"],
        ReplicationInstanceArn=instance["ReplicationInstanceArn"],
        MigrationType="full-load-and-cdc",
        TableMappings=table_mappings(config.source.schema_name, list(config.replication.tables)),
    )["ReplicationTask"]
    dms.start_replication_task(
        ReplicationTaskArn=task["ReplicationTaskArn"], StartReplicationTaskType="start-replication"
    )
    # What DMS publishes while CDC runs: the check reads it back with GetMetricData.
    dimensions = [
        {"Name": "ReplicationInstanceIdentifier", "Value": task_identifier(instance["ReplicationInstanceArn"])},
        {"Name": "ReplicationTaskIdentifier", "Value": task_identifier(task["ReplicationTaskArn"])},
    ]
    server.client("cloudwatch").put_metric_data(
        Namespace="AWS/DMS",
        MetricData=[
            {"MetricName": name, "Dimensions": dimensions, "Value": value, "Unit": "Seconds",
             "Timestamp": datetime.now(UTC) - timedelta(minutes=1)}
            for name, value in (("CDCLatencySource", 2.0), ("CDCLatencyTarget", 3.0))
        ],
    )  # fmt: skip
    return task["ReplicationTaskArn"]


def _seed_glue_athena(server: MotoServer, config: Any) -> None:
    from mlops.aws.glue_requests import create_job_request, create_validation_job_request, stack_names

    names = stack_names(config)
    server.client("glue").create_database(DatabaseInput={"Name": names.database})
    server.client("glue").create_job(**create_job_request(config, GLUE_ROLE_ARN))
    server.client("glue").create_job(**create_validation_job_request(config, GLUE_ROLE_ARN))
    server.client("athena").create_work_group(
        Name=names.workgroup,
        Configuration={
            "ResultConfiguration": {
                "OutputLocation": f"s3://{config.aws.lake_bucket}/{config.lake.athena_results_prefix}/"
            },
            "EnforceWorkGroupConfiguration": True,
            "EngineVersion": {"SelectedEngineVersion": "Athena engine version 3"},
        },
    )
    server.immediate("glue::job_run")
    server.immediate("athena::execution")


# ---- the stubs (see the module docstring) -------------------------------------------------------------


def _stubs(env: dict[str, Any]) -> dict[str, Any]:
    mirror: S3Mirror = env["mirror"]

    def describe_table_statistics(client: Any, call_moto: Any, params: dict[str, Any]) -> dict[str, Any]:
        # moto lacks DescribeTableStatistics: answer with the local replicator's statistics.
        from mlops.replication.status import describe_table_statistics as local_statistics
        from mlops.replication.status import utc_now

        replicator = env["replicator"]
        state = replicator.store.load(list(replicator.table_names), utc_now())
        response = local_statistics(state, schema=replicator.schema_name)
        return {**response, "ReplicationTaskArn": params["ReplicationTaskArn"]}

    def reload_tables(client: Any, call_moto: Any, params: dict[str, Any]) -> dict[str, Any]:
        # moto lacks ReloadTables: check the request against botocore's model and record it.
        from tests.aws.botocore_validation import assert_valid_request

        assert_valid_request("dms", "ReloadTables", params)
        env.setdefault("reload_requests", []).append(params)
        return {"ReplicationTaskArn": params["ReplicationTaskArn"]}

    def create_training_job(client: Any, call_moto: Any, params: dict[str, Any]) -> dict[str, Any]:
        # moto marks the job Completed and writes nothing: do the job's work with the local stand-in.
        from mlops.sagemaker_local import run_training_job

        response = call_moto()
        for channel in params.get("InputDataConfig", []):
            mirror.download(channel["DataSource"]["S3DataSource"]["S3Uri"])
        mirror.download(json.loads(params["HyperParameters"]["sagemaker_submit_directory"]))
        describe = run_training_job(mirror.rewrite(params), root=env["jobs_root"])
        assert describe["TrainingJobStatus"] == "Completed", describe.get("FailureReason")
        mirror.upload(f"{params['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{params['TrainingJobName']}")
        return response

    def create_processing_job(client: Any, call_moto: Any, params: dict[str, Any]) -> dict[str, Any]:
        # moto marks the job Completed and writes no outputs: run it with the local stand-in, upload them.
        from mlops.sagemaker_local import run_processing_job

        response = call_moto()
        for item in params.get("ProcessingInputs", []):
            mirror.download(item["S3Input"]["S3Uri"])
        describe = run_processing_job(mirror.rewrite(params), root=env["jobs_root"])
        assert describe["ProcessingJobStatus"] == "Completed", describe.get("FailureReason")
        for item in params["ProcessingOutputConfig"]["Outputs"]:
            mirror.upload(item["S3Output"]["S3Uri"])
        return response

    def start_query_execution(client: Any, call_moto: Any, params: dict[str, Any]) -> dict[str, Any]:
        # moto runs no SQL and writes no CSV: run the same request on the local DuckDB catalog.
        from mlops.catalog.duckdb_catalog import local_catalog_path
        from mlops.eda.runner import execute_locally

        response = call_moto()
        local = mirror.rewrite(params)
        local["ResultConfiguration"]["OutputLocation"] = env["local_lake"].athena_results() + "/"
        execution = execute_locally(local, local_catalog_path())["QueryExecution"]
        csv = Path(execution["ResultConfiguration"]["OutputLocation"].removeprefix("file://"))
        bucket, _, prefix = params["ResultConfiguration"]["OutputLocation"].removeprefix("s3://").partition("/")
        env["s3"].upload_file(str(csv), bucket, f"{prefix}{response['QueryExecutionId']}.csv")
        return response

    def start_job_run(client: Any, call_moto: Any, params: dict[str, Any]) -> dict[str, Any]:
        # moto marks the run SUCCEEDED and runs nothing: run the validation job with the local Glue stand-in.
        from mlops.aws.glue_requests import stack_names
        from mlops.etl.local_glue import run_job_locally

        response = call_moto()
        if params["JobName"] != stack_names(env["config"]).validation_job:
            return response
        arguments = params["Arguments"]
        script = client.get_job(JobName=params["JobName"])["Job"]["Command"]["ScriptLocation"]
        for uri in (arguments["--curated_uri"], arguments["--extra-py-files"], script):
            mirror.download(uri)
        _rewrite_json(mirror, arguments["--curated_uri"], "s3://", f"file://{mirror.root}/")
        job = run_job_locally(mirror.rewrite(params), Path(mirror.local_uri(script).removeprefix("file://")))
        assert job["JobRun"]["JobRunState"] == "SUCCEEDED"
        _rewrite_json(mirror, arguments["--report_uri"], f"file://{mirror.root}/", "s3://")
        mirror.upload(arguments["--report_uri"])
        return response

    return {
        "StartJobRun": start_job_run,
        "DescribeTableStatistics": describe_table_statistics,
        "ReloadTables": reload_tables,
        "CreateTrainingJob": create_training_job,
        "CreateProcessingJob": create_processing_job,
        "StartQueryExecution": start_query_execution,
    }


def _rewrite_json(mirror: S3Mirror, uri: str, old: str, new: str) -> None:
    """Rewrite URIs inside the mirrored JSON files under ``uri`` (pointers and results name their data by URI)."""
    for path in Path(mirror.local_uri(uri).removeprefix("file://")).rglob("*.json"):
        path.write_text(path.read_text().replace(old, new))


@pytest.fixture(scope="module")
def aws_env(tmp_path_factory):
    """moto on loopback, env pointing Airflow and boto3 at it, and everything the DAGs expect to exist."""
    from mlops.aws.glue_requests import catalog_table_inputs, stack_names
    from mlops.aws.sagemaker_requests import model_package_group_request
    from mlops.catalog.duckdb_catalog import apply_table_inputs, local_catalog_path
    from mlops.config import load_config
    from mlops.lake import Lake
    from mlops_airflow.targets import pipeline_config

    home = tmp_path_factory.mktemp("aws-wiring")
    with MotoServer(REGION) as server, pytest.MonkeyPatch.context() as patch:
        for name, value in server.environment().items():
            patch.setenv(name, value)
        patch.setenv("MLOPS_HOME", str(home))
        patch.setenv("MLOPS_TARGET", "aws")
        patch.setenv("MLOPS__AWS__REGION", REGION)
        patch.setenv("MLOPS__AWS__LAKE_BUCKET", LAKE_BUCKET)
        patch.setenv("MLOPS__AWS__ARTIFACTS_BUCKET", ARTIFACTS_BUCKET)
        patch.setenv("MLOPS__TRAINING__ROLE_ARN", ROLE_ARN)
        patch.setenv("MLOPS__SERVING__ENDPOINT_NAME", ENDPOINT)
        patch.setenv("MLOPS__MONITORING__CONSECUTIVE_WINDOWS", "1")
        patch.setenv("MLOPS__MONITORING__SENSOR_TIMEOUT_MINUTES", "1")
        patch.setenv("MLOPS__MONITORING__SENSOR_POKE_SECONDS", "5")
        # infra naming (data.yaml's ReplicationTaskIdentifier), which the IAM coverage test checks the ARN against
        patch.setenv("MLOPS__REPLICATION__TASK_ID", f"mlops-w{os.getpid()}-cdc")
        config = load_config()
        s3 = server.client("s3")
        for bucket in (config.aws.lake_bucket, config.aws.artifacts_bucket):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        iam = server.client("iam")
        for arn in (ROLE_ARN, GLUE_ROLE_ARN):
            iam.create_role(RoleName=arn.rsplit("/", 1)[-1], AssumeRolePolicyDocument=_role_policy())

        local_lake = Lake.for_target(config, "local")
        aws_lake = Lake.for_target(config, "aws")
        replicator, raw_dir = _seed_raw_lake(config, local_lake)
        pointer = _seed_curated(config, local_lake, raw_dir)
        _publish_lake(s3, local_lake, aws_lake, config)
        # The local catalog that plays Athena's Glue catalog for the StartQueryExecution stub.
        apply_table_inputs(local_catalog_path(), stack_names(config).database,
                           catalog_table_inputs(local_lake, config, pointer))  # fmt: skip

        patch.setenv("MLOPS__AWS__DMS_REPLICATION_TASK_ARN", _seed_dms(server, config))
        _seed_glue_athena(server, config)
        # The ml stack's AWS::SageMaker::ModelPackageGroup (register finds it; find_champion sees it empty).
        server.client("sagemaker").create_model_package_group(
            **model_package_group_request(config.registry.model_package_group, "Order-outcome classifier versions")
        )

        pipeline_config.cache_clear()
        env = {
            "server": server,
            "home": home,
            "s3": s3,
            "config": config,
            "replicator": replicator,
            "local_lake": local_lake,
            "aws_lake": aws_lake,
            "mirror": S3Mirror(s3, home / "s3-mirror"),
            "jobs_root": home / "sagemaker-jobs",
            "results": {},
        }
        try:
            with stub_operations(_stubs(env)):
                yield env
        finally:
            pipeline_config.cache_clear()
            shutil.rmtree(home / "s3-mirror", ignore_errors=True)


ONLY_WHEN_A_JOB_FAILED = {"record_failed_window"}  # trigger_rule one_failed: skipped in a run where all went well


def _run(env: dict[str, Any], dag_id: str, conf: dict[str, Any] | None = None) -> Any:
    from mlops_airflow.targets import pipeline_config
    from mlops_tools.dag_runner import run_dag

    pipeline_config.cache_clear()
    result = run_dag(dag_id, conf=conf, log_path=env["home"] / "logs" / f"{dag_id}.log")
    failed = {
        task: state
        for task, state in result.task_states.items()
        if state != "success" and not (state == "skipped" and task in ONLY_WHEN_A_JOB_FAILED)
    }
    assert result.succeeded and not failed, (
        f"{dag_id} on aws/moto: {failed or result.state}\n{result.error}\n(log: {result.log_path})"
    )
    env["results"][dag_id] = result
    return result


# ---- the DAGs, in pipeline order ---------------------------------------------------------------------


def test_ingest_on_aws(aws_env):
    from mlops.source.db import table_counts

    # The aws check must not need the source DB (only DMS reaches it): take it away for the run.
    source_db = aws_env["home"] / "source.db"
    away = source_db.with_name("source.db.away")
    source_db.rename(away)
    try:
        result = _run(aws_env, "mlops_ingest")
        assert not source_db.exists(), "the aws ingest run opened the source DB"
    finally:
        away.rename(source_db)
    extra = result.asset_extras["mlops_raw_data"]
    assert extra["task_status"] == "running" and extra["raw_uri"].startswith("s3://")
    assert extra["cdc_lag_seconds"] == 5.0 and extra["fresh_objects"] >= 4
    assert extra["rows"] == table_counts(aws_env["replicator"].engine)  # DMS's counters of the seeded load
    assert {v["state"] for v in extra["validation"].values()} == {"Validated"}
    checks = Path(result.log_path).read_text()  # the lake content checks ran as Athena queries (executed by the stub)
    assert "PASS null_rate [table orders] NullRate[discount_code]" in checks and "PASS schema [table orders]" in checks

    # The reload Param makes dms_sync call DMS ReloadTables (moto lacks it: the stub validates and records it).
    config = aws_env["config"]
    reloaded = _run(aws_env, "mlops_ingest", conf={"reload_tables": ["orders"], "require_fresh_objects": False})
    assert reloaded.succeeded
    (request,) = aws_env["reload_requests"]
    assert request["TablesToReload"] == [{"SchemaName": config.source.schema_name, "TableName": "orders"}]
    assert request["ReloadOption"] == "data-reload" and request["ReplicationTaskArn"].startswith("arn:aws:dms:")


def test_features_on_aws(aws_env):
    result = _run(aws_env, "mlops_features")
    assert result.xcoms["build_features"]["job_run_id"]
    assert set(result.xcoms["register_catalog"]["created"]) >= {"features", "features_previous"}
    extra = result.asset_extras["mlops_validated_features"]
    assert extra["rows"] > 100 and extra["snapshot_id"] == "seed"
    assert extra["data_docs"].startswith(f"s3://{LAKE_BUCKET}/reports/features/") and extra["expectations"] > 50
    bucket, _, key = extra["data_docs"].removeprefix("s3://").partition("/")
    aws_env["s3"].head_object(Bucket=bucket, Key=key)  # the Data Docs the validation job wrote
    validated = aws_env["s3"].get_object(Bucket=LAKE_BUCKET, Key="curated/features/_validated.json")
    assert json.loads(validated["Body"].read())["uri"] == extra["curated_uri"], "the gate moved the pointer"


def test_train_on_aws(aws_env):
    result = _run(aws_env, "mlops_train", conf={"hyperparameters": {"n_estimators": 30, "num_leaves": 15}})
    extra = result.asset_extras["mlops_registered_model"]
    assert extra["version"] == 1 and extra["approval_status"] == "Approved"
    assert extra["model_package_arn"].startswith(f"arn:aws:sagemaker:{REGION}:")
    assert extra["model_data_url"].startswith("s3://") and extra["model_data_url"].endswith("/output/model.tar.gz")
    assert result.xcoms["train"]["CacheHit"] is False


def test_deploy_on_aws(aws_env):
    from mlops.serving.runtime import sample_request

    registered = aws_env["results"]["mlops_train"].asset_extras["mlops_registered_model"]
    # moto's InvokeEndpoint answers what it is told (its endpoint-results API): one prediction per
    # row of the package's input example, which the smoke test sends.
    bucket, _, key = registered["model_data_url"].removeprefix("s3://").partition("/")
    example = sample_request(aws_env["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())
    rows = len(example["instances"]) if "instances" in example else 1
    aws_env["server"].sagemaker_invocation_results([{"predictions": [PREDICTION] * rows}], variant="AllTraffic")
    result = _run(aws_env, "mlops_deploy")  # manual run: the latest Approved version in moto's registry
    assert result.xcoms["resolve_model"]["model_data_url"] == registered["model_data_url"]
    extra = result.asset_extras["mlops_endpoint_live"]
    assert extra["endpoint_name"] == ENDPOINT and extra["invoked_variant"] == "AllTraffic"
    assert extra["invocation_url"].startswith(aws_env["server"].url)
    sagemaker = aws_env["server"].client("sagemaker")
    assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService"


def _seed_capture(env: dict[str, Any], model_data_url: str) -> None:
    """Drifted captured traffic of the deployed endpoint inside the window (data capture writes it on AWS):
    held-out rows of the model's own feature columns (its package's feature_spec.json)."""
    import pandas as pd

    from mlops.lake import local_path
    from mlops.monitoring.feature_spec import read_feature_spec
    from mlops.monitoring.traffic import drift_rows, sample_rows
    from tests.jobs.sagemaker.monitoring_fixtures import write_capture

    local_lake, config = env["local_lake"], env["config"]
    bucket, _, key = model_data_url.removeprefix("s3://").partition("/")
    spec = read_feature_spec(env["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())
    numeric, categorical = list(spec["numeric"]), list(spec["categorical"])
    snapshot = local_path(local_lake.curated("features")) / "snapshots" / "seed"
    features = pd.read_parquet(snapshot / "split=test")[numeric + categorical]
    rows = drift_rows(sample_rows(features, 400, 1), numeric, categorical, seed=1)
    write_capture(local_lake, ENDPOINT, rows, WINDOW_END - timedelta(minutes=50))
    upload_tree(env["s3"], local_path(local_lake.capture()), config.aws.lake_bucket, config.lake.capture_prefix)


def test_monitor_on_aws(aws_env):
    registered = aws_env["results"]["mlops_train"].asset_extras["mlops_registered_model"]
    _seed_capture(aws_env, registered["model_data_url"])
    conf = {
        "model_version": str(registered["version"]),
        "model_data_url": registered["model_data_url"],
        "window_end": WINDOW_END.isoformat(),
    }
    result = _run(aws_env, "mlops_monitor", conf=conf)
    # The baseline is a processing job (its request stubbed like every CreateProcessingJob), swapped in on S3.
    baseline = result.xcoms["ensure_baseline"]
    assert baseline["created"] is True and baseline["statistics_uri"].startswith("s3://")
    assert baseline["job_name"] == result.xcoms["baseline_job"]["Processing"]["ProcessingJobName"]
    sagemaker = aws_env["server"].client("sagemaker")
    described = sagemaker.describe_processing_job(ProcessingJobName=baseline["job_name"])
    assert described["AppSpecification"]["ContainerEntrypoint"][-1].endswith("/baseline_job.py")
    bucket, _, key = baseline["statistics_uri"].removeprefix("s3://").partition("/")
    assert json.loads(aws_env["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())["features"]
    extra = result.asset_extras["mlops_drift_detected"]
    assert extra["endpoint_name"] == ENDPOINT and extra["drift_share"] > 0
    assert extra["violations_uri"].startswith("s3://")
