"""Operators for the training stage (DESIGN.md §1.1: one class per target, same arguments).

Steps (``mlops_airflow.targets.STEPS``):

- ``sagemaker_training`` / ``sagemaker_processing``: run a CreateTrainingJob /
  CreateProcessingJob request. On aws the provider's deferrable SageMaker operators (thin
  subclasses); locally :mod:`mlops.sagemaker_local`. Both put step caching in front: when the
  request's data snapshot, code and hyperparameters match an earlier completed job, its outputs
  are reused and the log says so; ``force=True`` runs anyway. XCom: ``{"Training"|"Processing":
  <Describe*Job>, "CacheHit": bool, "CacheKey": str}``.
- ``find_champion``: the newest Approved package of the group (``{}`` when none).
- ``register_model``: gate (threshold + champion/challenger on the same test split) and
  CreateModelPackage; emits the registered-model Asset with version and mAP in its extra.

Registry and S3 clients differ per target (SQLite registry vs boto3 ``sagemaker``), the rest
is shared. On aws these classes only orchestrate: requests, boto3 calls through the provider's
hooks, and the gate over the small ``evaluation.json``; pandas, sklearn, LightGBM and ONNX run in
the jobs. Image URIs come from :mod:`mlops.aws.framework_images`, a table sagemaker-core wrote at
build time (``make images``); nothing imports the SageMaker SDK at run time. The provider's
SageMaker module (boto3) is imported on first use of an aws class, never at DAG parse time.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from mlops_airflow.assets import REGISTERED_MODEL

if TYPE_CHECKING:
    from airflow.sdk import Context

JOB_KEYS = {
    "training": ("Training", "TrainingJobName", "TrainingJobStatus"),
    "processing": ("Processing", "ProcessingJobName", "ProcessingJobStatus"),
}


def as_bool(value: Any) -> bool:
    """A templated flag (``True``, ``"True"``, ``"false"``, ``1``...) as a bool."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def as_optional_float(value: Any) -> float | None:
    """A templated number; ``None``/``""``/``"None"`` mean "use the config value"."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "null")):
        return None
    return float(value)


def as_dict(value: Any) -> dict[str, Any]:
    """A request/XCom dict that may arrive rendered as JSON text."""
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value or {})


class _CachedJobMixin:
    """Step caching around a job operator; subclasses provide ``_s3_client`` and ``_run``."""

    kind: str
    config: dict[str, Any]
    force: Any
    cache: bool

    def _s3_client(self) -> Any:
        return None

    def _step_cache(self) -> Any:
        from mlops.training.cache import StepCache
        from mlops_airflow.targets import lake

        return StepCache(lake().models("_cache"), s3=self._s3_client())

    def _cached(self) -> tuple[dict[str, Any] | None, str, dict[str, str]]:
        """(cached Describe*Job or None, cache key, input fingerprints)."""
        from mlops.training.cache import cache_key

        key, prints = cache_key(self.config, s3=self._s3_client())
        _, name_key, _ = JOB_KEYS[self.kind]
        if not self.cache:
            self.log.info("Step cache disabled for %s (cache=False)", self.config[name_key])
            return None, key, prints
        if as_bool(self.force):
            self.log.info(
                "Step cache bypassed: force=True, running %s afresh (cache key %s)", self.config[name_key], key[:12]
            )
            return None, key, prints
        entry = self._step_cache().lookup(self.kind, key)
        if entry is None:
            self.log.info("Step cache miss for %s (cache key %s): running the job", self.config[name_key], key[:12])
            return None, key, prints
        self.log.info(
            "Step cache HIT (key %s): data snapshot, code and hyperparameters are unchanged; reusing the outputs of "
            "%s job %s from %s instead of running %s. Set the `force` Param to run it anyway.",
            key[:12],
            self.kind,
            entry["describe"][name_key],
            entry["stored"],
            self.config[name_key],
        )
        return entry["describe"], key, prints

    def _finish(self, describe: dict[str, Any], key: str, prints: dict[str, str], hit: bool) -> dict[str, Any]:
        result_key, _, status_key = JOB_KEYS[self.kind]
        if describe.get(status_key) != "Completed":
            raise AirflowException(f"SageMaker job failed because {describe.get('FailureReason', '(no reason given)')}")
        if not hit and self.cache:
            self._step_cache().store(self.kind, key, describe, prints)
        return {result_key: describe, "CacheHit": hit, "CacheKey": key}


class LocalTrainingJobOperator(_CachedJobMixin, BaseOperator):
    """local ``sagemaker_training``: execute the CreateTrainingJob request with the local runner."""

    kind = "training"
    template_fields: Sequence[str] = ("config", "force")
    template_fields_renderers = {"config": "json"}

    def __init__(
        self,
        *,
        config: dict[str, Any],
        force: Any = False,
        cache: bool = True,
        aws_conn_id: str | None = "aws_default",
        wait_for_completion: bool = True,
        check_interval: int = 30,
        max_ingestion_time: int | None = None,
        deferrable: bool = True,
        print_log: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.config, self.force, self.cache = config, force, cache
        self.aws_conn_id, self.wait_for_completion, self.check_interval = (
            aws_conn_id,
            wait_for_completion,
            check_interval,
        )
        self.max_ingestion_time, self.deferrable, self.print_log = max_ingestion_time, deferrable, print_log

    def _run(self) -> dict[str, Any]:
        from mlops.sagemaker_local import run_training_job

        return run_training_job(self.config)

    def execute(self, context: Context) -> dict[str, Any]:
        self.config = as_dict(self.config)
        cached, key, prints = self._cached()
        if cached is not None:
            return self._finish(cached, key, prints, hit=True)
        return self._finish(self._run(), key, prints, hit=False)


class LocalProcessingJobOperator(LocalTrainingJobOperator):
    """local ``sagemaker_processing``: execute the CreateProcessingJob request with the local runner."""

    kind = "processing"

    def _run(self) -> dict[str, Any]:
        from mlops.sagemaker_local import run_processing_job

        return run_processing_job(self.config)


def _require_role(config: dict[str, Any]) -> None:
    from mlops.training.steps import LOCAL_ROLE_ARN

    if config.get("RoleArn") == LOCAL_ROLE_ARN:
        raise AirflowFailException(
            "training.role_arn is not set: put the SageMaker execution role ARN (CloudFormation output) in "
            "include/pipeline.yaml or MLOPS__TRAINING__ROLE_ARN"
        )


class _AwsJobMixin(_CachedJobMixin):
    """Cache check, then the provider operator (deferrable); a Completed job of the same name is reused."""

    aws_conn_id: str | None

    def _s3_client(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id).get_conn()

    def _describe_existing(self, name: str) -> dict[str, Any] | None:
        describe = self.hook.describe_training_job if self.kind == "training" else self.hook.describe_processing_job
        try:
            return describe(name)
        except Exception as exc:  # botocore ClientError ValidationException: not found
            if "ValidationException" in str(exc) or "not found" in str(exc).lower():
                return None
            raise

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.amazon.aws.operators.sagemaker import serialize

        self.config = as_dict(self.config)
        _require_role(self.config)
        cached, key, prints = self._cached()
        if cached is not None:
            return self._finish(cached, key, prints, hit=True)
        _, name_key, status_key = JOB_KEYS[self.kind]
        existing = self._describe_existing(self.config[name_key])
        if existing is not None:
            if existing[status_key] != "Completed":
                raise AirflowFailException(
                    f"SageMaker {self.kind} job {self.config[name_key]} already exists with status "
                    f"{existing[status_key]}; job names come from the run, so start a new DAG run to train again"
                )
            self.log.info(
                "%s job %s already completed (a retry of this run); reusing it", self.kind, self.config[name_key]
            )
            return self._finish(serialize(existing), key, prints, hit=False)
        result = super().execute(context)  # defers when deferrable; then execute_complete runs
        return self._finish(result[JOB_KEYS[self.kind][0]], key, prints, hit=False)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        self.config = as_dict(self.config)
        result = super().execute_complete(context, event)
        key, prints = self._cache_key_after_defer()
        return self._finish(result[JOB_KEYS[self.kind][0]], key, prints, hit=False)

    def _cache_key_after_defer(self) -> tuple[str, dict[str, str]]:
        from mlops.training.cache import cache_key

        return cache_key(self.config, s3=self._s3_client())


def _aws_job_operators() -> dict[str, type]:
    """Build the aws job operators on first use: the provider's SageMaker module imports boto3 (~1.5 s),
    which the local target and DAG parsing should not pay for."""
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerProcessingOperator, SageMakerTrainingOperator

    class AwsTrainingJobOperator(_AwsJobMixin, SageMakerTrainingOperator):
        """aws ``sagemaker_training``: the provider's SageMakerTrainingOperator, deferrable, with step caching."""

        kind = "training"
        template_fields: Sequence[str] = (*SageMakerTrainingOperator.template_fields, "force")

        def __init__(
            self,
            *,
            config: dict[str, Any],
            force: Any = False,
            cache: bool = True,
            aws_conn_id: str | None = "aws_default",
            wait_for_completion: bool = True,
            check_interval: int = 30,
            max_ingestion_time: int | None = None,
            deferrable: bool = True,
            print_log: bool = True,
            **kwargs: Any,
        ) -> None:
            super().__init__(
                config=config,
                aws_conn_id=aws_conn_id,
                wait_for_completion=wait_for_completion,
                check_interval=check_interval,
                max_ingestion_time=max_ingestion_time,
                deferrable=deferrable,
                print_log=print_log,
                check_if_job_exists=False,  # checked (and reused when Completed) before creating
                **kwargs,
            )
            self.force, self.cache = force, cache

    class AwsProcessingJobOperator(_AwsJobMixin, SageMakerProcessingOperator):
        """aws ``sagemaker_processing``: the provider's SageMakerProcessingOperator, deferrable, with step caching."""

        kind = "processing"
        template_fields: Sequence[str] = (*SageMakerProcessingOperator.template_fields, "force")

        def __init__(
            self,
            *,
            config: dict[str, Any],
            force: Any = False,
            cache: bool = True,
            aws_conn_id: str | None = "aws_default",
            wait_for_completion: bool = True,
            check_interval: int = 30,
            max_ingestion_time: int | None = None,
            deferrable: bool = True,
            print_log: bool = True,
            **kwargs: Any,
        ) -> None:
            super().__init__(
                config=config,
                aws_conn_id=aws_conn_id,
                wait_for_completion=wait_for_completion,
                check_interval=check_interval,
                max_ingestion_time=max_ingestion_time,
                deferrable=deferrable,
                print_log=print_log,
                action_if_job_exists="fail",
                **kwargs,
            )
            self.force, self.cache = force, cache

    classes = {"AwsTrainingJobOperator": AwsTrainingJobOperator, "AwsProcessingJobOperator": AwsProcessingJobOperator}
    for name, cls in classes.items():
        cls.__qualname__ = name  # importable as mlops_airflow.operators.training.<name>
    return classes


