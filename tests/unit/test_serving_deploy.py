"""The deploy DAG's helpers: approved models only, model resolution order, the operators' classes."""

from __future__ import annotations

import pytest

from mlops.serving.deploy_model import NotDeployable, resolve_deploy_model

GROUP = "orders"
PACKAGES = [
    {"version": 1, "approval_status": "Approved", "model_data_url": "s3://b/1/model.tar.gz", "arn": "arn:1"},
    {"version": 2, "approval_status": "Rejected", "model_data_url": "s3://b/2/model.tar.gz", "arn": "arn:2"},
    {"version": 3, "approval_status": "Approved", "model_data_url": "s3://b/3/model.tar.gz", "arn": "arn:3"},
    {
        "version": 4,
        "approval_status": "PendingManualApproval",
        "model_data_url": "s3://b/4/model.tar.gz",
        "arn": "arn:4",
    },
]


def _resolve(**kwargs):
    return resolve_deploy_model(group=GROUP, packages=lambda: PACKAGES, **kwargs)


def test_latest_approved_by_default():
    model = _resolve(model_version="latest approved")
    assert model == {
        "model_package_group": GROUP,
        "version": 3,
        "model_data_url": "s3://b/3/model.tar.gz",
        "approval_status": "Approved",
        "model_package_arn": "arn:3",
    }


def test_explicit_version_and_artifact():
    assert _resolve(model_version="1")["model_data_url"] == "s3://b/1/model.tar.gz"
    assert _resolve(model_data_url="s3://b/3/model.tar.gz")["version"] == 3
    with pytest.raises(NotDeployable, match="no version 9"):
        _resolve(model_version=9)
    with pytest.raises(NotDeployable, match="not a registered model package"):
        _resolve(model_data_url="s3://elsewhere/model.tar.gz")


@pytest.mark.parametrize("version", ["2", "4"])
def test_unapproved_versions_are_refused(version):
    with pytest.raises(NotDeployable, match="not 'Approved'"):
        _resolve(model_version=version)


def test_event_is_used_but_the_registry_decides_approval():
    event = {
        "model_package_group": GROUP,
        "version": 3,
        "approval_status": "Approved",
        "model_data_url": "s3://b/3/model.tar.gz",
        "model_package_arn": "arn:3",
    }
    assert _resolve(event_extras=[event])["version"] == 3
    stale = {
        **event,
        "version": 4,
        "model_data_url": "s3://b/4/model.tar.gz",
        "model_package_arn": "arn:4",
        "approval_status": "Approved",
    }  # approved when emitted, pending in the registry now
    with pytest.raises(NotDeployable, match="PendingManualApproval"):
        _resolve(event_extras=[stale])
    unknown = {**event, "version": 7, "model_data_url": "s3://other/model.tar.gz", "model_package_arn": "arn:7"}
    with pytest.raises(NotDeployable, match="registry does not have"):
        _resolve(event_extras=[unknown])


def test_no_approved_version():
    with pytest.raises(NotDeployable, match="no Approved version"):
        resolve_deploy_model(group=GROUP, packages=lambda: PACKAGES[1:2])


def test_local_endpoint_operator_checks_the_operation():
    """The stand-in keeps the provider's rule: ``operation`` is create or update (the arguments' parity is
    tests/unit/test_step_signatures.py)."""
    from mlops_airflow.operators.serving_local import LocalSageMakerEndpointOperator

    config = {"EndpointName": "e", "EndpointConfigName": "c"}
    local = LocalSageMakerEndpointOperator(task_id="t", config=config, operation="Update", check_interval=5)
    assert local.operation == "update" and local.template_fields == ("config",)
    with pytest.raises(ValueError, match="create"):
        LocalSageMakerEndpointOperator(task_id="t2", config=config, operation="delete")


def test_aws_classes_are_provider_subclasses():
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerEndpointOperator, SageMakerModelOperator

    from mlops_airflow.operators import serving, serving_aws

    assert issubclass(serving_aws.AwsSageMakerEndpointOperator, SageMakerEndpointOperator)
    assert issubclass(serving_aws.AwsSageMakerModelOperator, SageMakerModelOperator)
    assert issubclass(serving_aws.AwsResolveDeployModelOperator, serving.ResolveModelStep)
