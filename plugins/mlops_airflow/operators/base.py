"""The two bases every stage's operators build on, and the one argument policy of the local stand-ins.

Each stage has the shape of the ingest stage: ``<stage>.py`` holds a step's shared class (a
:class:`StepOperator` that owns ``__init__``: the step's own arguments), ``<stage>_aws.py`` its aws
class (the shared class plus the Amazon provider's operator, at module top), ``<stage>_local.py`` its
stand-in (the shared class plus :class:`LocalStandIn`). ``mlops_airflow.targets.STEPS`` picks one.

Why the shared class is an operator, not a plain mixin: Airflow's operator metaclass wraps the
``__init__`` each operator class defines (``default_args``, XComArg dependencies, missing-argument
errors) and the wrapper expects ``self.__init__`` to be such a wrapped ``__init__``. A plain mixin's
``__init__`` is not wrapped, so it must not be the first one called. The provider does the same
(``SageMakerBaseOperator`` owns the ``config`` argument of every SageMaker operator). Plain mixins
(methods only, no ``__init__``) come after the operator bases, so the metaclass sees the operator's
``__init__`` as the class's own.

A DAG passes the same arguments on both targets, so a stand-in accepts every argument of its aws
class. Those that mean nothing locally (a connection, a region, polling, deferral, the provider's
own request fields) are declared in :attr:`LocalStandIn.ignored_provider_args` and dropped;
``tests/unit/test_step_signatures.py`` checks every aws/local pair of ``STEPS`` against the
provider's signature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from airflow.sdk import BaseOperator

# Provider arguments a stand-in may declare it ignores, by the provider class that takes them.
#: AwsBaseOperator / AwsBaseSensor: the connection.
AWS_CONNECTION = ("aws_conn_id", "region_name", "verify", "botocore_config", "region")
#: Waiting for and deferring a job (the stand-ins run it to the end in the task).
DEFERRAL = ("deferrable", "wait_for_completion", "waiter_delay", "waiter_max_attempts")
#: BaseSensorOperator, for a stand-in that does its work at once instead of waiting.
SENSOR = ("poke_interval", "timeout", "soft_fail", "mode", "exponential_backoff", "max_wait", "silent_fail",
          "never_fail")  # fmt: skip
#: GlueJobOperator: the job's definition and polling (the StartJobRun request carries the run).
GLUE_JOB = ("job_name", "job_desc", "script_location", "concurrent_run_limit", "script_args", "retry_limit",
            "num_of_dpus", "s3_bucket", "iam_role_name", "iam_role_arn", "create_job_kwargs", "run_job_kwargs",
            "verbose", "replace_script_file", "update_config", "stop_job_run_on_kill", "sleep_before_return",
            "job_poll_interval", "resume_glue_job_on_retry", "openlineage_inject_parent_job_info",
            "openlineage_inject_transport_info")  # fmt: skip
#: AthenaOperator: the query's fields (the StartQueryExecution request carries them) and polling.
ATHENA_QUERY = ("query", "database", "catalog", "output_location", "client_request_token", "workgroup",
                "query_execution_context", "result_configuration", "sleep_time", "max_polling_attempts",
                "log_query")  # fmt: skip
#: SageMakerTrainingOperator / SageMakerProcessingOperator / SageMakerEndpointOperator: polling and logs.
SAGEMAKER_JOB = ("print_log", "check_interval", "max_attempts", "max_ingestion_time", "check_if_job_exists",
                 "action_if_job_exists", "output_files_to_xcom")  # fmt: skip
#: S3KeySensor: what to look for (the capture sensor derives it from its capture URI).
S3_KEY_SENSOR = ("bucket_key", "bucket_name", "wildcard_match", "check_fn", "use_regex", "metadata_keys")


class StepOperator(BaseOperator):
    """A step's shared class; an aws subclass may default some of its provider's arguments.

    ``provider_defaults`` fill arguments the DAG does not pass (e.g. ``deferrable=True``): set on
    aws classes, where the provider takes them; a stand-in ignores them if the DAG passes them.
    """

    provider_defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**self.provider_defaults, **kwargs})


class LocalStandIn(BaseOperator):
    """Base of every local stand-in: drops the provider arguments it declares it ignores."""

    ignored_provider_args: ClassVar[tuple[str, ...]] = AWS_CONNECTION
    ui_color = "#ededed"

    def __init__(self, **kwargs: Any) -> None:
        for name in self.ignored_provider_args:
            kwargs.pop(name, None)
        super().__init__(**kwargs)

    def s3_client(self) -> Any:
        """A local lake is ``file://``: no S3 client (aws classes use the provider's S3Hook client)."""
        return None


class LocalSageMakerStandIn(LocalStandIn):
    """Base of the SageMaker stand-ins: ``config`` is the request dict, as for the provider's SageMaker operators."""

    template_fields: Sequence[str] = ("config",)
    template_fields_renderers = {"config": "json"}

    def __init__(self, *, config: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
