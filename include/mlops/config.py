"""The typed pipeline configuration.

`load_config()` reads ``include/pipeline.yaml`` (or ``MLOPS_CONFIG``), applies environment
overrides of the form ``MLOPS__SECTION__KEY=value`` and validates the result. Any unknown,
missing or mistyped key raises :class:`ConfigError` naming its dotted path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "include" / "pipeline.yaml"
ENV_PREFIX = "MLOPS__"
# Capture delivery delay per target: the local capture writer publishes within about a second; SageMaker
# buffers capture and delivers its files to S3 within minutes, so on aws a window ends five minutes early.
FLUSH_LAG_DEFAULTS = {"local": 5, "aws": 300}


class ConfigError(ValueError):
    """The pipeline configuration is invalid; the message names the key and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LakeConfig(_Section):
    local_root: str | None = None
    raw_prefix: str = "raw/dms"
    curated_prefix: str = "curated"
    reports_prefix: str = "reports"
    models_prefix: str = "models"
    athena_results_prefix: str = "athena-results"
    capture_prefix: str = "capture"
    monitoring_prefix: str = "monitoring"
    staging_prefix: str = "_staging"

    @field_validator("*", mode="after")
    @classmethod
    def _relative_prefix(cls, value: str | None, info: Any) -> str | None:
        if info.field_name != "local_root" and value is not None:
            if value.startswith("/") or value.endswith("/") or ".." in value.split("/"):
                raise ValueError("must be a relative key prefix without leading/trailing '/' or '..'")
        return value


class SourceConfig(_Section):
    url: str | None = None
    schema_name: str = Field("shop", alias="schema", pattern=r"^[a-z][a-z0-9_]*$")
    seed: int = 42
    orders: int = Field(20_000, ge=100, le=5_000_000)
    start_date: str = Field("2025-01-01", pattern=r"^\d{4}-\d{2}-\d{2}$")
    days: int = Field(540, ge=30, le=3650)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ReplicationConfig(_Section):
    task_id: str = Field("mlops-source-to-lake", pattern=r"^[a-zA-Z][a-zA-Z0-9-]{0,254}$")
    tables: tuple[str, ...] = ("customers", "products", "orders", "order_items")
    timestamp_column: str = "dms_commit_ts"
    include_op_for_full_load: bool = True
    cdc_batch_max_changes: int = Field(200_000, ge=1)
    catch_up_deadline_seconds: int = Field(1500, ge=1)
    max_cdc_lag_seconds: int = Field(900, ge=1)
    require_fresh_objects: bool = True
    # DMS data validation (ValidationSettings of the task; the local stand-in applies the same).
    validation_enabled: bool = True
    validation_partition_size: int = Field(10_000, ge=1)
    validation_failure_max_count: int = Field(10_000, ge=1)
    max_validation_pending_seconds: int = Field(93_600, ge=1)
    # Lake content checks at ingest (Athena SQL over the raw tables; mlops.replication.content).
    content_checks: bool = True
    max_null_rate: float = Field(0.5, ge=0.0, le=1.0)
    max_null_rates: dict[str, float] = Field(
        default_factory=lambda: {
            "customers.birth_year": 0.4,
            "products.weight_kg": 0.2,
            "orders.discount_code": 0.95,
            "order_items.discount_pct": 0.95,
        }
    )

    @field_validator("max_null_rates")
    @classmethod
    def _null_rate_bounds(cls, bounds: dict[str, float]) -> dict[str, float]:
        for column, bound in bounds.items():
            if column.count(".") != 1 or not 0.0 <= bound <= 1.0:
                raise ValueError(f"{column}: {bound} must be <table>.<column>: <rate between 0 and 1>")
        return bounds

    @field_validator("tables")
    @classmethod
    def _non_empty_unique(cls, tables: tuple[str, ...]) -> tuple[str, ...]:
        if not tables:
            raise ValueError("must list at least one table")
        if len(set(tables)) != len(tables):
            raise ValueError("must not repeat a table")
        return tables


SubnetId = Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]{8,17}$")]
SecurityGroupId = Annotated[str, StringConstraints(pattern=r"^sg-[0-9a-f]{8,17}$")]
GlueConnectionName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:/@+=,-]{1,255}$")]


