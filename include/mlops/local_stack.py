"""Factories for the local stand-ins of AWS services, built from the pipeline config.

These always use the local lake and the configured (or local SQLite) source DB: they are what
the ``local`` target runs, and what the ``mlops`` CLI operates on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops.config import PipelineConfig, load_config, mlops_home
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


def local_dms_status(config: PipelineConfig | None = None) -> dict[str, Any]:
    """The local DMS task's published status (both DMS responses, the last CDC latency), read without
    opening the source DB: what DescribeReplicationTasks, DescribeTableStatistics and CloudWatch give
    the aws check.
    """
    from mlops.aws.dms_requests import CDC_LATENCY_WINDOW_MINUTES
    from mlops.replication.status import StatusStore, published_status, utc_now

    config = config or load_config()
    replication = config.replication
    state = StatusStore(mlops_home() / "dms", replication.task_id).load(list(replication.tables), utc_now())
    return published_status(
        state, schema=config.source.schema_name, now=utc_now(), latency_window_seconds=60 * CDC_LATENCY_WINDOW_MINUTES
    )


def local_replicator(config: PipelineConfig | None = None) -> LocalReplicator:
    """The local DMS stand-in replicating the source DB into the local lake."""
    from mlops.replication.replicator import LocalReplicator

    config = config or load_config()
    return LocalReplicator(config, source_engine(config), local_lake(config))
