"""Every AWS request the features stage makes is valid for botocore's service model."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops.aws import athena_requests, glue_requests
from mlops.config import load_config
from mlops.eda import EDA_QUERIES
from mlops.etl.build_features import parse_args
from mlops.lake import Lake
from mlops.schema.curated import CURATED_COLUMNS
from mlops.schema.job_args import parse_job_args
from tests.aws.botocore_validation import assert_valid_request, output_member_names

ROOT = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/mlops-dev-glue-job"
POINTER = {
    "snapshot_id": "scheduled__2026-01-02T00-00-00-00-00",
    "uri": "s3://mlops-lake-dev/curated/features/snapshots/scheduled__2026-01-02T00-00-00-00-00",
    "previous": {
        "snapshot_id": "scheduled__2026-01-01T00-00-00-00-00",
        "uri": "s3://mlops-lake-dev/curated/features/snapshots/scheduled__2026-01-01T00-00-00-00-00",
    },
}


@pytest.fixture(scope="module")
def config():
    return load_config(environ={})


@pytest.fixture(scope="module")
def lake(config):
    return Lake.for_target(config, "aws")


def test_stack_names_follow_the_infra_convention(config):
    names = glue_requests.stack_names(config)
    assert (names.glue_job, names.database, names.workgroup) == ("mlops-dev-curate-features", "mlops_dev", "mlops-dev")
    with pytest.raises(ValueError, match="LakeBucketName"):
        glue_requests.stack_names(
            config.model_copy(update={"aws": config.aws.model_copy(update={"lake_bucket": "x-y"})})
        )


ETL_CODE_URI = "s3://mlops-artifacts-dev/glue/libs/mlops_features-0123456789abcdef.zip"


def test_start_job_run_request_is_valid_and_parsed_by_the_script(lake, config):
    request = glue_requests.start_job_run_request(
        lake, config, "scheduled__2026-01-01T00:00:00+00:00", ETL_CODE_URI, 0.5
    )
    assert_valid_request("glue", "StartJobRun", request)
    assert request["Arguments"]["--extra-py-files"] == ETL_CODE_URI, "the mlops.schema bundle is on the job's path"
    args = parse_args(_glue_argv(request))
    assert args["JOB_NAME"] == request["JobName"], "Glue passes the job's name to the script itself"
    assert args["raw_uri"] == "s3://mlops-lake-dev/raw/dms/shop"
    assert args["curated_uri"] == "s3://mlops-lake-dev/curated/features"
    assert args["staging_uri"] == "s3://mlops-lake-dev/_staging/curated/features"
    assert args["run_key"] == "scheduled__2026-01-01T00-00-00-00-00" and args["sample_fraction"] == "0.5"
    assert args["offline_store_uri"] == "featurestore://eu-west-1", "the groups' offline stores feed the training set"
    assert args["offline_store_writer"] == "job"
    with pytest.raises(ValueError, match="sample_fraction"):
        glue_requests.start_job_run_request(lake, config, "r", ETL_CODE_URI, 0.0)


def _glue_argv(request: dict) -> list[str]:
    """The script's argv as Glue (and the local stand-in, mlops.etl.local_glue) builds it: --JOB_NAME first."""
    from mlops.etl.local_glue import script_command

    return ["script.py", *script_command(Path("script.py"), request["Arguments"], request["JobName"])[2:]]


def test_run_requests_set_no_argument_glue_reserves(lake, config):
    """Glue documents --JOB_NAME, --conf, --debug and --mode as internal ("Do not set")."""
    runs = [
        glue_requests.start_job_run_request(lake, config, "r", ETL_CODE_URI),
        glue_requests.start_validation_job_run_request(lake, config, "r", CODE_URI),
    ]
    for request in runs:
        assert not set(request["Arguments"]) & glue_requests.RESERVED_ARGUMENTS, request["Arguments"]
    with pytest.raises(ValueError, match=r"reserved by AWS Glue.*--JOB_NAME"):
        glue_requests.checked_arguments({"--JOB_NAME": "x", "--run_key": "r"})


