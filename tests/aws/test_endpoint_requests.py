"""Every SageMaker request the serving stage builds is valid for botocore's service model."""

from __future__ import annotations

import pytest

from mlops.aws import endpoint_requests as er
from mlops.config import PipelineConfig, ServingConfig, ServingVariant
from tests.aws.botocore_validation import assert_valid_request

IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
MODEL_URL = "s3://mlops-artifacts-dev/models/mlops-order-outcome/3/model.tar.gz"


def _requests(**serving):
    config = PipelineConfig(serving=ServingConfig(**serving))
    return er.deploy_requests(
        config,
        model_data_url=MODEL_URL,
        model_version=3,
        run_id="scheduled__2026-11-24T10:00:00+00:00",
        image_uri=IMAGE,
        capture_uri="s3://mlops-lake-dev/capture",
    )


@pytest.mark.parametrize("strategy", ["canary", "all_at_once"])
def test_deploy_requests_are_valid(strategy):
    requests = _requests(strategy=strategy, rollback_alarms=("mlops-orders-5xx", "mlops-orders-latency"))
    for model in requests["models"]:
        assert_valid_request("sagemaker", "CreateModel", model)
    assert_valid_request("sagemaker", "CreateEndpointConfig", requests["endpoint_config"])
    assert_valid_request("sagemaker", "CreateEndpoint", requests["endpoint"])
    update = er.update_endpoint_request(
        endpoint_name="mlops-orders",
        endpoint_config_name=requests["endpoint_config"]["EndpointConfigName"],
        deployment=requests["endpoint"]["DeploymentConfig"],
    )
    assert_valid_request("sagemaker", "UpdateEndpoint", update)


def test_deployment_config_canary_with_rollback_alarms():
    config = er.deployment_config(
        strategy="canary",
        canary_percent=10,
        bake_seconds=300,
        termination_wait_seconds=120,
        alarm_names=["five-xx"],
        max_execution_seconds=1800,
    )
    policy = config["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "WaitIntervalInSeconds": 300,
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
    }
    assert policy["TerminationWaitInSeconds"] == 120 and policy["MaximumExecutionTimeoutInSeconds"] == 1800
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "five-xx"}]}
    assert_valid_request(
        "sagemaker", "UpdateEndpoint", {"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": config}
    )


def test_no_alarms_means_no_auto_rollback_block():
    config = er.deployment_config(strategy="all_at_once", canary_percent=10, bake_seconds=0, termination_wait_seconds=0)
    assert "AutoRollbackConfiguration" not in config
    assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"


def test_data_capture_config():
    requests = _requests(capture_sampling_percentage=25)
    capture = requests["endpoint_config"]["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == "s3://mlops-lake-dev/capture"
    assert capture["InitialSamplingPercentage"] == 25
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    assert capture["CaptureContentTypeHeader"]["CsvContentTypes"] == ["text/csv"]


def test_model_runs_code_inference_py_of_the_package():
    model = _requests()["models"][0]
    assert model["PrimaryContainer"]["ModelDataUrl"] == MODEL_URL
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"


def test_names_come_from_the_run_and_are_valid():
    first, again = _requests(), _requests()
    assert first == again  # same run -> same names (idempotent)
    other = er.deploy_requests(
        PipelineConfig(),
        model_data_url=MODEL_URL,
        model_version=3,
        run_id="manual__x",
        image_uri=IMAGE,
        capture_uri="s3://b/capture",
    )
    assert other["models"][0]["ModelName"] != first["models"][0]["ModelName"]
    long = er.resource_name("a" * 50, "v123", "deadbeef", "config")
    assert len(long) <= 63 and long[0].isalnum() and long[-1].isalnum()


def test_ab_variants_with_a_champion_model():
    serving = ServingConfig(
        variants=(ServingVariant(name="challenger", weight=0.2), ServingVariant(name="champion", weight=0.8))
    )
    requests = er.deploy_requests(
        PipelineConfig(serving=serving),
        model_data_url=MODEL_URL,
        model_version=4,
        run_id="r",
        image_uri=IMAGE,
        capture_uri="s3://b/capture",
        champion_model_data_url="s3://b/models/3/model.tar.gz",
    )
    assert len(requests["models"]) == 2
    variants = {v["VariantName"]: v for v in requests["endpoint_config"]["ProductionVariants"]}
    assert variants["challenger"]["ModelName"] == requests["models"][0]["ModelName"]
    assert variants["champion"]["ModelName"] == requests["models"][1]["ModelName"]
    assert variants["champion"]["InitialVariantWeight"] == 0.8
    assert_valid_request("sagemaker", "CreateEndpointConfig", requests["endpoint_config"])


def test_validation_catches_a_bad_deployment_config():
    bad = {
        "EndpointName": "e",
        "EndpointConfigName": "c",
        "DeploymentConfig": {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "CANARY"}}},
    }
    with pytest.raises(AssertionError, match="WaitIntervalInSeconds"):
        assert_valid_request("sagemaker", "UpdateEndpoint", bad)


