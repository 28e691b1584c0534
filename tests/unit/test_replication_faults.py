"""Fault injection for the local DMS stand-in (issue 13.9): every durable step fails once, nothing is lost.

For each operation (full load, CDC batch, a drain of several batches, reload of one table, reload
of every table) a dry run counts its durable steps: every object moved into the lake or deleted
from it, every Parquet batch written, every save of the task state. Then the operation runs once
per step with an I/O error injected at exactly that step, and is retried as an operator would
(the same command again). After each retry the lake must equal the source, row for row, and DMS
validation must pass: no change lost, none applied twice, no mixed snapshot.

The numbers per operation are printed (``-s``) and recorded in BENCHMARKS.md, "Reliability".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from mlops.config import PipelineConfig
from mlops.lake import Lake
from mlops.replication.lake_io import LakeFS, SplitParquetWriter
from mlops.replication.replicator import LocalReplicator
from mlops.replication.status import StatusStore
from mlops.source.db import create_schema, make_engine
from tests.unit.test_replication_cdc import assert_lake_matches_source, mutate, seed_rows

CONFIG = PipelineConfig.model_validate({"replication": {"cdc_batch_max_changes": 6}})
DURABLE_STEPS = ((LakeFS, "move"), (LakeFS, "delete"), (SplitParquetWriter, "write"), (StatusStore, "save"))


class InjectedFault(OSError):
    """The I/O error the suite injects."""


class Steps:
    """Counts durable steps and fails the ``fail_at``-th one."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.count, self.fail_at = 0, fail_at

    def hit(self) -> None:
        self.count += 1
        if self.count == self.fail_at:
            raise InjectedFault(f"injected fault at durable step {self.count}")


def instrument(monkeypatch: pytest.MonkeyPatch, steps: Steps) -> None:
    for owner, name in DURABLE_STEPS:
        real = getattr(owner, name)

        def counted(*args: object, _real: Callable = real, **kwargs: object) -> object:
            steps.hit()
            return _real(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)


def prepared(tmp_path: Path, scenario: str) -> tuple[Engine, LocalReplicator]:
    """A source and a replicator in the state the operation starts from."""
    engine = make_engine(f"sqlite:///{tmp_path / 'source.db'}")
    create_schema(engine)
    seed_rows(engine)
    lake = Lake(root=(tmp_path / "lake").as_uri(), layout=CONFIG.lake)
    replicator = LocalReplicator(CONFIG, engine, lake, state_dir=tmp_path / "dms", max_rows_per_file=4)
    if scenario != "full load":
        replicator.sync()
        mutate(engine, 0)
    if scenario == "drain":
        mutate(engine, 1)
    return engine, replicator


OPERATIONS: dict[str, Callable[[LocalReplicator], object]] = {
    "full load": lambda r: r.sync(),
    "cdc batch": lambda r: r.cdc_batch(max_changes=1000),
    "drain": lambda r: r.sync_until_caught_up(),
    "reload one table": lambda r: r.reload(["order_items"]),
    "reload every table": lambda r: r.reload(),
}


def run_with_fault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str, fail_at: int | None) -> int:
    """Run the operation with a fault at step ``fail_at``, retry it, check the lake; return the steps counted."""
    engine, replicator = prepared(tmp_path, scenario)
    steps = Steps(fail_at)
    with monkeypatch.context() as patch:
        instrument(patch, steps)
        try:
            OPERATIONS[scenario](replicator)
        except InjectedFault:
            pass
    OPERATIONS[scenario](replicator)  # the operator runs the same command again
    replicator.sync_until_caught_up()  # and the task carries on
    assert_lake_matches_source(engine, replicator.lake, replicator)
    return steps.count


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(OPERATIONS))
def test_a_fault_at_any_durable_step_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str
) -> None:
    total = run_with_fault(tmp_path / "dry", monkeypatch, scenario, None)
    assert total > 3, "the operation has durable steps to fail"
    for fail_at in range(1, total + 1):
        run_with_fault(tmp_path / f"fault{fail_at}", monkeypatch, scenario, fail_at)
    print(f"{scenario}: {total} faults injected, each retried; lake equals source after every one")
