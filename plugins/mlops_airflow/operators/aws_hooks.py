"""What the ``*_aws`` modules share: S3 through the provider's hook, and the provider's "not found" rule.

Imported only by aws classes (the provider and botocore are imported here at module level).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from botocore.exceptions import ClientError

#: The error code SageMaker's Describe* calls answer for a name that does not exist; the provider
#: reads it the same way (``SageMakerBaseOperator._check_if_resource_exists``).
NOT_FOUND_CODE = "ValidationException"


def describe_or_none(describe: Callable[[str], dict[str, Any]], name: str) -> dict[str, Any] | None:
    """``describe(name)``, or ``None`` when SageMaker says the resource does not exist."""
    try:
        return describe(name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == NOT_FOUND_CODE:
            return None
        raise


class S3ThroughHook:
    """For aws classes: the lake's S3 client is the provider's S3Hook client of the task's connection."""

    aws_conn_id: str | None

    def s3_client(self) -> Any:
        """A boto3 S3 client (credentials, region and endpoint from the Airflow connection)."""
        return S3Hook(aws_conn_id=self.aws_conn_id).get_conn()
