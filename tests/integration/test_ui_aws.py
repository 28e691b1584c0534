"""The UI plugin's aws readers against a moto server on 127.0.0.1: reports from S3 and the SageMaker
Model Registry, endpoint and training jobs, through the Amazon provider's hooks on ``aws_default``.

The pages call these readers (``mlops_airflow.ui.app``); the pages themselves are tested on the
local target in ``test_ui_plugin.py``, the same code above the readers.
"""

from __future__ import annotations

import pytest

from tests.aws.moto_server import MotoServer

REGION = "eu-west-1"
BUCKET = "mlops-lake-ui-test"
GROUP = "mlops-order-outcome"
ENDPOINT = "mlops-ui-orders"
ROLE = "arn:aws:iam::123456789012:role/mlops-ui-sagemaker"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"


@pytest.fixture(scope="module")
def aws():
    """moto with a lake bucket, a training job, two model versions and an endpoint serving the first."""
    from mlops_airflow.targets import pipeline_config
    from mlops_airflow.ui import app

    with MotoServer(REGION) as server, pytest.MonkeyPatch.context() as patch:
        for name, value in server.environment().items():
            patch.setenv(name, value)
        patch.setenv("MLOPS_TARGET", "aws")
        patch.setenv("MLOPS__AWS__REGION", REGION)
        patch.setenv("MLOPS__AWS__LAKE_BUCKET", BUCKET)
        patch.setenv("MLOPS__SERVING__ENDPOINT_NAME", ENDPOINT)
        pipeline_config.cache_clear()
        app.backend.cache_clear()
        s3, sagemaker = server.client("s3"), server.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        for key, body in {
            "models/evaluation/eval-1/report.html": "<h1>Model evaluation</h1>",
            "models/evaluation/eval-1/pr_curves.png": "png",
            "reports/features/r1/data_docs/index.html": "<h1>Data Docs</h1>",
            "reports/features/r1/data_docs/validations/s/r/result.html": "<h1>result</h1>",
            "reports/features/r1/data_docs/static/styles/data_docs.css": "body {}",
            "curated/features/_current.json": '{"uri": "s3://..."}',
        }.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
        sagemaker.create_training_job(
            TrainingJobName="mlops-train-1",
            AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            RoleArn=ROLE,
            InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/curated/features/snapshots/s1/split=train"}}}],
            OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/models/training"},
            ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
        )  # fmt: skip
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        for version, status in ((1, "Approved"), (2, "PendingManualApproval")):
            sagemaker.create_model_package(
                ModelPackageGroupName=GROUP,
                ModelApprovalStatus=status,
                CustomerMetadataProperties={
                    "map": f"0.{60 + version}0000",
                    "training_job": "mlops-train-1",
                    "run_id": "manual__1",
                    "evaluation_report": f"s3://{BUCKET}/models/evaluation/eval-1/report.html",
                },
                InferenceSpecification={
                    "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/v{version}/model.tar.gz"}],
                    "SupportedContentTypes": ["application/json"],
                    "SupportedResponseMIMETypes": ["application/json"],
                },
            )
        v1 = {"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/v1/model.tar.gz"}
        sagemaker.create_model(ModelName="m-v1", ExecutionRoleArn=ROLE, PrimaryContainer=v1)
        sagemaker.create_endpoint_config(EndpointConfigName="cfg-v1", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "m-v1", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}])  # fmt: skip
        sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="cfg-v1")
        try:
            yield sagemaker
        finally:
            pipeline_config.cache_clear()
            app.backend.cache_clear()


def test_aws_backend_comes_from_the_target_switch(aws):
    from mlops_airflow.ui import app
    from mlops_airflow.ui.backends import AwsUiBackend

    assert isinstance(app.backend(), AwsUiBackend)
    assert app.served_lake().root == f"s3://{BUCKET}"


def test_reports_are_read_from_s3_and_unsafe_keys_never_reach_it(aws):
    from mlops_airflow.ui import app
    from mlops_airflow.ui.lake_files import ObjectMissing, UnsafeKey, html_pages_below, read_object

    served, s3 = app.served_lake(), app.backend().s3()
    assert read_object(served, "models/evaluation/eval-1/report.html", s3) == b"<h1>Model evaluation</h1>"
    with pytest.raises(ObjectMissing):
        read_object(served, "models/evaluation/eval-1/missing.html", s3)
    assert html_pages_below(served, "reports/features/r1/data_docs", s3) == [
        "reports/features/r1/data_docs/index.html",
        "reports/features/r1/data_docs/validations/s/r/result.html",
    ]
    for key in ("curated/features/_current.json", "models/../curated/features/_current.json"):
        with pytest.raises(UnsafeKey):
            read_object(served, key, s3)


def test_registry_rows_and_a_decision_go_through_sagemaker(aws):
    from mlops.registry import list_packages, set_approval
    from mlops_airflow.ui import app

    _, rows = app._registry_rows()
    assert [(r.version, r.status, r.pending) for r in rows] == [
        (2, "PendingManualApproval", True),
        (1, "Approved", False),
    ]
    first = rows[1]
    assert first.map == pytest.approx(0.61) and first.training_job == "mlops-train-1"
    assert first.snapshot == "curated/features/snapshots/s1"
    assert first.evaluation_key == "models/evaluation/eval-1/report.html"
    assert len(first.serving) == 1 and first.serving[0].startswith(f"{ENDPOINT}/AllTraffic 100 %")
    assert rows[0].serving == ()

    set_approval(GROUP, 2, "Rejected", description="test", client=app.backend().registry())
    statuses = {p["version"]: p["approval_status"] for p in list_packages(GROUP, aws)}
    assert statuses == {1: "Approved", 2: "Rejected"}