def test_argument_access_names_only_arguments_the_requests_send(lake, config):
    """The IAM coverage test derives the job roles' S3 needs from ARGUMENT_ACCESS: it must match the requests."""
    sent = {
        "curate-features": glue_requests.start_job_run_request(lake, config, "r", ETL_CODE_URI)["Arguments"],
        "validate-features": glue_requests.start_validation_job_run_request(lake, config, "r", CODE_URI)["Arguments"],
    }
    for job, access in glue_requests.ARGUMENT_ACCESS.items():
        assert set(access) <= set(sent[job]), f"{job}: {set(access) - set(sent[job])} not sent"
        uris = {name for name, value in sent[job].items() if value.startswith("s3://")}
        assert uris <= set(access), f"{job}: S3 arguments {uris - set(access)} have no declared access"


def test_create_job_request_is_valid_glue_5(config):
    request = glue_requests.create_job_request(config, ROLE)
    assert_valid_request("glue", "CreateJob", request)
    assert request["GlueVersion"] == "5.0" and request["Command"]["ScriptLocation"].startswith("s3://mlops-artifacts")


CODE_URI = "s3://mlops-artifacts-dev/glue/libs/mlops_validation-0123456789abcdef.zip"


def test_start_validation_job_run_request_is_valid_and_parsed_by_the_job(lake, config):
    from mlops.validation import features_job

    request = glue_requests.start_validation_job_run_request(
        lake, config, "scheduled__2026-01-01T00:00:00+00:00", CODE_URI, min_rows="50", max_rows=None
    )
    assert_valid_request("glue", "StartJobRun", request)
    assert request["JobName"] == "mlops-dev-validate-features" and request["Timeout"] == 30
    assert request["Arguments"]["--extra-py-files"] == CODE_URI, "the code bundle goes on the job's Python path"
    args = parse_job_args(_glue_argv(request), features_job.JOB_ARGS, features_job.JOB_DEFAULTS)
    assert args["curated_uri"] == "s3://mlops-lake-dev/curated/features"
    assert args["report_uri"] == "s3://mlops-lake-dev/reports/features/scheduled__2026-01-01T00-00-00-00-00"
    assert args["staging_uri"] == "s3://mlops-lake-dev/_staging/reports/features"
    assert (args["min_rows"], args["max_rows"]) == ("50", ""), "an unset bound keeps the suite's default"
    assert features_job.suite_bounds(args).min_rows == 50


@pytest.mark.parametrize(
    ("min_rows", "max_rows", "message"),
    [("many", None, "min_rows must be a whole number"), (-1, None, "min_rows must be >= 0"),
     (None, "0", "max_rows must be >= 1"), ("10", "5", r"min_rows \(10\) is above max_rows \(5\)")],
)  # fmt: skip
def test_bad_row_bounds_are_refused_before_any_request(lake, config, min_rows, max_rows, message):
    with pytest.raises(ValueError, match=message):
        glue_requests.start_validation_job_run_request(lake, config, "r", CODE_URI, min_rows, max_rows)


def test_create_validation_job_request_is_valid_and_matches_the_stack(config):
    request = glue_requests.create_validation_job_request(config, ROLE)
    assert_valid_request("glue", "CreateJob", request)
    assert request["Command"]["ScriptLocation"] == "s3://mlops-artifacts-dev/glue/scripts/validate_features.py"
    job = _stack_resource("data.yaml", "ValidateFeaturesJob")
    assert job["Name"] == {"Fn::Sub": "${ProjectName}-${Environment}-validate-features"}
    assert (job["GlueVersion"], job["Timeout"], job["Command"]["Name"]) == (
        request["GlueVersion"], request["Timeout"], request["Command"]["Name"]
    )  # fmt: skip
    parameters = _stack("data.yaml")["Parameters"]
    assert parameters["GlueValidationScriptKey"]["Default"] == glue_requests.VALIDATION_SCRIPT_KEY
    assert job["DefaultArguments"]["--additional-python-modules"] == {"Ref": "GreatExpectationsModule"}
    assert parameters["GreatExpectationsModule"]["Default"] == glue_requests.GX_MODULE
    assert request["DefaultArguments"]["--additional-python-modules"] == glue_requests.GX_MODULE
    glue_env = (ROOT / "envs" / "glue" / "requirements.txt").read_text()
    assert glue_requests.GX_MODULE.replace("_", "-") in glue_env, "the local glue runtime runs the same GX"


