"""One CDC batch of the local DMS stand-in: its files and quarantine in the lake, then its commit to the task state.

:func:`write_batch` writes one file per changed table (all named after the batch) and one
quarantine file for the changes the lake cannot take; :func:`commit_batch` then moves the task
state on (counters, quarantine entries, checkpoint). The replicator saves the state only after
every file is in place, so a batch that dies midway is redone with the same names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine, Table

from mlops.replication.batch_results import count_ops
from mlops.replication.capture import changes_table, complete_images
from mlops.replication.lake_io import CHANGE_SEQ_COLUMN, LakeFS, cdc_object_key, dms_schema
from mlops.replication.quarantine import add_open, quarantine_rows, resolve_open, write_quarantine
from mlops.replication.status import PendingBatch, TaskState, utc_now
from mlops.replication.values import Rejected

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BatchTarget:
    """Where a CDC batch goes: the lake, each table's (final, staging) folders, the quarantine's, the layout."""

    lake_fs: LakeFS
    folders: Callable[[str], tuple[str, str]]
    quarantine: tuple[str, str]
    date_partition: tuple[str, str]
    timestamp_column: str
    task: str
    schema: str


@dataclass
class TableBatch:
    """One table's part of a CDC batch: the rows written, the rejections, the changes skipped."""

    rows: pa.Table | None = None
    rejected: list[Rejected] = field(default_factory=list)
    skipped: int = 0


def table_keys(tables: Mapping[str, Table]) -> dict[str, str]:
    """Each table's single-column primary key."""
    return {name: next(iter(t.primary_key.columns)).name for name, t in tables.items()}


def _table_changes(
    engine: Engine, state: TaskState, name: str, table: Table, changes: pa.Table, batch: TableBatch
) -> pa.Table:
    """The changes of ``table`` to apply: none a reload already holds, and images completed with added columns."""
    table_state = state.tables[name]
    if table_state.skip_through is not None:
        kept = changes.filter(pc.greater(changes["seq"], table_state.skip_through))
        batch.skipped, changes = changes.num_rows - kept.num_rows, kept
    if table_state.capture_stale_through is not None and changes.num_rows:
        with engine.connect() as conn:
            changes = complete_images(
                conn, table, changes, table_state.capture_added, table_state.capture_stale_through
            )
    return changes


def write_batch(
    target: BatchTarget,
    engine: Engine,
    state: TaskState,
    tables: Mapping[str, Table],
    changes: pa.Table,
    file_name: str,
    progress: Progress | None = None,
) -> tuple[dict[str, TableBatch], list[str]]:
    """One CDC file per changed table, all named ``file_name``, and the batch's quarantine file.

    Changes of unreplicated tables, and changes a reload already holds, are skipped.
    """
    files: list[str] = []
    per_table: dict[str, TableBatch] = {}
    done = 0
    key = cdc_object_key(file_name, *target.date_partition)
    keys = table_keys(tables)
    for name, table in tables.items():
        selected = changes.filter(pc.equal(changes["table"], name))
        if not selected.num_rows:
            continue
        batch = per_table[name] = TableBatch()
        selected = _table_changes(engine, state, name, table, selected, batch)
        if selected.num_rows:
            rows, batch.rejected = changes_table(selected, dms_schema(table, target.timestamp_column), name, keys[name])
            if rows.num_rows:
                final_dir, staging_dir = target.folders(name)
                target.lake_fs.write_atomically(
                    f"{staging_dir}/{key}", f"{final_dir}/{key}", rows.schema, rows.to_batches()
                )
                files.append(f"{final_dir}/{key}")
            batch.rows = rows
        done += batch.skipped + selected.num_rows
        if progress:
            progress(done, changes.num_rows)
    rejected = [r for b in per_table.values() for r in b.rejected]
    if rejected:
        rows = quarantine_rows(rejected, task=target.task, schema=target.schema, phase="cdc", at=utc_now(), keys=keys)
        final_dir, staging_dir = target.quarantine
        write_quarantine(target.lake_fs, f"{final_dir}/{key}", f"{staging_dir}/{key}", rows)
    return per_table, files


def commit_batch(
    state: TaskState, keys: Mapping[str, str], pending: PendingBatch, per_table: Mapping[str, TableBatch], now: datetime
) -> None:
    """Move the task state past the batch: counters, quarantine entries, reload markers, checkpoint (not saved)."""
    for name, batch in per_table.items():
        table_state = state.tables[name]
        if batch.rows is not None:
            ops = count_ops([batch.rows])
            table_state.inserts += ops["I"]
            table_state.updates += ops["U"]
            table_state.deletes += ops["D"]
        table_state.waiting = {}  # what still waits is counted again when the task publishes its status
        table_state.quarantined += len({r.change_seq for r in batch.rejected})
        table_state.quarantine_open, table_state.quarantine_overflow = add_open(
            table_state.quarantine_open, table_state.quarantine_overflow, batch.rejected, keys[name]
        )
        if table_state.quarantine_open and batch.rows is not None:
            applied = last_change_per_key(batch.rows, keys[name], set(table_state.quarantine_open))
            table_state.quarantine_open = resolve_open(table_state.quarantine_open, applied)
        table_state.last_update = now.isoformat()
    for table_state in state.tables.values():
        if table_state.skip_through is not None and pending.through >= table_state.skip_through:
            table_state.skip_through = None
        if table_state.capture_stale_through is not None and pending.through >= table_state.capture_stale_through:
            table_state.capture_stale_through, table_state.capture_added = None, []
    if state.status != "running":
        state.mark(start=now)
    state.mark(
        checkpoint=pending.through, pending=None, last_cdc_file=pending.file_name,
        status="running", stop_reason=None, last_failure=None, stop=None,
    )  # fmt: skip


def last_change_per_key(rows: pa.Table, key: str, wanted: set[str]) -> dict[str, int]:
    """Last applied change sequence per key, for the keys in ``wanted`` (as text)."""
    keys = pc.cast(rows[key], pa.string())
    mask = pc.is_in(keys, value_set=pa.array(sorted(wanted), type=pa.string()))
    picked = pa.table({"key": keys.filter(mask), "seq": pc.cast(rows[CHANGE_SEQ_COLUMN].filter(mask), pa.int64())})
    grouped = picked.group_by("key").aggregate([("seq", "max")])
    return dict(zip(grouped["key"].to_pylist(), grouped["seq_max"].to_pylist(), strict=True))
