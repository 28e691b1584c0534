"""Local stand-ins of the training stage: the same requests on this machine, the SQLite model registry.

Jobs run through :mod:`mlops.sagemaker_local` (script mode in an ``/opt/ml``-shaped job folder, a
subprocess of the SageMaker runtime); the registry is :func:`mlops.registry.local_registry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_airflow.operators.base import AWS_CONNECTION, DEFERRAL, SAGEMAKER_JOB, LocalSageMakerStandIn, LocalStandIn
from mlops_airflow.operators.training import FindChampionStep, RegisterModelStep, SageMakerJobStep
from mlops_airflow.rendered import as_dict

if TYPE_CHECKING:
    from airflow.sdk import Context


class LocalTrainingJobOperator(SageMakerJobStep, LocalSageMakerStandIn):
    """local ``train``: the CreateTrainingJob request through the local runner, behind the step cache."""

    kind = "training"
    template_fields: Sequence[str] = ("config", "force")
    ignored_provider_args = (*AWS_CONNECTION, *DEFERRAL, *SAGEMAKER_JOB)

    def run(self) -> dict[str, Any]:
        from mlops.sagemaker_local import run_training_job

        return run_training_job(self.config)

    def execute(self, context: Context) -> dict[str, Any]:
        self.config = as_dict(self.config)
        cached, key, prints = self.lookup()
        if cached is not None:
            return self.finish(cached, key, prints, hit=True)
        return self.finish(self.run(), key, prints, hit=False)


class LocalProcessingJobOperator(LocalTrainingJobOperator):
    """local ``evaluate``, ``baseline_job``, ``drift_job``: the CreateProcessingJob request through the local runner."""

    kind = "processing"

    def run(self) -> dict[str, Any]:
        from mlops.sagemaker_local import run_processing_job

        return run_processing_job(self.config)


class SqliteRegistry:
    """For stand-ins: the local model registry (SQLite, ModelPackage semantics); also read by serving."""

    def registry_client(self) -> Any:
        from mlops.registry import local_registry

        return local_registry()


class LocalFindChampionOperator(FindChampionStep, LocalStandIn, SqliteRegistry):
    """local ``find_champion``: the newest Approved version in the SQLite registry."""


class LocalRegisterModelOperator(RegisterModelStep, LocalStandIn, SqliteRegistry):
    """local ``register``: the gate, then CreateModelPackage in the SQLite registry."""