# ---- deployments SageMaker accepts, checked before any call (check_deployment) ------------------------


def _check(**overrides):
    arguments = {"strategy": "canary", "canary_percent": 10, "instance_count": 2, "variant_names": ["AllTraffic"],
                 "alarm_names": [], "previous_variant_names": None}  # fmt: skip
    er.check_deployment(**{**arguments, **overrides})


def test_a_canary_holds_at_most_half_the_fleet():
    _check()  # 10 % of 2 instances = 1 instance: fine
    _check(canary_percent=50, instance_count=4)
    with pytest.raises(er.DeploymentConfigError, match=r"10% canary of 1 instance\(s\) is 1 instance.*instance_count"):
        _check(instance_count=1)
    with pytest.raises(er.DeploymentConfigError, match="more than half"):
        _check(canary_percent=60, instance_count=4)
    _check(strategy="all_at_once", instance_count=1)


def test_blue_green_keeps_the_variant_names():
    _check(previous_variant_names=["AllTraffic"])
    with pytest.raises(er.DeploymentConfigError, match="keeps the variant names"):
        _check(variant_names=["champion", "challenger"], previous_variant_names=["AllTraffic"])


def test_every_variant_has_its_own_rollback_alarm():
    variants = ["champion", "challenger"]
    _check(variant_names=variants, alarm_names=["mlops-dev-champion-5xx", "mlops-dev-challenger-5xx"])
    with pytest.raises(er.DeploymentConfigError, match=r"\['challenger'\] have no rollback alarm"):
        _check(variant_names=variants, alarm_names=["mlops-dev-champion-5xx"])


def test_the_default_pipeline_config_deploys():
    from mlops.config import load_config

    config = load_config(environ={})
    er.check_deployment(
        strategy=config.serving.strategy, canary_percent=config.serving.canary_percent,
        instance_count=config.serving.instance_count, variant_names=[v.name for v in config.serving.variants],
        alarm_names=config.serving.rollback_alarms,
    )  # fmt: skip


# ---- multi-model endpoints (serving.mode: multi_model) ------------------------------------------------


def _multi_model_requests(**overrides):
    serving = ServingConfig(mode="multi_model", **overrides)
    return er.deploy_requests(
        PipelineConfig(serving=serving),
        model_data_url=MODEL_URL,
        model_version=4,
        run_id="r",
        image_uri=IMAGE,
        capture_uri="s3://mlops-lake-dev/capture",
        champion_model_data_url="s3://mlops-lake-dev/models/mlops-order-outcome/3/model.tar.gz",
        champion_version=3,
        models_uri="s3://mlops-lake-dev/models",
    )


def test_multi_model_deployment_is_one_multimodel_model_over_a_prefix():
    requests = _multi_model_requests()
    (model,) = requests["models"]
    container = model["PrimaryContainer"]
    assert container["Mode"] == "MultiModel" and container["MultiModelConfig"] == {"ModelCacheSetting": "Enabled"}
    assert container["ModelDataUrl"] == "s3://mlops-lake-dev/models/multi-model/mlops-orders/"
    assert container["Environment"]["MLOPS_MME_MAX_MODELS"] == "8"
    assert_valid_request("sagemaker", "CreateModel", model)
    assert_valid_request("sagemaker", "CreateEndpointConfig", requests["endpoint_config"])
    assert_valid_request("sagemaker", "CreateEndpoint", requests["endpoint"])
    (variant,) = requests["endpoint_config"]["ProductionVariants"]
    assert variant["ModelName"] == model["ModelName"]


def test_multi_model_deployment_stages_each_version_under_the_prefix():
    staged = _multi_model_requests()["target_models"]
    assert [t["target_model"] for t in staged] == ["v4.tar.gz", "v3.tar.gz"]
    assert staged[0] == {
        "source": MODEL_URL,
        "target": "s3://mlops-lake-dev/models/multi-model/mlops-orders/v4.tar.gz",
        "target_model": "v4.tar.gz",
    }
    for item in staged:
        copy = er.copy_object_request(item["source"], item["target"])
        assert_valid_request("s3", "CopyObject", copy)
    assert copy["CopySource"] == "mlops-lake-dev/models/mlops-order-outcome/3/model.tar.gz"
    assert _requests()["target_models"] == []  # a single-model endpoint stages nothing


def test_invoke_with_a_target_model_is_valid():
    assert_valid_request(
        "sagemaker-runtime",
        "InvokeEndpoint",
        {"EndpointName": "mlops-orders", "Body": b"{}", "ContentType": "application/json", "TargetModel": "v4.tar.gz"},
    )


