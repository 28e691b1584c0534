"""The local stand-in for an AWS DMS ``full-load-and-cdc`` task writing to an S3 target.

``LocalReplicator.sync_until_caught_up()`` does what the always-on DMS task would have done since
the last call: the full load the first time, then CDC batches of at most
``replication.cdc_batch_max_changes`` changes until no change is pending (or a deadline passes,
which fails naming the backlog), then DMS data validation of every table
(:meth:`LocalReplicator.validate`, :mod:`mlops.replication.validation`), whose outcome the status
reports in DescribeTableStatistics' ``Validation*`` fields. ``sync()`` applies one batch only.
The endpoint and task settings come from :mod:`mlops.aws.dms_requests`, as deployed on AWS.

Sources are read as the database defines them now (reflection), so the replicator meets schema
changes the way DMS does (:mod:`mlops.replication.schema_changes`): added columns flow on,
other changes stop CDC until the table is reloaded (:meth:`LocalReplicator.reload`, DMS's
``ReloadTables``). Values the lake cannot carry are never coerced: their rows go to the
quarantine and replication goes on (:mod:`mlops.replication.quarantine`). Crash safety:

- (Re)load: change capture is installed first, then one snapshot is read into staged files; its
  high-water mark becomes the CDC position of the reloaded tables, so no change is lost or applied
  twice. Staged files are swapped in only once every table is written, after the plan is saved
  (:mod:`mlops.replication.loading`): a load that fails leaves the previous snapshot whole, and a
  crash during the swap is rolled forward.
- CDC: the batch (sequence range and file name) is saved as *pending* before any file is
  written; files are staged then moved into place; the checkpoint is saved only after all files
  are in place. A batch that dies midway is redone with the same range and names, overwriting
  what it had written, so nothing is duplicated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
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
from mlops.replication.batch_results import BatchResult, count_ops, merged, result
from mlops.replication.capture import (
    assign_change_seqs,
    high_water,
    install_capture,
    missing_capture,
    pending_by_table,
    pending_summary,
    purge_applied,
    read_changes,
)
from mlops.replication.cdc import BatchTarget, commit_batch, table_keys, write_batch
from mlops.replication.checks import reload_fix
from mlops.replication.lake_io import LakeFS, dms_schema, next_cdc_file_name
from mlops.replication.loading import apply_plan, discard_staged, stage_quarantine, stage_tables
from mlops.replication.quarantine import CONTROL_SCHEMA, QUARANTINE_TABLE
from mlops.replication.schema_changes import (
    SchemaChangeError,
    appended_columns,
    column_types,
    diff_columns,
    reflect_table,
)
from mlops.replication.snapshot import snapshot
from mlops.replication.status import (
    STOP_AFTER_FULL_LOAD,
    PendingBatch,
    ReloadPlan,
    StatusStore,
    TaskState,
    describe_replication_tasks,
    describe_table_statistics,
    local_task_arn,
    quarantine_report,
    utc_now,
)
from mlops.replication.validation import TableValidation, validate_table
from mlops.source.db import missing_tables
from mlops.source.schema import TABLES

Progress = Callable[[int, int], None]
Report = Callable[[str], None]
DEFAULT_MAX_ROWS_PER_FILE = 1_000_000
DEFAULT_CHUNK_ROWS = 50_000
EVERY_TABLE = "*"


class CatchUpDeadlineError(RuntimeError):
    """CDC did not catch up with the source before the deadline; the applied batches are kept."""


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
        self.table_names: list[str] = list(replication.tables)
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

    def quarantine_uri(self) -> str:
        """The folder of the quarantine (dead-letter) table's files."""
        return self.lake.uri(self.config.lake.raw_prefix, CONTROL_SCHEMA, QUARANTINE_TABLE)

    def _load_state(self) -> TaskState:
        return self.store.load(self.table_names, utc_now())

    def _current_state(self) -> TaskState:
        """The saved state, with a reload whose swap a crash interrupted finished first (hold the lock)."""
        state = self._load_state()
        if state.reload is not None:
            self._finish_reload(state)
        return state

    def _reflect(self, names: Sequence[str]) -> dict[str, Table]:
        with self.engine.connect() as conn:
            return {name: reflect_table(conn, name) for name in names}

    def _named(self, tables: Sequence[str]) -> list[str]:
        """``tables`` for a reload command: none when they are every replicated table."""
        return [] if set(tables) >= set(self.table_names) else list(tables)

    def _batch_target(self) -> BatchTarget:
        staging = self.lake.staging(self.config.lake.raw_prefix, CONTROL_SCHEMA, QUARANTINE_TABLE)
        return BatchTarget(
            lake_fs=self.lake_fs, folders=self._folders, quarantine=(self.quarantine_uri(), staging),
            date_partition=self.date_partition, timestamp_column=self.config.replication.timestamp_column,
            task=self.task_id, schema=self.schema_name,
        )  # fmt: skip

    # ---------------------------------------------------------------------------------- sync

    def sync(self, progress: Progress | None = None) -> BatchResult:
        """The full load if it has not completed yet, else one CDC batch; then validate every table."""
        with self.store.locked():
            loaded = self._current_state().full_load_done
        result = self.cdc_batch(progress=progress) if loaded else self.full_load(progress)
        return self._validated(result)

    def sync_until_caught_up(
        self, *, deadline_seconds: float | None = None, progress: Progress | None = None, report: Report | None = None
    ) -> BatchResult:
        """What the always-on task did since the last call: the full load, or CDC until caught up; then validate.

        CDC applies batches of ``replication.cdc_batch_max_changes`` until no change is pending, so
        memory stays bounded by one batch however long the backlog. Past ``deadline_seconds``
        (``replication.catch_up_deadline_seconds`` when None) with changes still pending it raises
        :class:`CatchUpDeadlineError` naming the backlog; the batches applied so far are kept.
        """
        with self.store.locked():
            loaded = self._current_state().full_load_done
        if not loaded:
            return self._validated(self.full_load(progress))
        deadline = self.config.replication.catch_up_deadline_seconds if deadline_seconds is None else deadline_seconds
        return self._validated(self.drain(deadline, report or (lambda _: None)))

    def _validated(self, result: BatchResult) -> BatchResult:
        validation = {name: v.state for name, v in self.validate().items()}
        self.publish_cdc_latency()
        return replace(result, validation=validation)

    def drain(self, deadline_seconds: float, report: Report) -> BatchResult:
        """CDC batches until no captured change is pending; CatchUpDeadlineError past the deadline."""
        started, clock = utc_now(), perf_counter()
        batches: list[BatchResult] = []
        while True:
            batch = self.cdc_batch()
            checkpoint = batch.checkpoint
            if batch.changes:
                batches.append(batch)
            pending = self.pending_changes() or 0
            elapsed = perf_counter() - clock
            applied = sum(b.changes for b in batches)
            report(
                f"CDC batch {len(batches)}: {batch.changes:,} changes ({batch.rows:,} written, {batch.quarantined:,} "
                f"quarantined) in {batch.elapsed_seconds:.1f}s; {applied:,} applied in {elapsed:.1f}s, "
                f"{pending:,} pending"
            )
            if not batch.changes or not pending:
                return merged(batches, started, clock, pending, checkpoint)
            if elapsed > deadline_seconds:
                self.publish_cdc_latency()
                raise CatchUpDeadlineError(
                    f"task {self.task_id} did not catch up within {deadline_seconds:g}s: it applied {applied:,} "
                    f"changes in {len(batches)} batch(es) (kept), and {pending:,} captured changes remain; the next "
                    "run goes on from there. If the source writes faster than this, raise "
                    "replication.catch_up_deadline_seconds or replication.cdc_batch_max_changes"
                )

    # ------------------------------------------------------------------------- (re)loading

    def full_load(self, progress: Progress | None = None) -> BatchResult:
        """(Re)load every table from one consistent snapshot; CDC continues from that snapshot."""
        return self.reload(None, progress)

    def reload_targets(self, tables: Sequence[str] | None) -> list[str]:
        """The tables a reload of ``tables`` covers (None, [] or ['*'] = every table); ValueError before any change."""
        chosen = list(tables or [])
        if not chosen or chosen == [EVERY_TABLE]:
            return list(self.table_names)
        unknown = [t for t in chosen if t not in self.table_names]
        if unknown or EVERY_TABLE in chosen:
            raise ValueError(
                f"cannot reload {unknown or chosen}: the replicated tables are {', '.join(self.table_names)} "
                f"(or '{EVERY_TABLE}' alone for every table)"
            )
        return list(dict.fromkeys(chosen))

    def reload(self, tables: Sequence[str] | None = None, progress: Progress | None = None) -> BatchResult:
        """Reload ``tables`` (every table when None/empty/['*']) from one snapshot, atomically (DMS ReloadTables).

        Every chosen table is written to staging first; the lake changes only once all of them are
        written, so a reload that fails leaves the previous snapshot of every table whole.
        """
        names = self.reload_targets(tables)
        every = names == self.table_names
        with self.store.locked():
            state = self._current_state()
            if not every and not state.full_load_done:
                raise ValueError(
                    f"task {self.task_id} has no completed full load, so only every table can be loaded: "
                    "`mlops replicate --reload` (or `mlops replicate`)"
                )
            started, clock = utc_now(), perf_counter()
            before = {name: state.tables[name].state != "Before load" for name in names if name in state.tables}
            self._mark_loading(state, names, started)
            try:
                plan = self._stage(names, every, started, progress)
            except Exception as exc:
                self._fail_reload(state, names, exc)
                raise
            for name, table_plan in plan.tables.items():
                table_plan.reloaded = before.get(name, False)
            state.reload = plan
            self.store.save(state)
            self._finish_reload(state)
        rows = {name: t.rows for name, t in plan.tables.items()}
        files = [final for t in plan.tables.values() for _, final in t.staged]
        loaded = result("full-load" if every else "reload", rows, {}, files, plan.mark, started, clock)
        return replace(loaded, quarantined=sum(t.error_rows for t in plan.tables.values()))

    def _mark_loading(self, state: TaskState, names: list[str], started: datetime) -> None:
        if not state.full_load_done:
            state.mark(status="running", stop_reason=None, last_failure=None, stop=None, start=started,
                       fresh_start=started, full_load_start=started, full_load_finish=None)  # fmt: skip
        for name in names:
            if name in state.tables:
                state.tables[name].state = "Full load"
        self.store.save(state)

    def _stage(self, names: list[str], every: bool, started: datetime, progress: Progress | None) -> ReloadPlan:
        """Install capture, read one snapshot of ``names`` into staged files; the plan to swap them in."""
        absent = [name for name in missing_tables(self.engine) if name in names]
        if absent:
            raise RuntimeError(
                f"the source DB lacks tables {absent}; create and fill them first (`mlops generate`), then replicate"
            )
        tables = self._reflect(names)
        for table in tables.values():
            dms_schema(table, self.config.replication.timestamp_column)  # unmappable types fail before any write
        with self.engine.begin() as conn:
            install_capture(conn, list(tables.values()))
        with snapshot(self.engine) as (conn, mark):
            plans, rejected = stage_tables(
                conn, tables, lake_fs=self.lake_fs, folders=self._folders,
                timestamp_column=self.config.replication.timestamp_column, started=started,
                chunk_rows=self.chunk_rows, max_rows_per_file=self.max_rows_per_file, progress=progress,
            )  # fmt: skip
        try:
            staging = self.lake.staging(self.config.lake.raw_prefix, CONTROL_SCHEMA, QUARANTINE_TABLE)
            quarantine = stage_quarantine(
                self.lake_fs, rejected, final_dir=self.quarantine_uri(), staging_dir=staging, task=self.task_id,
                schema=self.schema_name, started=started, keys=table_keys(tables),
            )  # fmt: skip
        except Exception:
            discard_staged(self.lake_fs, plans, [])
            raise
        return ReloadPlan(
            mark=mark, every_table=every, started=started.isoformat(), tables=plans, quarantine=quarantine
        )

    def _fail_reload(self, state: TaskState, names: list[str], exc: Exception) -> None:
        what = "full load" if not state.full_load_done else f"reload of {', '.join(names)}"
        for name in names:
            if name in state.tables and state.tables[name].state == "Full load":
                state.tables[name].state = "Table error"
        staging = self.lake.staging(self.config.lake.raw_prefix, self.schema_name)
        for info in self.lake_fs.data_files(staging):
            self.lake_fs.delete([self.lake_fs.uri(info.path)])
        state.fail(
            f"{what} failed: {exc}; nothing in the lake changed (the previous snapshot of every table is whole); "
            f"fix the cause, then {reload_fix(self._named(names) if state.full_load_done else [])}",
            utc_now(),
        )
        self.store.save(state)

    def _finish_reload(self, state: TaskState) -> None:
        """Swap in the saved plan's files and commit the tables' new state (rolls a crashed swap forward)."""
        plan = state.reload
        if plan is None:
            return
        now = utc_now()
        apply_plan(self.lake_fs, state, plan, now)
        if plan.every_table:
            state.tables = {name: state.tables[name] for name in self.table_names if name in state.tables}
            state.mark(
                full_load_done=True, checkpoint=plan.mark, cdc_start_position=plan.mark, pending=None,
                full_load_finish=now, status="stopped", stop_reason=STOP_AFTER_FULL_LOAD, stop=now, last_failure=None,
            )  # fmt: skip
        else:
            state.mark(status="running", stop_reason=None, last_failure=None, stop=None)
        state.reload = None
        self.store.save(state)

    # ------------------------------------------------------------------------------------ CDC

    def cdc_batch(self, max_changes: int | None = None, progress: Progress | None = None) -> BatchResult:
        """Apply the next batch of captured changes (at most ``max_changes``) as one CDC file per table."""
        limit = self.config.replication.cdc_batch_max_changes if max_changes is None else max_changes
        if limit < 1:
            raise ValueError(f"max_changes must be at least 1, got {limit}")
        with self.store.locked():
            state = self._current_state()
            self._check_ready_for_cdc(state)
            started, clock = utc_now(), perf_counter()
            try:
                tables = self._check_schema(state)
                changes, pending, resumed = self._plan_batch(state, limit)
                if pending is None:
                    if state.status != "running":
                        state.mark(status="running", stop_reason=None, last_failure=None, stop=None, start=started)
                        self.store.save(state)
                    return result("cdc", {}, {}, [], state.checkpoint or 0, started, clock)
                per_table, files = write_batch(
                    self._batch_target(), self.engine, state, tables, changes, pending.file_name, progress
                )
            except Exception as exc:
                state.fail(f"CDC batch failed: {exc}", utc_now())
                self.store.save(state)
                raise
            commit_batch(state, table_keys(tables), pending, per_table, started)
            self.store.save(state)
        written = {t: b.rows.num_rows for t, b in per_table.items() if b.rows is not None and b.rows.num_rows}
        ops = count_ops([b.rows for b in per_table.values() if b.rows is not None])
        applied = result("cdc", written, ops, files, pending.through, started, clock, resumed)
        quarantined = sum(len({r.change_seq for r in b.rejected}) for b in per_table.values())
        return replace(applied, changes=changes.num_rows, quarantined=quarantined)

    def _check_ready_for_cdc(self, state: TaskState) -> None:
        if not state.full_load_done or state.checkpoint is None:
            raise RuntimeError(
                f"task {self.task_id} has no completed full load; run it first: `mlops replicate` (or sync())"
            )
        if set(state.tables) != set(self.table_names):
            raise RuntimeError(
                f"replication.tables changed since the full load ({sorted(state.tables)} -> "
                f"{sorted(self.table_names)}); {reload_fix([])}"
            )

    def _check_schema(self, state: TaskState) -> dict[str, Table]:
        """The source tables now; added columns are taken on, any other schema change raises.

        Raises SchemaChangeError (dropped, renamed, retyped columns) or RuntimeError (tables gone,
        or recreated so their capture is missing), each naming the tables and the reload that fixes it.
        """
        gone = [name for name in missing_tables(self.engine) if name in self.table_names]
        if gone:
            raise RuntimeError(
                f"tables {gone} are gone from the source DB; recreate them, or remove them from replication.tables, "
                f"then {reload_fix([])}"
            )
        tables = self._reflect(self.table_names)
        changes = []
        for name, table in tables.items():
            replicated = [(c, t) for c, t in state.tables[name].columns]
            found = diff_columns(name, replicated, column_types(table)) if replicated else []
            if found and not appended_columns(found, replicated):
                changes += [c for c in found]
        with self.engine.begin() as conn:
            recreated = missing_capture(conn, self.table_names)
            if recreated:
                detail = f" (and: {'; '.join(c.describe() for c in changes)})" if changes else ""
                raise RuntimeError(
                    f"change capture of {recreated} is gone from the source DB: the tables were dropped and recreated "
                    f"after they were loaded (`mlops generate` and table rebuilds do that), so changes made since were "
                    f"not captured{detail}; {reload_fix(self._named(recreated))}"
                )
            if changes:
                raise SchemaChangeError(changes)
            self._take_added_columns(conn, state, tables)
        return tables

    def _take_added_columns(self, conn: Any, state: TaskState, tables: dict[str, Table]) -> None:
        """Columns added to a source table flow on: capture them from now on and count the DDL.

        Changes captured before the trigger knew the columns get their values looked up
        (:func:`mlops.replication.capture.complete_images`), up to the change seen now.
        """
        for name, table in tables.items():
            table_state = state.tables[name]
            current = [list(pair) for pair in column_types(table)]
            if table_state.columns and current != table_state.columns:
                install_capture(conn, [table])
                assign_change_seqs(conn)
                table_state.capture_added += [c for c, _ in current if c not in dict(table_state.columns)]
                table_state.capture_stale_through = high_water(conn)
                table_state.ddls += len(current) - len(table_state.columns)
            table_state.columns = current

    def _plan_batch(self, state: TaskState, limit: int) -> tuple[pa.Table, PendingBatch | None, bool]:
        """The changes of this batch and its saved plan; redo the pending batch of a crashed run first."""
        checkpoint = state.checkpoint or 0
        with self.engine.begin() as conn:
            assign_change_seqs(conn)
            purge_applied(conn, checkpoint)
        with self.engine.connect() as conn:
            if state.pending is not None:
                pending = state.pending
                changes = read_changes(conn, pending.after, through=pending.through)
                if not changes.num_rows or changes["seq"][-1].as_py() != pending.through:
                    raise RuntimeError(
                        f"pending CDC batch {pending.after}..{pending.through} is no longer in the change log; "
                        f"{reload_fix([])}"
                    )
                return changes, pending, True
            changes = read_changes(conn, checkpoint, limit=limit)
        if not changes.num_rows:
            return changes, None, False
        name = next_cdc_file_name(pc.max(changes["commit_ts"]).as_py(), state.last_cdc_file)
        state.pending = PendingBatch(after=checkpoint, through=changes["seq"][-1].as_py(), file_name=name)
        self.store.save(state)
        return changes, state.pending, False

    # ----------------------------------------------------------------------------- validation

    def validate(self) -> dict[str, TableValidation]:
        """DMS data validation of every loaded table against one consistent read of the source.

        Records each table's outcome in the status (``Validation*`` of DescribeTableStatistics) and
        returns it. With ``EnableValidation`` off every table is ``Not enabled``; before the full
        load nothing is validated.
        """
        with self.store.locked():
            state = self._current_state()
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
            if missing_capture(conn, self.table_names):
                raise RuntimeError(
                    f"change capture is missing in the source DB (it was recreated after the full load), so "
                    f"task {self.task_id} cannot tell pending records from mismatches; {reload_fix([])}"
                )
        tables = self._reflect(self.table_names)
        outcomes: dict[str, TableValidation] = {}
        with snapshot(self.engine) as (conn, _):
            for name, table in tables.items():
                table_state = state.tables[name]
                if table_state.state != "Table completed":
                    waiting = "Table error" if table_state.state == "Table error" else "Pending validation"
                    outcomes[name] = TableValidation(name, waiting)
                    continue
                outcomes[name] = validate_table(
                    conn, table, self._folders(name)[0],
                    checkpoint=max(state.checkpoint, table_state.skip_through or 0),
                    partition_size=self.validation["PartitionSize"],
                    failure_max_count=self.validation["FailureMaxCount"],
                )  # fmt: skip
        return outcomes

    # --------------------------------------------------------------------------------- status

    def pending_changes(self) -> int | None:
        """Captured changes not yet applied (None before the full load or without capture)."""
        return self._lag_and_pending(self._load_state())[1]

    def cdc_lag_seconds(self) -> float | None:
        """Seconds since the oldest captured change not yet in the lake (0 when none); None before the full load."""
        lag, _ = self._lag_and_pending(self._load_state())
        return lag

    def publish_cdc_latency(self) -> float | None:
        """Record the current CDC lag and each table's captured changes not yet applied in the status, as DMS
        publishes CDCLatencySource to CloudWatch and counts captured changes (Inserts/Updates/Deletes) apart
        from applied ones (Applied*) in its table statistics."""
        with self.store.locked():
            state = self._load_state()
            lag, _ = self._lag_and_pending(state)
            waiting = self._waiting_by_table(state)
            for name, table in state.tables.items():
                table.waiting = waiting.get(name, {})
            state.mark(cdc_latency_seconds=lag, cdc_latency_at=utc_now())
            self.store.save(state)
        return lag

    def _waiting_by_table(self, state: TaskState) -> dict[str, dict[str, int]]:
        """Changes in the source's change log not yet applied, per table and op ({} before the full load)."""
        if not state.full_load_done or state.checkpoint is None:
            return {}
        with self.engine.connect() as conn:
            if missing_capture(conn, self.table_names):
                return {}
            return pending_by_table(conn, state.checkpoint)

    def _lag_and_pending(self, state: TaskState) -> tuple[float | None, int | None]:
        if not state.full_load_done or state.checkpoint is None:
            return None, None
        with self.engine.connect() as conn:
            if missing_capture(conn, self.table_names):
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
        """Both DMS responses, the CDC lag (CDCLatencySource), pending changes, the checkpoint, the quarantine."""
        state = self._load_state()
        lag, pending = self._lag_and_pending(state)
        return {
            "tasks": describe_replication_tasks(state, schema=self.schema_name, now=utc_now()),
            "table_statistics": describe_table_statistics(state, schema=self.schema_name),
            "cdc_lag_seconds": lag,
            "pending_changes": pending,
            "checkpoint": state.checkpoint,
            "quarantine": quarantine_report(state),
        }
