"""Factories for the local stand-ins of AWS services, built from the pipeline config.

These always use the local lake and the configured (or local SQLite) source DB: they are what
the ``local`` target runs, and what the ``mlops`` CLI operates on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops.config import PipelineConfig, load_config
from mlops.lake import Lake

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from mlops.replication.replicator import LocalReplicator


def local_lake(config: PipelineConfig | None = None) -> Lake:
    """The local lake (``file://<MLOPS_HOME>/lake`` unless lake.local_root is set)."""
    return Lake.for_target(config or load_config(), "local")


def source_engine(config: PipelineConfig | None = None) -> Engine:
    """An engine on the configured source DB (default: the local SQLite file)."""
    from mlops.source.db import make_engine

    return make_engine((config or load_config()).source.url)


def local_replicator(config: PipelineConfig | None = None) -> LocalReplicator:
    """The local DMS stand-in replicating the source DB into the local lake."""
    from mlops.replication.replicator import LocalReplicator

    config = config or load_config()
    return LocalReplicator(config, source_engine(config), local_lake(config))
