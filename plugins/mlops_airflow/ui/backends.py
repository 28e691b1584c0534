"""Where the UI reads from, per target (chosen by :func:`mlops_airflow.targets.ui_backend_class`).

Both classes answer the same calls with clients that speak boto3's shapes:

- ``s3()``: the S3 client for an ``s3://`` lake (None for the ``file://`` lake);
- ``registry()``: the model registry (SageMaker's, or the SQLite one);
- ``sagemaker()``: DescribeEndpoint / DescribeEndpointConfig / DescribeModel;
- ``training_job(name)``: DescribeTrainingJob, or None when it cannot be told.

The aws clients come from the Amazon provider's hooks on the pipeline's connection
(``aws.conn_id``); nothing is imported before a page needs it.
"""

from __future__ import annotations

import json
import logging
import re
from functools import cached_property
from typing import Any

from mlops.config import PipelineConfig

log = logging.getLogger(__name__)
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def valid_job_name(name: Any) -> bool:
    """A SageMaker job name (also what keeps a local describe.json path inside the jobs folder)."""
    return isinstance(name, str) and bool(JOB_NAME.match(name))


class LocalUiBackend:
    """local: the ``file://`` lake, the SQLite registry, the local endpoint stand-in, local job folders."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config

    def s3(self) -> Any:
        return None

    def registry(self) -> Any:
        from mlops.registry import local_registry

        return local_registry()

    def sagemaker(self) -> Any:
        from mlops.serving.manager import LocalSageMaker

        return LocalSageMaker(self.config.serving)

    def training_job(self, name: str) -> dict[str, Any] | None:
        from mlops.sagemaker_local.layout import jobs_root

        if not valid_job_name(name):
            return None
        path = jobs_root() / "training" / name / "describe.json"
        return json.loads(path.read_text()) if path.is_file() else None


class AwsUiBackend:
    """aws: S3 and SageMaker (Model Registry, endpoints, training jobs) through the provider's hooks."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config

    @cached_property
    def _s3(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.config.aws.conn_id).get_conn()

    @cached_property
    def _sagemaker(self) -> Any:
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        return SageMakerHook(aws_conn_id=self.config.aws.conn_id).conn

    def s3(self) -> Any:
        return self._s3

    def registry(self) -> Any:
        return self._sagemaker

    def sagemaker(self) -> Any:
        return self._sagemaker

    def training_job(self, name: str) -> dict[str, Any] | None:
        if not valid_job_name(name):
            return None
        try:
            return self._sagemaker.describe_training_job(TrainingJobName=name)
        except Exception as exc:  # botocore ClientError: no such job, or no permission to describe it
            log.warning("cannot describe training job %s: %s", name, exc)
            return None