def __getattr__(name: str) -> type:
    if name in ("AwsTrainingJobOperator", "AwsProcessingJobOperator"):
        classes = _aws_job_operators()
        globals().update(classes)
        return classes[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _RegistryOperator(BaseOperator):
    """Shared constructor; subclasses say which registry client to use."""

    def __init__(
        self, *, model_package_group: str | None = None, aws_conn_id: str | None = "aws_default", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.model_package_group, self.aws_conn_id = model_package_group, aws_conn_id

    def registry_client(self) -> Any:
        raise NotImplementedError

    def s3_client(self) -> Any:
        return None

    def group(self) -> str:
        from mlops_airflow.targets import pipeline_config

        return self.model_package_group or pipeline_config().registry.model_package_group


class _LocalRegistry:
    def registry_client(self) -> Any:
        from mlops.registry import local_registry

        return local_registry()


class _AwsRegistry:
    aws_conn_id: str | None

    def registry_client(self) -> Any:
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        return SageMakerHook(aws_conn_id=self.aws_conn_id).conn

    def s3_client(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id).get_conn()


class _FindChampion(_RegistryOperator):
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


class LocalFindChampionOperator(_LocalRegistry, _FindChampion):
    """local ``find_champion``: newest Approved version in the SQLite registry."""


class AwsFindChampionOperator(_AwsRegistry, _FindChampion):
    """aws ``find_champion``: newest Approved version in the SageMaker Model Registry."""


class _RegisterModel(_RegistryOperator):
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
        map_threshold: Any = None,
        champion_tolerance: Any = None,
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

        training = as_dict(self.training)
        processing = as_dict(self.processing)
        try:
            result = register(
                pipeline_config(),
                self.registry_client(),
                training=training.get("Training", training),
                processing=processing.get("Processing", processing),
                champion=as_dict(self.champion) or None,
                image_uri=self.image_uri,
                run_id=context["run_id"],
                threshold=as_optional_float(self.map_threshold),
                tolerance=as_optional_float(self.champion_tolerance),
                s3=self.s3_client(),
            )
        except GateRejected as exc:
            raise AirflowFailException(str(exc)) from None
        extra = {k: v for k, v in result.items() if k != "comparison"}
        context["outlet_events"][REGISTERED_MODEL].extra = extra
        self.log.info(
            "registered %s v%s (%s), mAP %.4f",
            result["model_package_group"],
            result["version"],
            result["approval_status"],
            result["map"],
        )
        return result


class LocalRegisterModelOperator(_LocalRegistry, _RegisterModel):
    """local ``register_model``: gate, then CreateModelPackage in the SQLite registry."""


class AwsRegisterModelOperator(_AwsRegistry, _RegisterModel):
    """aws ``register_model``: gate, then CreateModelPackage in the SageMaker Model Registry."""


def plan_training_run(context: Context) -> dict[str, Any]:
    """Task body: curated features from the triggering event (else config), code published, request built."""
    from mlops.aws.sagemaker_requests import resolve_image_uri
    from mlops.training.steps import training_plan
    from mlops_airflow.targets import lake, pipeline_config

    config, the_lake = pipeline_config(), lake()
    curated_uri = the_lake.curated("features")
    for asset_events in (context.get("triggering_asset_events") or {}).values():
        for event in asset_events:
            curated_uri = (event.extra or {}).get("curated_uri", curated_uri)
    hyperparameters = as_dict(context["params"].get("hyperparameters"))
    return training_plan(
        config,
        the_lake,
        run_id=context["run_id"],
        run_after=context["dag_run"].run_after,
        curated_uri=curated_uri,
        image_uri=resolve_image_uri(config.training, config.aws.region),
        hyperparameters=hyperparameters,
        s3=functools.cache(lambda: _s3_hook_client(config.aws.conn_id)),  # built once, only if the lake is on S3
    )


def _s3_hook_client(conn_id: str) -> Any:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=conn_id).get_conn()


def plan_evaluation(
    context: Context, plan: dict[str, Any], training: dict[str, Any], champion: dict[str, Any]
) -> dict[str, Any]:
    """Task body: the CreateProcessingJob request for the trained model (and champion)."""
    from mlops.training.steps import evaluation_request
    from mlops_airflow.targets import lake, pipeline_config

    return evaluation_request(
        pipeline_config(),
        lake(),
        plan=plan,
        training=training["Training"],
        champion=champion or None,
        run_id=context["run_id"],
        run_after=context["dag_run"].run_after,
    )