def test_multi_model_requests_refuse_what_sagemaker_would():
    with pytest.raises(ValueError, match="prefix ending in '/'"):
        er.create_model_request(
            model_name="m", model_data_url=MODEL_URL, image_uri=IMAGE, role_arn=er.LOCAL_ROLE_ARN, region="eu-west-1",
            multi_model={"max_models": 1, "max_bytes": 1024, "model_cache": "Enabled"},
        )  # fmt: skip
    with pytest.raises(ValueError, match="CopyObject copies s3://"):
        er.copy_object_request("file:///tmp/model.tar.gz", "s3://b/models/multi-model/e/v1.tar.gz")
    with pytest.raises(ValueError, match="needs models_uri"):
        er.deploy_requests(
            PipelineConfig(serving=ServingConfig(mode="multi_model")), model_data_url=MODEL_URL, model_version=1,
            run_id="r", image_uri=IMAGE, capture_uri="s3://b/capture",
        )  # fmt: skip


def test_config_refuses_ab_variants_on_a_multi_model_endpoint(tmp_path):
    from mlops.config import ConfigError, load_config

    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "serving:\n  mode: multi_model\n  variants:\n    - {name: champion, weight: 0.5}\n"
        "    - {name: challenger, weight: 0.5}\n"
    )
    with pytest.raises(ConfigError, match=r"needs serving\.mode: single"):
        load_config(path, environ={})
    path.write_text("serving:\n  mode: multi_model\n  multi_model: {max_models: 0}\n")
    with pytest.raises(ConfigError, match=r"serving\.multi_model\.max_models"):
        load_config(path, environ={})
    path.write_text("serving:\n  mode: multimodel\n")
    with pytest.raises(ConfigError, match=r"serving\.mode"):
        load_config(path, environ={})


# ---- start-up timeouts: the container's start includes the offline pip install from code/wheels ---------


def test_startup_timeouts_reach_the_variant_and_are_valid():
    requests = _requests(health_check_timeout_seconds=900, model_download_timeout_seconds=300)
    variant = requests["endpoint_config"]["ProductionVariants"][0]
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 900
    assert variant["ModelDataDownloadTimeoutInSeconds"] == 300
    assert_valid_request("sagemaker", "CreateEndpointConfig", requests["endpoint_config"])


def test_default_health_check_timeout_covers_a_start_and_download_timeout_is_left_to_sagemaker():
    from mlops.config import load_config

    serving = load_config(environ={}).serving
    variant = _requests(**serving.model_dump(include={"health_check_timeout_seconds"}))["endpoint_config"]
    variant = variant["ProductionVariants"][0]
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == serving.health_check_timeout_seconds >= 300
    assert "ModelDataDownloadTimeoutInSeconds" not in variant


def test_startup_timeouts_outside_sagemakers_range_are_refused_before_any_call():
    with pytest.raises(ValueError, match="health_check_timeout_seconds"):
        ServingConfig(health_check_timeout_seconds=59)
    with pytest.raises(ValueError, match="model_download_timeout_seconds"):
        ServingConfig(model_download_timeout_seconds=3601)
    with pytest.raises(er.DeploymentConfigError, match="60 to 3600"):
        er.production_variant(variant_name="A", model_name="m", weight=1, instance_type="ml.m5.large",
                              instance_count=1, health_check_timeout_seconds=30)  # fmt: skip
    request = {"EndpointConfigName": "c", "ProductionVariants": [
        {"VariantName": "A", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
         "ContainerStartupHealthCheckTimeoutInSeconds": 30}]}  # fmt: skip
    with pytest.raises(AssertionError):  # botocore's service model agrees: its minimum is 60
        assert_valid_request("sagemaker", "CreateEndpointConfig", request)


@pytest.mark.parametrize("variants", [None, "ab"])
def test_every_model_can_find_the_feature_groups_of_raw_orders(variants):
    """inference.py featurizes raw orders from the online store: each container knows the groups' prefix and
    its region (the execution role may BatchGetRecord on exactly these groups, infra/cfn/iam.yaml)."""
    from mlops.aws.feature_store_requests import PREFIX_ENV, feature_group_name
    from mlops.schema.feature_groups import FEATURE_GROUPS

    serving = {}
    if variants:
        serving["variants"] = tuple(ServingVariant(name=n, weight=0.5) for n in ("champion", "challenger"))
    requests = er.deploy_requests(
        PipelineConfig(serving=ServingConfig(**serving)), model_data_url=MODEL_URL, model_version=3, run_id="r",
        image_uri=IMAGE, capture_uri="s3://mlops-lake-dev/capture", champion_model_data_url=MODEL_URL,
        champion_version=2,
    )  # fmt: skip
    config = PipelineConfig()
    for model in requests["models"]:
        assert_valid_request("sagemaker", "CreateModel", model)
        environment = model["PrimaryContainer"]["Environment"]
        assert environment[PREFIX_ENV] == "mlops-dev" and environment["SAGEMAKER_REGION"] == config.aws.region
        names = [f"{environment[PREFIX_ENV]}-{g.name}" for g in FEATURE_GROUPS]
        assert names == [feature_group_name(config, g) for g in FEATURE_GROUPS]
    assert len(requests["models"]) == (2 if variants else 1)
