"""Factories for the local stand-ins, built from the pipeline config at task run time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_airflow.targets import lake, pipeline_config, source_engine

if TYPE_CHECKING:
    from mlops.replication.replicator import LocalReplicator


def local_replicator() -> LocalReplicator:
    """The local DMS stand-in for the configured source DB and the local lake."""
    from mlops.replication.replicator import LocalReplicator

    config = pipeline_config()
    return LocalReplicator(config, source_engine(config), lake(config))
