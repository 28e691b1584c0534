"""Full loads and table reloads (DMS ``ReloadTables``) that are atomic across tables.

A (re)load reads one consistent snapshot of the chosen tables into *staged* LOAD files
(:func:`stage_tables`); nothing in the lake changes while it runs, so a load that fails midway
leaves the previous snapshot of every table whole. Once every table is staged, the plan (which
staged file replaces which, which old files go, the tables' new counters) is saved with the task
state, and only then are the files swapped in (:func:`apply_plan`). A crash during the swap is
rolled forward by applying the saved plan again; applying a plan is idempotent.

Rows holding values the lake cannot carry are quarantined (:mod:`mlops.replication.quarantine`)
and counted as ``FullLoadErrorRows``; the load goes on without them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

import pyarrow as pa
from sqlalchemy import Connection, Table

from mlops.replication.lake_io import (
    LakeFS,
    SplitParquetWriter,
    cdc_file_name,
    dms_schema,
    load_file_name,
    publish_staged,
)
from mlops.replication.quarantine import add_open, quarantine_rows, write_quarantine
from mlops.replication.schema_changes import column_types
from mlops.replication.snapshot import count_rows, full_load_batches
from mlops.replication.status import ReloadPlan, TableReload, TableState, TaskState, utc_now
from mlops.replication.values import Rejected

Progress = Callable[[int, int], None]
Folders = Callable[[str], tuple[str, str]]


def stage_tables(
    conn: Connection,
    tables: Mapping[str, Table],
    *,
    lake_fs: LakeFS,
    folders: Folders,
    timestamp_column: str,
    started: datetime,
    chunk_rows: int,
    max_rows_per_file: int,
    progress: Progress | None = None,
) -> tuple[dict[str, TableReload], list[Rejected]]:
    """Write each table as ``conn``'s snapshot sees it into staged LOAD files; return the plan per table.

    ``folders(table)`` gives the table's (final, staging) folder URIs. The staged files of one
    attempt live in their own staging folder, named by ``started``.
    """
    total = sum(count_rows(conn, t) for t in tables.values())
    done = 0
    plans: dict[str, TableReload] = {}
    rejected_all: list[Rejected] = []
    attempt = "load-" + cdc_file_name(started).removesuffix(".parquet")
    for name, table in tables.items():
        final_dir, staging_dir = folders(name)
        schema = dms_schema(table, timestamp_column)
        rejected: list[Rejected] = []
        load_start = utc_now().isoformat()
        writer = SplitParquetWriter(
            lake_fs, schema, staging_dir=f"{staging_dir}/{attempt}", final_dir=final_dir, publish=False
        )
        with writer:
            writer.open(load_file_name(1))
            for batch in full_load_batches(conn, table, schema, started, chunk_rows, rejected):
                _write_split(writer, batch, max_rows_per_file)
                done += batch.num_rows
                if progress:
                    progress(done, total)
        done += len({r.key for r in rejected})
        (key,) = [c.name for c in table.primary_key.columns]
        open_entries, overflow = add_open({}, 0, rejected, key)
        plans[name] = TableReload(
            staged=[list(pair) for pair in writer.staged],
            stale=[lake_fs.uri(info.path) for info in lake_fs.data_files(final_dir)],
            rows=writer.rows,
            error_rows=len({r.key for r in rejected}),
            columns=[list(pair) for pair in column_types(table)],
            quarantine_open=open_entries,
            quarantine_overflow=overflow,
            load_start=load_start,
        )
        rejected_all += rejected
    return plans, rejected_all


def _write_split(writer: SplitParquetWriter, batch: pa.RecordBatch, max_rows_per_file: int) -> None:
    """Append ``batch`` to the open LOAD file, starting the next one whenever it is full."""
    offset = 0
    while offset < batch.num_rows:
        if writer.file_rows >= max_rows_per_file:
            writer.open(load_file_name(len(writer.files) + 2))
        take = min(max_rows_per_file - writer.file_rows, batch.num_rows - offset)
        writer.write(batch.slice(offset, take))
        offset += take


def stage_quarantine(
    lake_fs: LakeFS,
    rejected: list[Rejected],
    *,
    final_dir: str,
    staging_dir: str,
    task: str,
    schema: str,
    started: datetime,
    keys: Mapping[str, str],
) -> list[list[str]]:
    """Stage the load's quarantined rows as one file; return its (staging, final) pair (none when clean)."""
    if not rejected:
        return []
    name = "load-" + cdc_file_name(started)
    rows = quarantine_rows(rejected, task=task, schema=schema, phase="full load", at=started, keys=keys)
    staging, final = f"{staging_dir}/{name}", f"{final_dir}/{name}"
    write_quarantine(lake_fs, staging, staging, rows)
    return [[staging, final]]


def discard_staged(lake_fs: LakeFS, plans: Mapping[str, TableReload], quarantine: list[list[str]]) -> None:
    """Delete the staged files of a load that will not be applied."""
    lake_fs.delete([pair[0] for plan in plans.values() for pair in plan.staged] + [q[0] for q in quarantine])


def apply_plan(lake_fs: LakeFS, state: TaskState, plan: ReloadPlan, now: datetime) -> None:
    """Swap the plan's staged files in, delete the files they replace, and set the tables' new state.

    Idempotent (a crash midway is finished by applying the plan again). Leaves ``state.reload``
    set; the caller clears it and saves the state.
    """
    for table_plan in plan.tables.values():
        publish_staged(lake_fs, [(s, f) for s, f in table_plan.staged], table_plan.stale)
    publish_staged(lake_fs, [(s, f) for s, f in plan.quarantine], [])
    stamp = now.isoformat()
    for name, table_plan in plan.tables.items():
        before = state.tables.get(name, TableState())
        state.tables[name] = TableState(
            state="Table completed",
            full_load_rows=table_plan.rows,
            error_rows=table_plan.error_rows,
            full_load_start=table_plan.load_start,
            full_load_end=stamp,
            reloaded=table_plan.reloaded,
            last_update=stamp,
            columns=table_plan.columns,
            skip_through=None if plan.every_table else plan.mark,
            quarantined=before.quarantined + table_plan.error_rows,
            quarantine_open=table_plan.quarantine_open,
            quarantine_overflow=table_plan.quarantine_overflow,
        )
