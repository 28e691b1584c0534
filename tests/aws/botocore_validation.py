"""Validate request dicts against botocore's service models (no network, no credentials)."""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters


@cache
def _service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


def assert_valid_request(service: str, operation: str, params: dict[str, Any]) -> None:
    """Raise AssertionError with botocore's report if ``params`` is not a valid ``operation`` request."""
    input_shape = _service_model(service).operation_model(operation).input_shape
    try:
        validate_parameters(params, input_shape)
    except ParamValidationError as exc:
        raise AssertionError(f"{service}.{operation} request is invalid:\n{exc}") from None


def output_member_names(service: str, shape_name: str) -> set[str]:
    """Member names of an output structure shape, e.g. dms ``ReplicationTask``."""
    return set(_service_model(service).shape_for(shape_name).members)
