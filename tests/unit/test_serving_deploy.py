"""The deploy DAG's helpers: approved models only, model resolution order, operator argument parity."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import pytest

from mlops_airflow.operators import serving


def _context(extra=None, params=None):
    events = {"registered": [SimpleNamespace(extra=extra)]} if extra else {}
    return {
        "params": {"model_version": "latest approved", **(params or {})},
        "triggering_asset_events": events,
        "inlet_events": {},
    }


def test_triggering_event_is_deployed_when_approved():
    model = serving.resolve_model(
        _context(
            {
                "model_package_group": "g",
                "version": 3,
                "approval_status": "Approved",
                "model_data_url": "s3://b/m/3/model.tar.gz",
            }
        )
    )
    assert model["version"] == 3 and model["model_data_url"] == "s3://b/m/3/model.tar.gz"


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected", None])
def test_unapproved_models_are_refused(status):
    with pytest.raises(ValueError, match="not 'Approved'"):
        serving.resolve_model(
            _context(
                {
                    "model_package_group": "g",
                    "version": 4,
                    "approval_status": status,
                    "model_data_url": "s3://b/m/4/model.tar.gz",
                }
            )
        )


def test_manual_trigger_with_a_model_url():
    model = serving.resolve_model(_context(params={"model_data_url": "file:///tmp/model.tar.gz", "model_version": "7"}))
    assert model["approval_status"] == "Approved" and model["version"] == "7"


def test_local_operators_take_the_provider_arguments():
    """Each local operator accepts what its provider counterpart is given in the DAG."""
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerEndpointOperator

    provider = set(inspect.signature(SageMakerEndpointOperator.__init__).parameters) - {"self", "kwargs"}
    local = serving.LocalSageMakerEndpointOperator(
        task_id="t",
        config={"EndpointName": "e", "EndpointConfigName": "c"},
        **{name: None for name in provider if name not in ("config", "operation")},
        operation="update",
    )
    assert local.operation == "update" and local.template_fields == ("config",)


def test_aws_classes_are_provider_subclasses():
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerEndpointOperator, SageMakerModelOperator

    assert issubclass(serving.AwsSageMakerEndpointOperator, SageMakerEndpointOperator)
    assert issubclass(serving.AwsSageMakerModelOperator, SageMakerModelOperator)
    assert serving.AwsEndpointSmokeTestOperator.__qualname__ == "AwsEndpointSmokeTestOperator"
