"""Every SageMaker request the training stage builds is valid for botocore's service model, and the
registry code runs unchanged against boto3's sagemaker client (moto) and the local SQLite registry."""

from __future__ import annotations

import json

import pytest

from mlops import registry
from mlops.aws import sagemaker_requests as sr
from mlops.config import ConfigError, load_config
from mlops.training.steps import LOCAL_ROLE_ARN
from tests.aws.botocore_validation import assert_valid_request

IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/mlops-sagemaker"
RUN_ID = "asset_triggered__2026-11-24T10:00:00.123456+00:00"
CHANNELS = {s: f"s3://mlops-lake-dev/curated/features/snapshots/r1/split={s}" for s in ("train", "validation", "test")}


@pytest.fixture(scope="module")
def config():
    return load_config(environ={})


def _training(config, **hyperparameters):
    return sr.training_job_request(
        config,
        name=sr.job_name("mlops", "train", RUN_ID, "2026-11-24T10:00:00"),
        image_uri=IMAGE,
        role_arn=ROLE,
        source_uri="s3://mlops-lake-dev/models/code/0123456789abcdef/sourcedir.tar.gz",
        channels=CHANNELS,
        output_uri="s3://mlops-lake-dev/models/training",
        hyperparameters=hyperparameters,
        tags={"mlops:run_id": RUN_ID},
    )


def test_training_job_request_is_valid(config):
    request = _training(config, n_estimators=500)
    assert_valid_request("sagemaker", "CreateTrainingJob", request)
    hp = request["HyperParameters"]
    assert json.loads(hp["n_estimators"]) == 500 and json.loads(hp["sagemaker_program"]) == "train.py"
    assert {c["ChannelName"] for c in request["InputDataConfig"]} == {"train", "validation", "test"}
    names = [m["Name"] for m in request["AlgorithmSpecification"]["MetricDefinitions"]]
    assert "validation:mAP" in names and "test:onnx_max_abs_diff" in names
    assert json.loads(hp["decision_objective"]) == "macro_f1" and "cost_matrix" not in hp
    assert json.loads(hp["parity_tolerance"]) == 1e-4 and json.loads(hp["parity_rows"]) == 20_000


def test_parity_rows_reach_train_py_and_a_negative_count_is_refused_at_load():
    hp = _training(load_config(environ={"MLOPS__TRAINING__PARITY_ROWS": "0"}))["HyperParameters"]
    assert json.loads(hp["parity_rows"]) == 0  # every test row
    with pytest.raises(ConfigError, match="parity_rows"):
        load_config(environ={"MLOPS__TRAINING__PARITY_ROWS": "-5"})


def test_a_configured_cost_matrix_reaches_train_py_as_one_json_argument():
    matrix = "{returned: {delivered: 5}, delivered: {returned: 1}}"
    config = load_config(environ={"MLOPS__TRAINING__DECISION": f"{{objective: cost, cost_matrix: {matrix}}}"})
    hp = _training(config)["HyperParameters"]
    assert json.loads(hp["decision_objective"]) == "cost"
    assert json.loads(json.loads(hp["cost_matrix"])) == {"delivered": {"returned": 1.0}, "returned": {"delivered": 5.0}}


@pytest.mark.parametrize("champion", [None, "s3://mlops-lake-dev/models/training/old/output/model.tar.gz"])
def test_evaluation_job_request_is_valid(config, champion):
    request = sr.evaluation_job_request(
        config,
        name=sr.job_name("mlops", "eval", RUN_ID, "2026-11-24T10:00:00"),
        image_uri=IMAGE,
        role_arn=ROLE,
        code_uri="s3://mlops-lake-dev/models/code/0123456789abcdef/source/",
        model_uri="s3://mlops-lake-dev/models/training/j/output/model.tar.gz",
        test_uri=CHANNELS["test"],
        output_uri="s3://mlops-lake-dev/models/evaluation/j",
        champion_model_uri=champion,
    )
    assert_valid_request("sagemaker", "CreateProcessingJob", request)
    inputs = {i["InputName"] for i in request["ProcessingInputs"]}
    assert ("champion" in inputs) == (champion is not None)
    assert all(
        t.startswith("/opt/ml/") or not t.startswith("/") for t in request["AppSpecification"]["ContainerArguments"]
    )


