"""The local stand-in for an AWS DMS ``full-load-and-cdc`` task writing to an S3 target.

``LocalReplicator.sync()`` does what the always-on DMS task would have done since the last call:
the full load the first time, then one CDC batch, each followed by DMS data validation of every
table (:meth:`LocalReplicator.validate`, :mod:`mlops.replication.validation`), whose outcome the
status reports in DescribeTableStatistics' ``Validation*`` fields. The endpoint and task settings
come from :mod:`mlops.aws.dms_requests`, as deployed on AWS. Crash safety:

- Full load: change capture is installed first, then one snapshot is read; its high-water mark
  becomes the CDC start position, so no change is lost or applied twice. A full load that dies
  midway is redone from scratch by the next ``sync``.
- CDC: the batch (sequence range and file name) is saved as *pending* before any file is
  written; files are staged then moved into place; the checkpoint is saved only after all files
  are in place. A batch that dies midway is redone with the same range and names, overwriting
  what it had written, so nothing is duplicated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine, Table

from mlops.aws.dms_requests import s3_target_settings, validation_settings
from mlops.config import PipelineConfig, mlops_home
from mlops.lake import Lake
from mlops.replication.capture import (
    assign_change_seqs,
    changes_table,
    install_capture,
    missing_capture,
    pending_summary,
    purge_applied,
    read_changes,
)
from mlops.replication.lake_io import (
    LakeFS,
    SplitParquetWriter,
    cdc_object_key,
    dms_schema,
    load_file_name,
    next_cdc_file_name,
)
from mlops.replication.snapshot import count_rows, full_load_batches, snapshot
from mlops.replication.status import (
    STOP_AFTER_FULL_LOAD,
    PendingBatch,
    StatusStore,
    TableState,
    TaskState,
    describe_replication_tasks,
    describe_table_statistics,
    local_task_arn,
    utc_now,
)
from mlops.replication.validation import TableValidation, validate_table
from mlops.source.db import missing_tables
from mlops.source.schema import TABLES

Progress = Callable[[int, int], None]
DEFAULT_MAX_ROWS_PER_FILE = 1_000_000
DEFAULT_CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class BatchResult:
    """What one replication batch did (JSON-friendly apart from ``started``)."""

    kind: str
    rows: int
    inserts: int
    updates: int
    deletes: int
    checkpoint: int
    started: datetime
    elapsed_seconds: float
    rows_per_second: float
    resumed: bool = False
    tables: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    validation: dict[str, str] = field(default_factory=dict)


class LocalReplicator:
    """Replicates the configured source tables into ``lake`` in the DMS S3-target layout."""

    def __init__(
        self,
        config: PipelineConfig,
        engine: Engine,
        lake: Lake,
        *,
        state_dir: Path | None = None,
        max_rows_per_file: int = DEFAULT_MAX_ROWS_PER_FILE,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> None:
        replication = config.replication
        if not replication.include_op_for_full_load:
            raise ValueError(
                "replication.include_op_for_full_load=false is not supported: every lake file must carry Op; "
                "set it to true"
            )
        unknown = [t for t in replication.tables if t not in TABLES]
        if unknown:
            raise ValueError(
                f"replication.tables lists {unknown}, which the source schema lacks; use some of {sorted(TABLES)}"
            )
        if max_rows_per_file < 1 or chunk_rows < 1:
            raise ValueError(
                f"max_rows_per_file ({max_rows_per_file}) and chunk_rows ({chunk_rows}) must be at least 1"
            )
        self.config = config
        self.engine = engine
        self.lake = lake
        self.schema_name = config.source.schema_name
        self.task_id = replication.task_id
        self.task_arn = local_task_arn(self.task_id)
        self.tables: dict[str, Table] = {name: TABLES[name] for name in replication.tables}
        self.file_schemas = {name: dms_schema(t, replication.timestamp_column) for name, t in self.tables.items()}
        target = s3_target_settings(config)
        self.date_partition = (target["DatePartitionSequence"], target["DatePartitionDelimiter"])
        self.validation = validation_settings(config)
        self.max_rows_per_file = max_rows_per_file
        self.chunk_rows = min(chunk_rows, max_rows_per_file)
        self.store = StatusStore(state_dir or mlops_home() / "dms", self.task_id)
        self._lake_fs: LakeFS | None = None

    @property
    def lake_fs(self) -> LakeFS:
        """The lake's filesystem (resolved on first use, not at construction)."""
        if self._lake_fs is None:
            self._lake_fs = LakeFS.from_uri(self.lake.root)
        return self._lake_fs

    def _folders(self, table: str) -> tuple[str, str]:
        """(final, staging) folder URIs of a table's files."""
        raw = self.lake.raw_table(self.schema_name, table)
        return raw, self.lake.staging(self.config.lake.raw_prefix, self.schema_name, table)

    def _load_state(self) -> TaskState:
        return self.store.load(list(self.tables), utc_now())

    def sync(self, progress: Progress | None = None) -> BatchResult:
        """The full load if it has not completed yet, else one CDC batch; then validate every table."""
        if not self._load_state().full_load_done:
            result = self.full_load(progress)
        else:
            result = self.cdc_batch(progress=progress)
        validation = {name: v.state for name, v in self.validate().items()}
        self.publish_cdc_latency()
        return replace(result, validation=validation)

    def full_load(self, progress: Progress | None = None) -> BatchResult:
        """(Re)load every table from one consistent snapshot; CDC continues from that snapshot."""
        with self.store.locked():
            state = self._load_state()
            started, clock = utc_now(), perf_counter()
            state.mark(
                status="running", stop_reason=None, last_failure=None, stop=None, start=started, fresh_start=started,
                full_load_start=started, full_load_finish=None, full_load_done=False, checkpoint=None,
                cdc_start_position=None, pending=None, last_cdc_file=None,
            )  # fmt: skip
            state.tables = {
                name: TableState(reloaded=name in state.tables and state.tables[name].state != "Before load")
                for name in self.tables
            }
            self.store.save(state)
            try:
                rows, files, mark = self._run_full_load(state, started, progress)
            except Exception as exc:
                for table_state in state.tables.values():
                    if table_state.state == "Full load":
                        table_state.state = "Table error"
                state.fail(f"full load failed: {exc}", utc_now())
                self.store.save(state)
                raise
            finished = utc_now()
            state.mark(
                full_load_done=True, checkpoint=mark, cdc_start_position=mark, full_load_finish=finished,
                status="stopped", stop_reason=STOP_AFTER_FULL_LOAD, stop=finished,
            )  # fmt: skip
            self.store.save(state)
        return _result("full-load", rows, {}, files, mark, started, clock)

    def _run_full_load(
        self, state: TaskState, load_ts: datetime, progress: Progress | None
    ) -> tuple[dict[str, int], list[str], int]:
        """Install capture, read the snapshot into LOAD files; return rows per table, files, high-water."""
        absent = [name for name in missing_tables(self.engine) if name in self.tables]
        if absent:
            raise RuntimeError(
                f"the source DB lacks tables {absent}; create and fill them first (`mlops generate`), then replicate"
            )
        with self.engine.begin() as conn:
            install_capture(conn, list(self.tables.values()))
        rows: dict[str, int] = {}
        files: list[str] = []
        with snapshot(self.engine) as (conn, mark):
            total = sum(count_rows(conn, t) for t in self.tables.values())
            done = 0
            for name, table in self.tables.items():
                table_state = state.tables[name]
                table_state.state, table_state.full_load_start = "Full load", utc_now().isoformat()
                self.store.save(state)
                final_dir, staging_dir = self._folders(name)
                schema = self.file_schemas[name]
                with SplitParquetWriter(self.lake_fs, schema, staging_dir=staging_dir, final_dir=final_dir) as writer:
                    writer.open(load_file_name(1))
                    for batch in full_load_batches(conn, table, schema, load_ts, self.chunk_rows):
                        self._write_split(writer, batch)
                        done += batch.num_rows
                        if progress:
                            progress(done, total)
                self._remove_stale(final_dir, keep=writer.files)
                now = utc_now().isoformat()
                table_state.state, table_state.full_load_rows = "Table completed", writer.rows
                table_state.full_load_end = table_state.last_update = now
                self.store.save(state)
                rows[name] = writer.rows
                files += writer.files
        return rows, files, mark

    def _write_split(self, writer: SplitParquetWriter, batch: pa.RecordBatch) -> None:
        """Append ``batch`` to the open LOAD file, starting the next one whenever it is full."""
        offset = 0
        while offset < batch.num_rows:
            if writer.file_rows >= self.max_rows_per_file:
                writer.open(load_file_name(len(writer.files) + 2))
            take = min(self.max_rows_per_file - writer.file_rows, batch.num_rows - offset)
            writer.write(batch.slice(offset, take))
            offset += take

    def _remove_stale(self, folder: str, keep: Sequence[str]) -> None:
        """Delete files of an earlier load or CDC in ``folder`` that the new full load replaces."""
        keep_names = {uri.rsplit("/", 1)[1] for uri in keep}
        stale = [
            self.lake_fs.uri(info.path) for info in self.lake_fs.data_files(folder) if info.base_name not in keep_names
        ]
        self.lake_fs.delete(stale)

    def cdc_batch(self, max_changes: int | None = None, progress: Progress | None = None) -> BatchResult:
        """Apply the next batch of captured changes (at most ``max_changes``) as one CDC file per table."""
        limit = self.config.replication.cdc_batch_max_changes if max_changes is None else max_changes
        if limit < 1:
            raise ValueError(f"max_changes must be at least 1, got {limit}")
        with self.store.locked():
            state = self._load_state()
            self._check_ready_for_cdc(state)
            started, clock = utc_now(), perf_counter()
            try:
                changes, pending, resumed = self._plan_batch(state, limit)
                if pending is None:
                    if state.status != "running":
                        state.mark(status="running", stop_reason=None, last_failure=None, stop=None, start=started)
                        self.store.save(state)
                    return _result("cdc", {}, {}, [], state.checkpoint or 0, started, clock)
                files, per_table = self._write_cdc_files(changes, pending.file_name, progress)
            except Exception as exc:
                state.fail(f"CDC batch failed: {exc}", utc_now())
                self.store.save(state)
                raise
            self._commit_batch(state, pending, per_table, started)
        ops = _count_ops(changes)
        return _result(
            "cdc", {t: len(c) for t, c in per_table.items()}, ops, files, pending.through, started, clock, resumed
        )

    def _check_ready_for_cdc(self, state: TaskState) -> None:
        if not state.full_load_done or state.checkpoint is None:
            raise RuntimeError(f"task {self.task_id} has no completed full load; run full_load() or sync() first")
        if set(state.tables) != set(self.tables):
            raise RuntimeError(
                f"replication.tables changed since the full load ({sorted(state.tables)} -> {sorted(self.tables)}); "
                "run full_load() to reload every table"
            )

    def _plan_batch(self, state: TaskState, limit: int) -> tuple[pa.Table, PendingBatch | None, bool]:
        """The changes of this batch and its saved plan; redo the pending batch of a crashed run first."""
        checkpoint = state.checkpoint or 0
        with self.engine.begin() as conn:
            missing = missing_capture(conn, list(self.tables))
            if missing:
                raise RuntimeError(
                    f"change capture is missing for {missing} in the source DB (it was recreated after the full load); "
                    "run full_load() to reinstall capture and reload"
                )
            assign_change_seqs(conn)
            purge_applied(conn, checkpoint)
        with self.engine.connect() as conn:
            if state.pending is not None:
                pending = state.pending
                changes = read_changes(conn, pending.after, through=pending.through)
                if not changes.num_rows or changes["seq"][-1].as_py() != pending.through:
                    raise RuntimeError(
                        f"pending CDC batch {pending.after}..{pending.through} is no longer in the change log; "
                        "run full_load() to reload"
                    )
                return changes, pending, True
            changes = read_changes(conn, checkpoint, limit=limit)
        if not changes.num_rows:
            return changes, None, False
        name = next_cdc_file_name(pc.max(changes["commit_ts"]).as_py(), state.last_cdc_file)
        state.pending = PendingBatch(after=checkpoint, through=changes["seq"][-1].as_py(), file_name=name)
        self.store.save(state)
        return changes, state.pending, False

    def _write_cdc_files(
        self, changes: pa.Table, file_name: str, progress: Progress | None
    ) -> tuple[list[str], dict[str, pa.Table]]:
        """One CDC file per changed table, all named ``file_name``; changes of unreplicated tables are skipped."""
        files: list[str] = []
        per_table: dict[str, pa.Table] = {}
        done = 0
        for name in self.tables:
            table_changes = changes.filter(pc.equal(changes["table"], name))
            if not table_changes.num_rows:
                continue
            final_dir, staging_dir = self._folders(name)
            key = cdc_object_key(file_name, *self.date_partition)
            rows = changes_table(table_changes, self.file_schemas[name], name)
            self.lake_fs.write_atomically(f"{staging_dir}/{key}", f"{final_dir}/{key}", rows.schema, rows.to_batches())
            files.append(f"{final_dir}/{key}")
            per_table[name] = table_changes
            done += table_changes.num_rows
            if progress:
                progress(done, changes.num_rows)
        return files, per_table

    def _commit_batch(
        self, state: TaskState, pending: PendingBatch, per_table: dict[str, pa.Table], now: datetime
    ) -> None:
        """Save the checkpoint and counters once every file of the batch is in place."""
        for name, table_changes in per_table.items():
            ops = _count_ops(table_changes)
            table_state = state.tables[name]
            table_state.inserts += ops["I"]
            table_state.updates += ops["U"]
            table_state.deletes += ops["D"]
            table_state.last_update = now.isoformat()
        if state.status != "running":
            state.mark(start=now)
        state.mark(
            checkpoint=pending.through, pending=None, last_cdc_file=pending.file_name,
            status="running", stop_reason=None, last_failure=None, stop=None,
        )  # fmt: skip
        self.store.save(state)

    def validate(self) -> dict[str, TableValidation]:
        """DMS data validation of every loaded table against one consistent read of the source.

        Records each table's outcome in the status (``Validation*`` of DescribeTableStatistics) and
        returns it. With ``EnableValidation`` off every table is ``Not enabled``; before the full
        load nothing is validated.
        """
        with self.store.locked():
            state = self._load_state()
            outcomes = self._validate(state)
            now = utc_now().isoformat()
            for name, outcome in outcomes.items():
                table_state = state.tables[name]
                table_state.validation_state, table_state.validation_details = outcome.state, outcome.details
                table_state.validation_pending, table_state.validation_failed = outcome.pending, outcome.failed
                table_state.validation_suspended = outcome.suspended
                table_state.validation_failures, table_state.validated_at = list(outcome.failures), now
            self.store.save(state)
        return outcomes

    def _validate(self, state: TaskState) -> dict[str, TableValidation]:
        if not self.validation["EnableValidation"]:
            return {name: TableValidation(name, "Not enabled") for name in state.tables}
        if not state.full_load_done or state.checkpoint is None:
            return {}
        with self.engine.connect() as conn:
            if missing_capture(conn, list(self.tables)):
                raise RuntimeError(
                    f"change capture is missing in the source DB (it was recreated after the full load), so "
                    f"task {self.task_id} cannot tell pending records from mismatches; run full_load() to reload"
                )
        outcomes: dict[str, TableValidation] = {}
        with snapshot(self.engine) as (conn, _):
            for name, table in self.tables.items():
                loaded = state.tables[name].state
                if loaded != "Table completed":
                    waiting = "Table error" if loaded == "Table error" else "Pending validation"
                    outcomes[name] = TableValidation(name, waiting)
                    continue
                outcomes[name] = validate_table(
                    conn, table, self._folders(name)[0], checkpoint=state.checkpoint,
                    partition_size=self.validation["PartitionSize"],
                    failure_max_count=self.validation["FailureMaxCount"],
                )  # fmt: skip
        return outcomes

    def cdc_lag_seconds(self) -> float | None:
        """Seconds since the oldest captured change not yet in the lake (0 when none); None before the full load."""
        lag, _ = self._lag_and_pending(self._load_state())
        return lag

    def publish_cdc_latency(self) -> float | None:
        """Record the current CDC lag in the status, as DMS publishes CDCLatencySource to CloudWatch."""
        with self.store.locked():
            state = self._load_state()
            lag, _ = self._lag_and_pending(state)
            state.mark(cdc_latency_seconds=lag, cdc_latency_at=utc_now())
            self.store.save(state)
        return lag

    def _lag_and_pending(self, state: TaskState) -> tuple[float | None, int | None]:
        if not state.full_load_done or state.checkpoint is None:
            return None, None
        with self.engine.connect() as conn:
            if missing_capture(conn, list(self.tables)):
                return None, None
            pending, oldest = pending_summary(conn, state.checkpoint)
        if oldest is None:
            return 0.0, pending
        return max(0.0, (utc_now() - oldest.replace(tzinfo=UTC)).total_seconds()), pending

    def describe_replication_tasks(self) -> dict[str, Any]:
        """The task as boto3's DMS ``describe_replication_tasks`` returns it."""
        return describe_replication_tasks(self._load_state(), schema=self.schema_name, now=utc_now())

    def describe_table_statistics(self) -> dict[str, Any]:
        """The tables as boto3's DMS ``describe_table_statistics`` returns them."""
        return describe_table_statistics(self._load_state(), schema=self.schema_name)

    def status(self) -> dict[str, Any]:
        """Both DMS responses, the CDC lag (CDCLatencySource), pending changes and the checkpoint."""
        state = self._load_state()
        lag, pending = self._lag_and_pending(state)
        return {
            "tasks": describe_replication_tasks(state, schema=self.schema_name, now=utc_now()),
            "table_statistics": describe_table_statistics(state, schema=self.schema_name),
            "cdc_lag_seconds": lag,
            "pending_changes": pending,
            "checkpoint": state.checkpoint,
        }


def _count_ops(changes: pa.Table) -> dict[str, int]:
    counts = {"I": 0, "U": 0, "D": 0}
    for item in pc.value_counts(changes["op"]).to_pylist():
        counts[item["values"]] += item["counts"]
    return counts


def _result(
    kind: str,
    tables: dict[str, int],
    ops: dict[str, int],
    files: list[str],
    checkpoint: int,
    started: datetime,
    clock: float,
    resumed: bool = False,
) -> BatchResult:
    rows = sum(tables.values())
    elapsed = perf_counter() - clock
    return BatchResult(
        kind=kind,
        rows=rows,
        inserts=ops.get("I", 0),
        updates=ops.get("U", 0),
        deletes=ops.get("D", 0),
        checkpoint=checkpoint,
        started=started,
        elapsed_seconds=round(elapsed, 3),
        rows_per_second=round(rows / elapsed, 1) if elapsed > 0 and rows else 0.0,
        resumed=resumed,
        tables=tables,
        files=files,
    )
