"""Where the local feature store lives and what its groups are called (both targets name groups alike)."""

from __future__ import annotations

from pathlib import Path

from mlops.aws.glue_requests import stack_names
from mlops.config import PipelineConfig, mlops_home


def local_online_store() -> Path:
    """The local online store's SQLite file (``<MLOPS_HOME>/feature-store/online.sqlite``)."""
    return mlops_home() / "feature-store" / "online.sqlite"


def feature_group_prefix(config: PipelineConfig) -> str:
    """``<project>-<environment>``: a group is ``<prefix>-customer-history`` / ``<prefix>-product-history``."""
    names = stack_names(config)
    return f"{names.project}-{names.environment}"


def endpoint_environment(config: PipelineConfig) -> dict[str, str]:
    """What a local model server needs to featurize raw orders: the online store file and the group prefix."""
    return {"MLOPS_ONLINE_STORE": str(local_online_store()), "MLOPS_FEATURE_GROUP_PREFIX": feature_group_prefix(config)}
