"""The features-stage operators: the local chain does the real work; aws classes build the validated requests."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from mlops.etl.synthetic_raw import write_raw

RUN = "manual__2026-01-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A fresh MLOPS_HOME with synthetic raw DMS output, on the local target."""
    root = tmp_path_factory.mktemp("mlops_home")
    patch = pytest.MonkeyPatch()
    patch.setenv("MLOPS_HOME", str(root))
    patch.setenv("MLOPS_TARGET", "local")
    patch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    from mlops_airflow import targets

    targets.pipeline_config.cache_clear()
    write_raw(root / "lake" / "raw" / "dms" / "shop", 1500, seed=4)
    yield root
    targets.pipeline_config.cache_clear()
    patch.undo()


class _TI:
    def __init__(self, xcoms):
        self.xcoms = xcoms

    def xcom_pull(self, task_ids):
        return self.xcoms[task_ids]


def test_local_chain_builds_registers_explores_and_validates(home):
    from mlops.aws.feature_store_requests import offline_table_name
    from mlops.eda import EDA_QUERIES
    from mlops.schema.feature_groups import FEATURE_GROUPS
    from mlops_airflow.assets import VALIDATED_FEATURES
    from mlops_airflow.operators import features_local as ops
    from mlops_airflow.operators.features import FeaturesEdaReportOperator
    from mlops_airflow.targets import pipeline_config

    built = ops.LocalGlueFeaturesJobOperator(task_id="build_features", run_key=RUN).execute({})
    assert built["state"] == "SUCCEEDED" and built["rows"] > 1000 and sum(built["splits"].values()) == built["rows"]
    json.dumps(built)

    catalog = ops.LocalCatalogRegisterOperator(task_id="register_catalog").execute({})
    assert {"features", "features_previous", "raw_orders", "orders"} <= set(catalog["views"])
    # the training table came from the feature groups' offline stores: SageMaker's layout under the groups'
    # S3Uri in the local lake, registered in the catalog as SageMaker names their tables
    store = home / "lake" / "curated" / "feature-store"
    for group in FEATURE_GROUPS:
        hours = list(
            store.glob(f"*/sagemaker/*/offline-store/*-{group.name}-*/data/year=*/month=*/day=*/hour=*/*.parquet")
        )
        assert hours, f"no offline store of {group.name} under {store}"
        assert offline_table_name(pipeline_config(), group) in catalog["views"]

    described = [
        ops.LocalAthenaEdaQueryOperator(task_id="eda_query", query_name=name, run_key=RUN).execute({})
        for name in EDA_QUERIES
    ]
    assert all(Path(d["output_uri"].removeprefix("file://")).exists() for d in described)

    report = FeaturesEdaReportOperator(task_id="eda_report", run_key=RUN).execute({"ti": _TI({"eda_query": described})})
    assert Path(report["report_uri"].removeprefix("file://")).read_text().count("<svg ") == 4

    outlet_events = {VALIDATED_FEATURES: SimpleNamespace(extra=None)}
    extra = ops.LocalValidateFeaturesOperator(task_id="validate_features", run_key=RUN).execute(
        {"outlet_events": outlet_events}
    )
    assert outlet_events[VALIDATED_FEATURES].extra == extra
    assert extra["rows"] == built["rows"] and extra["splits"] == built["splits"]
    assert extra["snapshot_id"] == built["snapshot_id"] and extra["curated_uri"] == built["snapshot_uri"]
    assert Path(extra["data_docs"].removeprefix("file://")).exists()
    validated = home / "lake" / "curated" / "features" / "_validated.json"
    assert json.loads(validated.read_text())["snapshot_id"] == built["snapshot_id"]
    result = json.loads(
        Path(extra["data_docs"].removeprefix("file://")).parents[1].joinpath("validation.json").read_text()
    )
    assert result["success"] and result["counts"]["rows"] == built["rows"], "the Glue job's result file"
    assert len(result["expectations"]) == extra["expectations"] == result["evaluated"]


