"""Where the local feature store lives and what a local model server needs to read it (groups are named
alike on both targets: :func:`mlops.aws.feature_store_requests.feature_group_prefix`)."""

from __future__ import annotations

from pathlib import Path

from mlops.aws.feature_store_requests import lookup_environment
from mlops.config import PipelineConfig, mlops_home
from mlops.schema.online_store import ENV_PATH


def local_online_store() -> Path:
    """The local online store's SQLite file (``<MLOPS_HOME>/feature-store/online.sqlite``)."""
    return mlops_home() / "feature-store" / "online.sqlite"


def endpoint_environment(config: PipelineConfig) -> dict[str, str]:
    """What a local model server needs to featurize raw orders: the online store file and, as every
    CreateModel carries it, the group prefix."""
    return {ENV_PATH: str(local_online_store()), **lookup_environment(config)}