def _stack(name: str) -> dict:
    class Loader(yaml.SafeLoader):
        """CloudFormation short tags (!Ref, !Sub, ...) as their long form."""

    def construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
        value = loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else (
            loader.construct_sequence(node, deep=True) if isinstance(node, yaml.SequenceNode)
            else loader.construct_mapping(node, deep=True))  # fmt: skip
        return {"Ref": value} if suffix == "Ref" else {f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", construct)
    return yaml.load((ROOT / "infra" / "cfn" / name).read_text(), Loader=Loader)  # nosec B506 - a SafeLoader subclass


def _stack_resource(name: str, logical_id: str) -> dict:
    return _stack(name)["Resources"][logical_id]["Properties"]


def test_catalog_table_requests_are_valid(lake, config):
    inputs = glue_requests.catalog_table_inputs(lake, config, POINTER)
    assert [t["Name"] for t in inputs] == [
        "raw_customers", "raw_products", "raw_orders", "raw_order_items", "features", "features_previous"
    ]  # fmt: skip
    for table_input in inputs:
        assert_valid_request("glue", "CreateTable", glue_requests.create_table_request("mlops_dev", table_input))
        assert_valid_request("glue", "UpdateTable", glue_requests.update_table_request("mlops_dev", table_input))
    features = inputs[4]
    columns = [c["Name"] for c in features["StorageDescriptor"]["Columns"]] + [features["PartitionKeys"][0]["Name"]]
    assert columns == list(CURATED_COLUMNS)
    assert features["Parameters"]["storage.location.template"] == POINTER["uri"] + "/split=${split}/"
    assert inputs[5]["StorageDescriptor"]["Location"] == POINTER["previous"]["uri"] + "/"
    assert all(c["Name"] == c["Name"].lower() for t in inputs for c in t["StorageDescriptor"]["Columns"])


@pytest.mark.parametrize("name", EDA_QUERIES)
def test_start_query_execution_requests_are_valid(lake, config, name):
    request = athena_requests.start_query_execution_request(lake, config, name, "scheduled__2026-01-01")
    assert_valid_request("athena", "StartQueryExecution", request)
    assert request["ResultConfiguration"]["OutputLocation"] == "s3://mlops-lake-dev/athena-results/"
    assert request["WorkGroup"] == "mlops-dev" and '"mlops_dev"."features"' in request["QueryString"]
    again = athena_requests.start_query_execution_request(lake, config, name, "scheduled__2026-01-01")
    assert again["ClientRequestToken"] == request["ClientRequestToken"], "a retried task reuses the query"


def test_local_stand_in_responses_use_real_field_names():
    assert {"Id", "JobName", "JobRunState", "Arguments", "StartedOn", "CompletedOn", "ExecutionTime",
            "GlueVersion", "ErrorMessage"} <= output_member_names("glue", "JobRun")  # fmt: skip
    assert {"QueryExecutionId", "Query", "StatementType", "ResultConfiguration", "QueryExecutionContext",
            "Status", "Statistics", "WorkGroup"} <= output_member_names("athena", "QueryExecution")  # fmt: skip


def test_s3_swap_publishes_a_snapshot_behind_one_pointer_put(monkeypatch):
    """The Glue script's S3 swap (no rename on S3): copy to a versioned prefix, then PUT the pointer."""
    import json

    import boto3
    from moto import mock_aws

    from mlops.schema.snapshots import LakeFiles, read_current, swap_in

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="lake")
        files = LakeFiles(s3)
        curated = "s3://lake/curated/features"
        for run in ("r1", "r1", "r2"):
            for split in ("train", "test"):
                s3.put_object(
                    Bucket="lake", Key=f"_staging/curated/features/{run}/split={split}/part-0.parquet", Body=b"x"
                )
            swap_in(files, f"s3://lake/_staging/curated/features/{run}", curated, run, {"rows": 2, "splits": {}})
        pointer = read_current(curated, files)
        assert pointer["snapshot_id"] == "r2" and pointer["previous"]["snapshot_id"] == "r1.2"
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"])
        assert not [k for k in keys if k.startswith("_staging/")], "staging is emptied after the swap"
        snapshots = {k.split("/")[3] for k in keys if k.startswith("curated/features/snapshots/")}
        assert snapshots == {"r1.2", "r2"}, "only the current and the previous snapshot are kept"
        body = s3.get_object(Bucket="lake", Key="curated/features/_current.json")["Body"].read()
        assert json.loads(body)["uri"] == "s3://lake/curated/features/snapshots/r2"