class AwsConfig(_Section):
    region: str = Field("eu-west-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    conn_id: str = "aws_default"
    lake_bucket: str = Field("mlops-lake-dev", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    artifacts_bucket: str = Field("mlops-artifacts-dev", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    dms_replication_task_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:dms:")
    # The alerts SNS topic (the ml stack's AlertsTopicArn); required on aws for the DAG failure callback.
    alerts_topic_arn: str | None = Field(
        None, pattern=r"^arn:aws[a-z-]*:sns:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}$"
    )
    dms_poll_interval_seconds: int = Field(60, ge=1)  # dms_sync pokes this often (reschedule mode)
    dms_max_attempts: int = Field(30, ge=1)  # and gives up after this many pokes (at most 45 min in all)
    # The private network of the SageMaker jobs (the network stack's PrivateSubnetIds and
    # SageMakerJobsSecurityGroupId); empty = the jobs run outside any VPC. Set both or neither.
    subnet_ids: list[SubnetId] = Field(default_factory=list, max_length=16)
    security_group_ids: list[SecurityGroupId] = Field(default_factory=list, max_length=5)
    # The Glue NETWORK connection (one) the Glue jobs run through, in those subnets; empty = no VPC.
    glue_connections: list[GlueConnectionName] = Field(default_factory=list, max_length=1)

    @model_validator(mode="after")
    def _network_complete(self) -> AwsConfig:
        if bool(self.subnet_ids) != bool(self.security_group_ids):
            raise ValueError(
                "aws.subnet_ids and aws.security_group_ids go together (SageMaker VpcConfig needs both): "
                "set both from the network stack's PrivateSubnetIds and SageMakerJobsSecurityGroupId exports, "
                "or leave both empty to run the jobs outside a VPC"
            )
        return self

    @model_validator(mode="after")
    def _dms_wait_bounded(self) -> AwsConfig:
        wait = self.dms_poll_interval_seconds * self.dms_max_attempts
        if wait > 45 * 60:
            raise ValueError(
                f"dms_poll_interval_seconds x dms_max_attempts = {wait}s; dms_sync may wait at most 2700s "
                "(dag_defaults.SENSOR_TIMEOUT_BOUND): lower one of them"
            )
        return self


class MetricDefinition(_Section):
    """A SageMaker MetricDefinition: the metric's name and the regex whose group 1 is its value."""

    Name: str = Field(pattern=r"^[a-zA-Z0-9:_./-]{1,255}$")
    Regex: str = Field(min_length=1, max_length=500)


class DecisionConfig(_Section):
    """How the model package's per-class decision thresholds are chosen on validation (``mlops.training.decision``)."""

    objective: Literal["macro_f1", "cost"] = "macro_f1"
    cost_matrix: dict[str, dict[str, float]] | None = None  # {actual: {predicted: cost}}; missing cells cost 0

    @model_validator(mode="after")
    def _cost_matrix_of_known_classes(self) -> DecisionConfig:
        from mlops.schema.curated import LABEL_CLASSES

        if self.objective == "cost" and not self.cost_matrix:
            raise ValueError(
                "objective 'cost' needs a cost_matrix {actual: {predicted: cost}}, e.g. {returned: {delivered: 5}}"
            )
        for actual, row in (self.cost_matrix or {}).items():
            for name in (actual, *row):
                if name not in LABEL_CLASSES:
                    raise ValueError(
                        f"cost_matrix names {name!r}, which is not a label class; classes: {list(LABEL_CLASSES)}"
                    )
            if any(cost < 0 or cost != cost for cost in row.values()):
                raise ValueError(f"cost_matrix[{actual}] has a negative or NaN cost: {row}")
        return self


class TrainingConfig(_Section):
    job_name_prefix: str = Field("mlops", pattern=r"^[a-z][a-z0-9-]{0,19}$")
    role_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/")
    image_uri: str | None = None
    framework_version: str = "1.9-0"
    instance_type: str = Field("ml.m5.xlarge", pattern=r"^ml\.")
    instance_count: int = Field(1, ge=1, le=1)
    volume_size_gb: int = Field(30, ge=1)
    max_runtime_seconds: int = Field(7200, ge=60)
    processing_instance_type: str = Field("ml.m5.large", pattern=r"^ml\.")
    hyperparameters: dict[str, str | int | float] = Field(default_factory=dict)
    map_threshold: float = Field(0.40, ge=0.0, le=1.0)
    champion_tolerance: float = Field(0.01, ge=0.0, le=1.0)
    parity_tolerance: float = Field(1e-4, gt=0.0, le=0.1)
    parity_rows: int = Field(20_000, ge=0)
    decision: DecisionConfig = Field(default_factory=DecisionConfig)
    recent_days: int = Field(30, ge=1, le=3650)
    min_recent_rows: int = Field(200, ge=1)
    cache: bool = True
    metric_definitions: tuple[MetricDefinition, ...] = ()
    # The wheels of the jobs' and the endpoint's dependencies, fetched at build time by `make sagemaker-wheels`
    # (s3://<artifacts>/sagemaker/wheelhouse on aws): they ship in sourcedir.tar.gz and model.tar.gz and
    # install offline. Required with aws.subnet_ids (no NAT); empty = the containers pip-install from PyPI.
    wheelhouse_uri: str = Field("", pattern=r"^(|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.*|file:///.+)$")

    @field_validator("hyperparameters", mode="before")
    @classmethod
    def _typed_hyperparameters(cls, values: Any) -> Any:
        from mlops.training.hyperparameters import coerce_value

        if not isinstance(values, dict):
            return values  # pydantic reports the wrong type
        return {name: coerce_value(str(name), value) for name, value in values.items()}


class RegistryConfig(_Section):
    model_package_group: str = Field("mlops-order-outcome", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    approval_policy: Literal["auto", "manual"] = "auto"
    inference_instance_types: tuple[str, ...] = ("ml.m5.large",)
    content_types: tuple[str, ...] = ("application/json", "text/csv")


class ServingVariant(_Section):
    name: str = Field("AllTraffic", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    weight: float = Field(1.0, ge=0)


class MultiModelConfig(_Section):
    """A multi-model endpoint (``serving.mode: multi_model``): target models under one S3 prefix.

    Each model server loads a target model on its first request and keeps at most ``max_models``
    of them, and at most ``max_bytes`` of extracted model files, evicting the least recently used.
    """

    prefix: str = Field("multi-model", pattern=r"^[a-z0-9][a-z0-9/_-]*[a-z0-9]$")
    max_models: int = Field(8, ge=1, le=10_000)
    max_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    model_cache: Literal["Enabled", "Disabled"] = "Enabled"


class AbTestConfig(_Section):
    """The A/B test's rule (DAG mlops_ab_test; :mod:`mlops.serving.ab_decision`): promote the challenger only
    with enough traffic and matured labels, when its mAP beats the champion's by ``min_improvement`` at the
    lower end of the ``confidence`` interval."""

    champion_variant: str | None = Field(None, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    min_requests: int = Field(200, ge=1)
    min_labeled: int = Field(100, ge=10)
    confidence: float = Field(0.95, ge=0.5, lt=1.0)
    min_improvement: float = Field(0.01, ge=0.0, le=1.0)
    bootstrap_samples: int = Field(1000, ge=100, le=100_000)
    window_hours: int = Field(168, ge=1, le=24 * 90)
    join_key: str = Field("order_id", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    seed: int = 0


class ServingConfig(_Section):
    endpoint_name: str = Field("mlops-orders", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    port_range: tuple[int, int] = (18080, 18199)
    max_payload_bytes: int = Field(6 * 1024 * 1024, ge=1, le=6 * 1024 * 1024)
    capture_sampling_percentage: int = Field(100, ge=0, le=100)
    strategy: Literal["all_at_once", "canary"] = "canary"
    canary_percent: int = Field(10, ge=1, le=99)
    bake_seconds: int = Field(10, ge=0, le=3600)
    termination_wait_seconds: int = Field(0, ge=0, le=3600)
    rollback_error_rate: float = Field(0.05, gt=0, le=1)
    rollback_alarms: tuple[str, ...] = ()
    # ProductionVariant.ContainerStartupHealthCheckTimeoutInSeconds: SageMaker accepts 60-3600 s (API Reference).
    # A start unpacks model.tar.gz, pip-installs code/requirements.txt from the wheels in code/wheels (offline,
    # onnxruntime + sympy, ~30 MB) and imports onnxruntime: minutes on a small instance, not the 60 s minimum.
    health_check_timeout_seconds: int = Field(600, ge=60, le=3600)
    # ProductionVariant.ModelDataDownloadTimeoutInSeconds (60-3600 s): None leaves SageMaker's default, which a
    # model.tar.gz of tens of MB stays far inside; set it for a much larger package.
    model_download_timeout_seconds: int | None = Field(None, ge=60, le=3600)
    instance_type: str = Field("ml.m5.large", pattern=r"^ml\.")
    instance_count: int = Field(2, ge=1)  # a canary holds at most half the fleet (endpoint_requests.check_deployment)
    execution_role_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/")
    framework_version: str = "1.2-1"
    variants: tuple[ServingVariant, ...] = (ServingVariant(),)
    mode: Literal["single", "multi_model"] = "single"
    multi_model: MultiModelConfig = MultiModelConfig()
    ab_test: AbTestConfig = AbTestConfig()

    def ab_roles(self) -> tuple[str, str]:
        """(champion, challenger) variant names: ``ab_test.champion_variant``, else the second variant (the deploy
        puts the candidate on the first variant and the champion on the others); the challenger is the other one."""
        names = [v.name for v in self.variants]
        if len(names) != 2:
            raise ValueError(f"an A/B test compares two variants; serving.variants has {names}")
        champion = self.ab_test.champion_variant or names[1]
        return champion, next(n for n in names if n != champion)

    @model_validator(mode="after")
    def _champion_is_a_variant(self) -> ServingConfig:
        champion = self.ab_test.champion_variant
        if champion is not None and champion not in [v.name for v in self.variants]:
            raise ValueError(
                f"serving.ab_test.champion_variant {champion!r} is not one of serving.variants "
                f"{[v.name for v in self.variants]}; name one of them or leave it null"
            )
        return self

    @model_validator(mode="after")
    def _one_variant_per_multi_model_endpoint(self) -> ServingConfig:
        if self.mode == "multi_model" and len(self.variants) > 1:
            raise ValueError(
                "serving.mode multi_model hosts its models behind one variant; an A/B test of "
                f"{[v.name for v in self.variants]} needs serving.mode: single (or keep one variant)"
            )
        return self

    @field_validator("port_range")
    @classmethod
    def _ordered_ports(cls, ports: tuple[int, int]) -> tuple[int, int]:
        if not 1024 <= ports[0] <= ports[1] <= 65535:
            raise ValueError("must be [low, high] with 1024 <= low <= high <= 65535")
        return ports

    @field_validator("variants")
    @classmethod
    def _unique_variants(cls, variants: tuple[ServingVariant, ...]) -> tuple[ServingVariant, ...]:
        names = [v.name for v in variants]
        if not names or len(set(names)) != len(names) or not any(v.weight > 0 for v in variants):
            raise ValueError("must list at least one variant, with unique names and a positive total weight")
        return variants


class QualityConfig(_Section):
    """Model-quality monitoring on delayed ground truth (DAG mlops_model_quality, job quality_job.py)."""

    schedule: str = "@daily"
    window_hours: int = Field(24, ge=1, le=31 * 24)
    max_map_drop: float = Field(0.05, ge=0, le=1)
    confidence_z: float = Field(2.0, ge=0)
    min_labelled_rows: int = Field(500, ge=1)
    min_label_coverage: float = Field(0.5, gt=0, le=1)
    max_label_wait_hours: float = Field(14 * 24, gt=0)
    cooldown_hours: float = Field(24.0, ge=0)


class RetrainOnNewLabelsConfig(_Section):
    """Retrain on enough new labelled data: orders labelled after the live model's training data cut-off
    (counted by the model-quality job; DAG mlops_model_quality)."""

    enabled: bool = True
    min_new_labelled_orders: int = Field(5000, ge=1)


class MonitoringConfig(_Section):
    """Drift monitoring: windows, Model-Monitor-style thresholds, the retraining policy, the processing job."""

    schedule: str = "@hourly"
    window_minutes: int = Field(60, ge=1, le=7 * 24 * 60)
    min_window_records: int = Field(100, ge=1)
    min_distinct_sources: int = Field(20, ge=0)
    max_source_share: float = Field(0.5, gt=0, le=1)
    comparison_method: Literal["Simple", "Robust"] = "Robust"
    comparison_threshold: float = Field(0.1, gt=0, le=1)
    categorical_comparison_threshold: float = Field(0.1, gt=0, le=1)
    robust_alpha: float = Field(0.001, gt=0, lt=0.5)
    psi_threshold: float = Field(0.2, gt=0)
    completeness_tolerance: float = Field(0.05, ge=0, le=1)
    datatype_check_threshold: float = Field(0.1, ge=0, le=1)
    domain_content_threshold: float = Field(0.1, ge=0, le=1)
    drift_share_threshold: float = Field(0.25, gt=0, le=1)
    consecutive_windows: int = Field(2, ge=1, le=100)
    cooldown_hours: float = Field(6.0, ge=0)
    sensor_timeout_minutes: int = Field(30, ge=1, le=45)  # dag_defaults.SENSOR_TIMEOUT_BOUND
    sensor_poke_seconds: int = Field(60, ge=1)
    capture_flush_lag_seconds: int | None = Field(None, ge=0, le=3600)  # None: FLUSH_LAG_DEFAULTS[target]
    processing_instance_type: str = Field("ml.m5.large", pattern=r"^ml\.")
    processing_volume_gb: int = Field(30, ge=1)
    max_runtime_seconds: int = Field(3600, ge=60)
    image_uri: str | None = None
    framework_version: str = "1.2-1"
    quality: QualityConfig = QualityConfig()
    retrain_on_new_labels: RetrainOnNewLabelsConfig = RetrainOnNewLabelsConfig()

    def flush_lag_seconds(self, target: str) -> int:
        """How long before its run's time a window ends: ``capture_flush_lag_seconds``, else the target's
        default (:data:`FLUSH_LAG_DEFAULTS`), so capture still being delivered lands in the next window."""
        if self.capture_flush_lag_seconds is not None:
            return self.capture_flush_lag_seconds
        return FLUSH_LAG_DEFAULTS[target]


class ReportingConfig(_Section):
    """Real-time reporting: where the per-minute aggregates live (DynamoDB table, else SQLite)."""

    dynamodb_table: str | None = Field(None, pattern=r"^[a-zA-Z0-9_.-]{3,255}$")
    sqlite_path: str | None = None
    events_queue_url: str | None = None
    ttl_days: int = Field(30, ge=1)


class PipelineConfig(_Section):
    project: str = "mlops-orchestrator"
    lake: LakeConfig = LakeConfig()
    source: SourceConfig = SourceConfig()
    replication: ReplicationConfig = ReplicationConfig()
    aws: AwsConfig = AwsConfig()
    serving: ServingConfig = ServingConfig()
    training: TrainingConfig = TrainingConfig()
    registry: RegistryConfig = RegistryConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    reporting: ReportingConfig = ReportingConfig()


def load_yaml(text: str) -> Any:
    """Parse YAML safely (plain data only), refusing a mapping key given twice."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506  # nosec B506  # UniqueKeyLoader is a SafeLoader


class UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a mapping key given twice (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice (first on line {seen[key] + 1}); keep one, the later would "
                    "silently replace the earlier",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def mlops_home() -> Path:
    """The one folder that holds all local state (``MLOPS_HOME``, default ``<project>/.mlops``)."""
    return Path(os.environ.get("MLOPS_HOME", PROJECT_ROOT / ".mlops")).resolve()


def _apply_env_overrides(raw: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    """Overlay ``MLOPS__A__B=value`` variables onto the raw mapping; values are parsed as YAML."""
    merged: dict[str, Any] = {**raw}
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(path):
            raise ConfigError(f"environment variable {name}: empty key segment; use MLOPS__SECTION__KEY")
        node = merged
        for part in path[:-1]:
            child = node.get(part)
            node[part] = child = dict(child) if isinstance(child, dict) else {}
            node = child
        try:
            node[path[-1]] = load_yaml(value) if value != "" else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"environment variable {name} is not valid YAML: {exc}") from None
    return merged


def _origin(key: str, overrides: set[str], source: str) -> str:
    """Where a key's value came from: the ``MLOPS__...`` variable that set it (or a parent), else the file."""
    parts = key.split(".")
    for depth in range(len(parts), 0, -1):
        variable = ENV_PREFIX + "__".join(p.upper() for p in parts[:depth])
        if variable in overrides:
            return f"environment variable {variable}"
    return source


def _format_errors(error: ValidationError, source: str, overrides: set[str]) -> str:
    lines = [f"invalid pipeline config ({source}):"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "<root>"
        origin = _origin(key, overrides, source)
        if item["type"] == "extra_forbidden":
            lines.append(f"  - {key}: unknown key; remove it or fix its spelling (from {origin})")
        else:
            message = item["msg"].removeprefix("Value error, ")
            lines.append(f"  - {key}: {message} (got {item.get('input')!r}, from {origin})")
    return "\n".join(lines)


def load_config(path: Path | str | None = None, environ: dict[str, str] | None = None) -> PipelineConfig:
    """Load, override and validate the pipeline config; raise ConfigError naming any bad key."""
    config_path = Path(path or os.environ.get("MLOPS_CONFIG", DEFAULT_CONFIG_PATH))
    env = dict(os.environ if environ is None else environ)
    try:
        raw = load_yaml(config_path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"pipeline config not found at {config_path}; set MLOPS_CONFIG to its path") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"pipeline config {config_path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"pipeline config {config_path} must be a mapping of sections, got {type(raw).__name__}")
    overrides = {name for name in env if name.startswith(ENV_PREFIX)}
    try:
        return PipelineConfig.model_validate(_apply_env_overrides(raw, env))
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, str(config_path), overrides)) from None
