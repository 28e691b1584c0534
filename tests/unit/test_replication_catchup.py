"""The local DMS stand-in catches up like DMS: bounded batches until no change is pending, or a named backlog.

Issue 15: after the 1M-order drift knob the local ``dms_sync`` applied one batch of
``cdc_batch_max_changes`` and the check ran at once on a lake 340,000 orders behind. Now
``sync_until_caught_up`` drains the change log batch by batch (each at most
``cdc_batch_max_changes``, so memory is bounded by one batch), reports progress per batch, and
past its deadline fails naming the changes that remain, keeping what it applied.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from mlops.config import PipelineConfig
from mlops.lake import Lake
from mlops.replication.replicator import CatchUpDeadlineError, LocalReplicator
from mlops.source.db import create_schema, make_engine
from tests.unit.test_replication_cdc import assert_lake_matches_source, mutate, seed_rows

BATCH = 4
CONFIG = PipelineConfig.model_validate({"replication": {"cdc_batch_max_changes": BATCH}})


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_db_url")
    source = make_engine(url)
    create_schema(source)
    seed_rows(source)
    return source


@pytest.fixture
def replicator(engine: Engine, tmp_path: Path) -> LocalReplicator:
    lake = Lake(root=(tmp_path / "lake").as_uri(), layout=CONFIG.lake)
    replicator = LocalReplicator(CONFIG, engine, lake, state_dir=tmp_path / "dms")
    replicator.sync_until_caught_up()  # the full load
    return replicator


def test_a_backlog_is_drained_in_bounded_batches_until_caught_up(engine: Engine, replicator: LocalReplicator) -> None:
    backlog = mutate(engine, 0) + mutate(engine, 1) + mutate(engine, 2)
    assert backlog > 3 * BATCH
    lines: list[str] = []
    result = replicator.sync_until_caught_up(report=lines.append)
    assert (result.kind, result.changes, result.pending_changes) == ("cdc", backlog, 0)
    assert result.batches == -(-backlog // BATCH), "every batch but the last is full"
    assert len(lines) == result.batches and lines[-1].endswith(", 0 pending")
    assert f"{BATCH:,} changes" in lines[0] and f"{backlog - BATCH:,} pending" in lines[0]
    assert set(result.validation.values()) == {"Validated"}
    assert replicator.status()["pending_changes"] == 0
    assert_lake_matches_source(engine, replicator.lake, replicator)


def test_one_sync_still_applies_one_batch(engine: Engine, replicator: LocalReplicator) -> None:
    """The old behaviour, kept as `mlops replicate --one-batch`: what the drain loop repeats."""
    backlog = mutate(engine, 0)
    one = replicator.sync()
    assert one.changes == BATCH and replicator.status()["pending_changes"] == backlog - BATCH


def test_past_the_deadline_the_backlog_is_named_and_the_applied_batches_kept(
    engine: Engine, replicator: LocalReplicator
) -> None:
    backlog = mutate(engine, 0) + mutate(engine, 1)
    with pytest.raises(CatchUpDeadlineError) as error:
        replicator.sync_until_caught_up(deadline_seconds=1e-9)
    remaining = backlog - BATCH
    assert f"applied {BATCH:,} changes in 1 batch(es) (kept), and {remaining:,} captured changes remain" in str(
        error.value
    )
    assert "replication.catch_up_deadline_seconds" in str(error.value)
    assert replicator.status()["pending_changes"] == remaining
    assert replicator.status()["tasks"]["ReplicationTasks"][0]["Status"] == "running", "behind is not broken"
    assert replicator.sync_until_caught_up().changes == remaining
    assert_lake_matches_source(engine, replicator.lake, replicator)


def test_caught_up_with_nothing_pending_is_one_empty_pass(replicator: LocalReplicator) -> None:
    result = replicator.sync_until_caught_up()
    assert (result.changes, result.batches, result.rows, result.files) == (0, 0, 0, [])
    assert set(result.validation.values()) == {"Validated"}