def test_evaluation_after_drift_is_told_the_trigger_and_the_drift_point(config):
    request = sr.evaluation_job_request(
        config,
        name=sr.job_name("mlops", "eval", RUN_ID, "2026-11-24T10:00:00"),
        image_uri=IMAGE,
        role_arn=ROLE,
        code_uri="s3://mlops-lake-dev/models/code/0123456789abcdef/source/",
        model_uri="s3://mlops-lake-dev/models/training/j/output/model.tar.gz",
        test_uri=CHANNELS["test"],
        output_uri="s3://mlops-lake-dev/models/evaluation/j",
        recent={"trigger": "input_drift", "since": "2026-06-02T00:00:00"},
    )
    assert_valid_request("sagemaker", "CreateProcessingJob", request)
    arguments = request["AppSpecification"]["ContainerArguments"]
    pairs = dict(zip(arguments[::2], arguments[1::2], strict=False))
    assert pairs["--trigger"] == "input_drift" and pairs["--recent-since"] == "2026-06-02T00:00:00"
    assert pairs["--recent-days"] == str(config.training.recent_days)


@pytest.mark.parametrize(("policy", "status"), [("auto", "Approved"), ("manual", "PendingManualApproval")])
def test_model_package_requests_are_valid(policy, status):
    config = load_config(environ={"MLOPS__REGISTRY__APPROVAL_POLICY": policy})
    request = sr.model_package_request(
        config,
        image_uri=IMAGE,
        model_data_url="s3://mlops-lake-dev/models/training/j/output/model.tar.gz",
        evaluation_uri="s3://mlops-lake-dev/models/evaluation/j/evaluation.json",
        description="test mAP 0.61",
        metadata={"map": "0.610000", "training_job": "j", "champion_map": "", "champion_version": ""},
        training_job_arn="arn:aws:sagemaker:eu-west-1:123456789012:training-job/j",
    )
    assert_valid_request("sagemaker", "CreateModelPackage", request)  # first version: no champion values
    assert set(request["CustomerMetadataProperties"]) == {"map", "training_job"}
    assert request["ModelApprovalStatus"] == status
    assert request["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith("/evaluation.json")
    assert_valid_request(
        "sagemaker", "CreateModelPackageGroup", sr.model_package_group_request("mlops-order-outcome", "d")
    )
    update = sr.update_approval_request("arn:aws:sagemaker:eu-west-1:123456789012:model-package/g/1", "Approved", "ok")
    assert_valid_request("sagemaker", "UpdateModelPackage", update)
    with pytest.raises(ValueError, match="must be Approved, Rejected or PendingManualApproval"):
        sr.update_approval_request("arn", "Deployed")


def test_local_role_placeholder_and_names_follow_sagemaker_rules(config):
    assert_valid_request("sagemaker", "CreateTrainingJob", {**_training(config), "RoleArn": LOCAL_ROLE_ARN})
    first = sr.job_name("mlops", "train", RUN_ID, "2026-11-24T10:00:00")
    assert first == sr.job_name("mlops", "train", RUN_ID, "2026-11-24T10:00:00")  # idempotent per run
    assert first != sr.job_name("mlops", "train", RUN_ID + "x", "2026-11-24T10:00:00")
    assert first.startswith("mlops-train-20261124100000-") and len(first) <= 63
    with pytest.raises(ValueError, match="naming rule"):
        sr.job_name("mlops_", "train", RUN_ID, "2026-11-24T10:00:00")


@pytest.mark.slow
def test_image_uri_resolves_offline_per_region(config):
    assert sr.resolve_image_uri(config.training, "eu-west-1").endswith("/sagemaker-scikit-learn:1.9-0-cpu-py3")
    assert ".us-east-1." in sr.resolve_image_uri(config.training, "us-east-1")
    pinned = load_config(environ={"MLOPS__TRAINING__IMAGE_URI": "my/image:1"})
    assert sr.resolve_image_uri(pinned.training, "eu-west-1") == "my/image:1"


def test_registry_functions_run_against_boto3_sagemaker(fake_aws_credentials):
    from moto import mock_aws

    config = load_config(environ={"MLOPS__REGISTRY__APPROVAL_POLICY": "manual"})
    with mock_aws():
        import boto3

        client = boto3.client("sagemaker", region_name="eu-west-1")
        group = config.registry.model_package_group
        registry.ensure_group(client, group)
        registry.ensure_group(client, group)
        request = sr.model_package_request(
            config,
            image_uri=IMAGE,
            model_data_url="s3://b/m.tar.gz",
            evaluation_uri="s3://b/e.json",
            description="d",
            metadata={"map": "0.7"},
        )
        arn = client.create_model_package(**request)["ModelPackageArn"]
        packages = registry.list_packages(group, client)
        assert [(p["version"], p["approval_status"], p["map"]) for p in packages] == [(1, "PendingManualApproval", 0.7)]
        assert registry.latest_approved(client, group) is None
        assert registry.approve(group, 1, client=client)["arn"] == arn
        assert registry.latest_approved(client, group)["version"] == 1


def test_plan_on_an_s3_lake_publishes_code_and_finds_split_channels(tmp_path, fake_aws_credentials):
    from moto import mock_aws

    from mlops.lake import Lake
    from mlops.training import cache, lake_io, steps, synthetic

    config = load_config(environ={"MLOPS__TRAINING__ROLE_ARN": ROLE})
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket=config.aws.lake_bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        lake = Lake.for_target(config, "aws")
        synthetic.write_dataset(synthetic.curated_features(300, seed=4), tmp_path / "snap")
        snapshot = lake_io.join(lake.curated("features"), "snapshots", "r1")
        for path in sorted((tmp_path / "snap").rglob("*.parquet")):
            lake_io.write_bytes(
                lake_io.join(snapshot, path.relative_to(tmp_path / "snap").as_posix()), path.read_bytes(), s3
            )
        pointer = json.dumps({"uri": snapshot, "snapshot_id": "r1"}).encode()
        lake_io.write_bytes(lake_io.join(lake.curated("features"), "_validated.json"), pointer, s3)

        plan = steps.training_plan(
            config,
            lake,
            run_id=RUN_ID,
            run_after="2026-11-24T10:00:00",
            curated_uri=lake.curated("features"),
            image_uri=IMAGE,
            s3=lambda: s3,
        )
        request = plan["training_request"]
        assert_valid_request("sagemaker", "CreateTrainingJob", request)
        assert plan["channels"]["train"] == f"{snapshot}/split=train" and request["RoleArn"] == ROLE
        assert lake_io.exists(plan["source_uri"], s3) and lake_io.exists(plan["code_uri"] + "evaluate.py", s3)
        key, prints = cache.cache_key(request, s3=s3)
        assert set(prints) == {*plan["channels"].values(), plan["source_uri"]}
        assert cache.cache_key(request, s3=s3)[0] == key


def test_aws_job_operators_run_against_moto_and_cache_in_the_s3_lake(monkeypatch, tmp_path, fake_aws_credentials):
    """The aws operators (provider subclasses) create the job from the same request, then hit the cache."""
    from moto import mock_aws

    from mlops.lake import Lake
    from mlops.training import lake_io, steps, synthetic
    from mlops_airflow.targets import pipeline_config

    monkeypatch.setenv("MLOPS_TARGET", "aws")
    monkeypatch.setenv("MLOPS__TRAINING__ROLE_ARN", ROLE)
    pipeline_config.cache_clear()
    try:
        with mock_aws():
            import boto3

            from mlops_airflow.operators.training_aws import AwsProcessingJobOperator, AwsTrainingJobOperator

            config = pipeline_config()
            s3 = boto3.client("s3", region_name="eu-west-1")
            s3.create_bucket(
                Bucket=config.aws.lake_bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
            )
            lake = Lake.for_target(config, "aws")
            synthetic.write_dataset(synthetic.curated_features(300, seed=4), tmp_path / "snap")
            for path in sorted((tmp_path / "snap").rglob("*.parquet")):
                key = path.relative_to(tmp_path / "snap").as_posix()
                lake_io.write_bytes(lake_io.join(lake.curated("features"), key), path.read_bytes(), s3)
            plan = steps.training_plan(
                config,
                lake,
                run_id=RUN_ID,
                run_after="2026-11-24T10:00:00",
                curated_uri=lake.curated("features"),
                image_uri=IMAGE,
                s3=s3,
            )
            common = {"aws_conn_id": None, "deferrable": False, "print_log": False, "check_interval": 1}
            first = AwsTrainingJobOperator(task_id="train", config=plan["training_request"], **common).execute({})
            assert first["CacheHit"] is False and first["Training"]["TrainingJobStatus"] == "Completed"
            model_uri = first["Training"]["ModelArtifacts"]["S3ModelArtifacts"]
            lake_io.write_bytes(model_uri, b"model", s3)  # moto runs nothing; stand in for the artifact

            rerun = steps.training_plan(
                config,
                lake,
                run_id=RUN_ID + "-2",
                run_after="2026-11-24T11:00:00",
                curated_uri=lake.curated("features"),
                image_uri=IMAGE,
                s3=s3,
            )
            second = AwsTrainingJobOperator(task_id="train", config=rerun["training_request"], **common).execute({})
            assert (
                second["CacheHit"] is True
                and second["Training"]["TrainingJobName"] == first["Training"]["TrainingJobName"]
            )

            request = steps.evaluation_request(
                config,
                lake,
                plan=plan,
                training=first["Training"],
                champion=None,
                run_id=RUN_ID,
                run_after="2026-11-24T10:00:00",
            )
            evaluated = AwsProcessingJobOperator(task_id="evaluate", config=request, **common).execute({})
            assert evaluated["Processing"]["ProcessingJobName"] == request["ProcessingJobName"]
    finally:
        pipeline_config.cache_clear()