def test_failed_validation_fails_the_task_naming_the_expectation_and_emits_nothing(home):
    from airflow.sdk.exceptions import AirflowFailException

    from mlops.validation.outcome import ValidationFailedError
    from mlops_airflow.assets import VALIDATED_FEATURES
    from mlops_airflow.operators import features_local as ops

    validated = home / "lake" / "curated" / "features" / "_validated.json"
    before = validated.read_text()  # left by the passing run of the test above
    outlet_events = {VALIDATED_FEATURES: SimpleNamespace(extra=None)}
    with pytest.raises(ValidationFailedError, match="rows, expected 1000000") as caught:
        ops.LocalValidateFeaturesOperator(task_id="validate_features", run_key="bad", min_rows="1000000").execute(
            {"outlet_events": outlet_events}
        )
    message = str(caught.value)
    assert "expect_table_row_count_to_be_between: " in message and "min_rows / max_rows Params" in message
    assert "Data Docs: file://" in message and message.count("\n  - ") == len(caught.value.failures) == 1
    assert isinstance(caught.value, AirflowFailException), "a failed gate is not retried"
    assert outlet_events[VALIDATED_FEATURES].extra is None, "nothing is emitted"
    assert validated.read_text() == before, "a failed gate does not move the validated pointer"
    docs = home / "lake" / "reports" / "features" / "bad" / "data_docs" / "index.html"
    assert docs.exists(), "Data Docs are published for a failed run too"
    with pytest.raises(AirflowFailException, match=r"min_rows \(10\) is above max_rows \(5\); fix the Params"):
        ops.LocalValidateFeaturesOperator(task_id="v", run_key="bad", min_rows="10", max_rows="5").execute(
            {"outlet_events": outlet_events}
        )


def test_skip_eda_param_skips_queries_and_report(home):
    from airflow.sdk.exceptions import AirflowSkipException

    from mlops_airflow.operators.features import FeaturesEdaReportOperator
    from mlops_airflow.operators.features_local import LocalAthenaEdaQueryOperator

    with pytest.raises(AirflowSkipException):
        LocalAthenaEdaQueryOperator(task_id="q", query_name="null_rates", run_key=RUN, skip="True").execute({})
    with pytest.raises(AirflowSkipException):
        FeaturesEdaReportOperator(task_id="r", run_key=RUN, skip="True").execute({"ti": _TI({})})


def test_aws_classes_build_the_validated_requests(monkeypatch):
    monkeypatch.setenv("MLOPS_TARGET", "aws")
    from mlops.aws import athena_requests, glue_requests
    from mlops.etl.bundle import features_bundle
    from mlops_airflow import targets
    from mlops_airflow.assets import VALIDATED_FEATURES
    from mlops_airflow.operators import features_aws

    targets.pipeline_config.cache_clear()
    config, lake = targets.pipeline_config(), targets.lake()
    glue = targets.step_operator("build_features")(task_id="build_features", run_key=RUN, sample_fraction="0.5")
    assert glue.deferrable is True and {"run_key", "sample_fraction"} <= set(glue.template_fields)
    request = glue._prepare()
    bundle_uri = f"s3://mlops-artifacts-dev/{features_bundle()[1]}"
    assert request == glue_requests.start_job_run_request(lake, config, RUN, bundle_uri, 0.5)
    assert (glue.job_name, glue.script_args) == (request["JobName"], request["Arguments"])

    athena = targets.step_operator("eda_query")(task_id="eda_query", query_name="class_balance", run_key=RUN)
    assert athena.deferrable is True
    query = athena._prepare()
    assert query == athena_requests.start_query_execution_request(lake, config, "class_balance", RUN)
    assert athena._describe("abc")["output_uri"] == "s3://mlops-lake-dev/athena-results/abc.csv"

    validate = targets.step_operator("validate_features")(task_id="validate_features", run_key=RUN, min_rows="50")
    assert validate.deferrable is True and {"run_key", "min_rows", "max_rows"} <= set(validate.template_fields)
    assert validate.outlets == [VALIDATED_FEATURES]
    code_uri = "s3://mlops-artifacts-dev/glue/libs/mlops_validation-0123456789abcdef.zip"
    request = validate._prepare(code_uri)
    assert request == glue_requests.start_validation_job_run_request(lake, config, RUN, code_uri, 50, None)
    assert (validate.job_name, validate.script_args["--extra-py-files"]) == ("mlops-dev-validate-features", code_uri)

    catalog = targets.step_operator("register_catalog")(task_id="register_catalog")
    assert isinstance(catalog, features_aws.AwsCatalogRegisterOperator)
    targets.pipeline_config.cache_clear()
