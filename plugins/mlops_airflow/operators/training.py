"""The training stage's step classes: the step-cached SageMaker job, the champion lookup, the gate + registration.

What each step does on each target is told once, in the mlops_train DAG's doc_md
(``dags/mlops_train.py``); the monitoring DAG runs its two processing jobs with the same job class.
The aws classes are in :mod:`.training_aws`, the local stand-ins in :mod:`.training_local`. On aws
these classes only orchestrate: requests, boto3 calls through the provider's hooks, the gate over the
small ``evaluation.json``; pandas, sklearn, LightGBM and ONNX run in the jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from mlops_airflow.assets import REGISTERED_MODEL
from mlops_airflow.operators.base import StepOperator
from mlops_airflow.rendered import as_bool, as_dict, as_float

if TYPE_CHECKING:
    from airflow.sdk import Context

JOB_KEYS = {
    "training": ("Training", "TrainingJobName", "TrainingJobStatus"),
    "processing": ("Processing", "ProcessingJobName", "ProcessingJobStatus"),
}


class SageMakerJobStep(StepOperator):
    """A SageMaker job of a request dict (``config``), behind the step cache.

    When the request's data snapshot, code and hyperparameters match an earlier completed job, its
    outputs are reused and the log says so; ``force`` runs it anyway, ``cache=False`` turns the cache
    off. The XCom: ``{"Training"|"Processing": <Describe*Job>, "CacheHit": bool, "CacheKey": str}``.
    ``config`` itself is the provider's argument (aws) or the stand-in's (local).
    """

    kind: ClassVar[str]  # "training" or "processing"
    config: dict[str, Any]
    s3_client: Callable[[], Any]

    def __init__(self, *, force: bool | str = False, cache: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.force = force
        self.cache = cache

    def job_name(self) -> str:
        return self.config[JOB_KEYS[self.kind][1]]

    def cache_key(self) -> tuple[str, dict[str, str]]:
        """(cache key, input fingerprints) of the request."""
        from mlops.training.cache import cache_key

        return cache_key(self.config, s3=self.s3_client())

    def step_cache(self) -> Any:
        from mlops.training.cache import StepCache
        from mlops_airflow.targets import lake

        return StepCache(lake().models("_cache"), s3=self.s3_client())

    def lookup(self) -> tuple[dict[str, Any] | None, str, dict[str, str]]:
        """(Describe*Job of an earlier job with the same inputs or None, cache key, input fingerprints)."""
        key, prints = self.cache_key()
        if not self.cache:
            self.log.info("Step cache disabled for %s (cache=False)", self.job_name())
            return None, key, prints
        if as_bool(self.force, name="force"):
            self.log.info(
                "Step cache bypassed: force=True, running %s afresh (cache key %s)", self.job_name(), key[:12]
            )
            return None, key, prints
        entry = self.step_cache().lookup(self.kind, key)
        if entry is None:
            self.log.info("Step cache miss for %s (cache key %s): running the job", self.job_name(), key[:12])
            return None, key, prints
        self.log.info(
            "Step cache HIT (key %s): data snapshot, code and hyperparameters are unchanged; reusing the outputs of "
            "%s job %s from %s instead of running %s. Set the `force` Param to run it anyway.",
            key[:12],
            self.kind,
            entry["describe"][JOB_KEYS[self.kind][1]],
            entry["stored"],
            self.job_name(),
        )
        return entry["describe"], key, prints

    def finish(self, describe: dict[str, Any], key: str, prints: dict[str, str], hit: bool) -> dict[str, Any]:
        """The XCom; a completed job that ran is stored in the cache. Fails unless the job completed."""
        result_key, _, status_key = JOB_KEYS[self.kind]
        if describe.get(status_key) != "Completed":
            raise AirflowException(f"SageMaker job failed because {describe.get('FailureReason', '(no reason given)')}")
        if not hit and self.cache:
            self.step_cache().store(self.kind, key, describe, prints)
        return {result_key: describe, "CacheHit": hit, "CacheKey": key}


class RegistryStep(StepOperator):
    """A step on the model registry: the SQLite stand-in's (local) or the SageMaker Model Registry (aws)."""

    registry_client: Callable[[], Any]
    s3_client: Callable[[], Any]

    def __init__(self, *, model_package_group: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model_package_group = model_package_group

    def group(self) -> str:
        from mlops_airflow.targets import pipeline_config

        return self.model_package_group or pipeline_config().registry.model_package_group


class FindChampionStep(RegistryStep):
    """``find_champion``: the newest Approved package of the group (``{}`` when there is none)."""

    template_fields: Sequence[str] = ("model_package_group",)

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.registry import latest_approved

        champion = latest_approved(self.registry_client(), self.group())
        if champion:
            self.log.info(
                "champion: %s v%s (mAP %s) at %s",
                self.group(),
                champion["version"],
                champion["map"],
                champion["model_data_url"],
            )
        else:
            self.log.info("no Approved model in %s yet: the challenger only has to pass the threshold", self.group())
        return champion or {}


class RegisterModelStep(RegistryStep):
    """``register``: the gate (threshold + champion/challenger on the same test split), then CreateModelPackage.

    Emits the registered-model Asset with the version and mAP in its extra, only for a new version:
    when the model is already registered (a re-run on unchanged data reused the step-cached job) the
    task ends *skipped*, which emits no Asset event (Airflow emits outlets' events on success only),
    so nothing downstream (mlops_deploy) runs again. Its result is still pushed as the XCom.
    """

    template_fields: Sequence[str] = (
        "training",
        "processing",
        "champion",
        "image_uri",
        "map_threshold",
        "champion_tolerance",
    )

    def __init__(
        self,
        *,
        training: Any,
        processing: Any,
        image_uri: str,
        champion: Any = None,
        map_threshold: float | str | None = None,
        champion_tolerance: float | str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [REGISTERED_MODEL])
        super().__init__(**kwargs)
        self.training, self.processing, self.image_uri = training, processing, image_uri
        self.champion, self.map_threshold, self.champion_tolerance = champion, map_threshold, champion_tolerance

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops.training.gate import GateRejected
        from mlops.training.steps import register
        from mlops_airflow.targets import pipeline_config

        training, processing = as_dict(self.training), as_dict(self.processing)
        try:
            result = register(
                pipeline_config(),
                self.registry_client(),
                training=training.get("Training", training),
                processing=processing.get("Processing", processing),
                champion=as_dict(self.champion) or None,
                image_uri=self.image_uri,
                run_id=context["run_id"],
                threshold=as_float(self.map_threshold, name="map_threshold"),
                tolerance=as_float(self.champion_tolerance, name="champion_tolerance"),
                s3=self.s3_client(),
            )
        except GateRejected as exc:
            raise AirflowFailException(str(exc)) from None
        if not result["created"]:
            context["ti"].xcom_push(key="return_value", value=result)
            raise AirflowSkipException(
                f"model {result['model_data_url']} is already registered as {result['model_package_group']} "
                f"v{result['version']}: nothing new, so no {REGISTERED_MODEL.name} event and no redeploy "
                "(trigger with force=true to retrain)"
            )
        context["outlet_events"][REGISTERED_MODEL].extra = {k: v for k, v in result.items() if k != "comparison"}
        self.log.info(
            "registered %s v%s (%s), mAP %.4f",
            result["model_package_group"],
            result["version"],
            result["approval_status"],
            result["map"],
        )
        return result
