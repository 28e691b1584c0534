"""The local DMS task's persisted state, and its views shaped like the DMS API responses.

The state is one JSON file per task under ``<MLOPS_HOME>/dms/``, replaced atomically on every
save. :func:`describe_replication_tasks` and :func:`describe_table_statistics` render it exactly
as boto3's ``dms`` client returns ``DescribeReplicationTasks`` and ``DescribeTableStatistics``
(timestamps as timezone-aware datetimes), so the same checks read both.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOCAL_ARN_PREFIX = "arn:aws:dms:local:000000000000"
MIGRATION_TYPE = "full-load-and-cdc"
STOP_AFTER_FULL_LOAD = "Stop Reason STOPPED_AFTER_FULL_LOAD"
STOP_FATAL_ERROR = "Stop Reason FATAL_ERROR"


def local_task_arn(task_id: str) -> str:
    """The ARN the local stand-in reports for ``task_id``."""
    return f"{LOCAL_ARN_PREFIX}:task:{task_id}"


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass
class TableState:
    """Counters of one replicated table (the fields of DMS TableStatistics)."""

    state: str = "Before load"
    full_load_rows: int = 0
    error_rows: int = 0
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    waiting: dict[str, int] = field(default_factory=dict)  # captured, not yet applied, per op (I/U/D)
    full_load_start: str | None = None
    full_load_end: str | None = None
    reloaded: bool = False
    last_update: str | None = None
    validation_state: str = "Pending validation"
    validation_pending: int = 0
    validation_failed: int = 0
    validation_suspended: int = 0
    validation_details: str = ""
    validation_failures: list[str] = field(default_factory=list)
    validated_at: str | None = None
    ddls: int = 0
    columns: list[list[str]] = field(default_factory=list)
    skip_through: int | None = None
    capture_added: list[str] = field(default_factory=list)
    capture_stale_through: int | None = None
    quarantined: int = 0
    quarantine_open: dict[str, str] = field(default_factory=dict)
    quarantine_overflow: int = 0


@dataclass
class TableReload:
    """One table of a reload, written to staging: what replaces what, and the table's new counters."""

    staged: list[list[str]]
    stale: list[str]
    rows: int
    error_rows: int
    columns: list[list[str]]
    quarantine_open: dict[str, str] = field(default_factory=dict)
    quarantine_overflow: int = 0
    load_start: str | None = None
    reloaded: bool = False


@dataclass
class ReloadPlan:
    """A (re)load whose files are all staged; saved before they are swapped in, so a crash rolls it forward."""

    mark: int
    every_table: bool
    started: str
    tables: dict[str, TableReload] = field(default_factory=dict)
    quarantine: list[list[str]] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReloadPlan:
        """Rebuild a plan saved with the task state."""
        tables = {name: TableReload(**values) for name, values in data.pop("tables", {}).items()}
        return cls(**data, tables=tables)


@dataclass
class PendingBatch:
    """A CDC batch whose files may be (partly) written but whose checkpoint is not yet saved."""

    after: int
    through: int
    file_name: str


@dataclass
class TaskState:
    """Everything the local replicator persists about its task."""

    task_id: str
    created: str
    status: str = "ready"
    stop_reason: str | None = None
    last_failure: str | None = None
    fresh_start: str | None = None
    start: str | None = None
    stop: str | None = None
    full_load_start: str | None = None
    full_load_finish: str | None = None
    full_load_done: bool = False
    checkpoint: int | None = None
    cdc_start_position: int | None = None
    pending: PendingBatch | None = None
    last_cdc_file: str | None = None
    cdc_latency_seconds: float | None = None
    cdc_latency_at: str | None = None
    reload: ReloadPlan | None = None
    tables: dict[str, TableState] = field(default_factory=dict)

    @classmethod
    def new(cls, task_id: str, tables: Sequence[str], now: datetime) -> TaskState:
        """A task that was created but never started."""
        return cls(task_id=task_id, created=_iso(now) or "", tables={t: TableState() for t in tables})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskState:
        """Rebuild the state saved by :meth:`to_json`."""
        tables = {name: TableState(**values) for name, values in data.pop("tables", {}).items()}
        pending = data.pop("pending", None)
        reload = data.pop("reload", None)
        return cls(
            **data,
            tables=tables,
            pending=PendingBatch(**pending) if pending else None,
            reload=ReloadPlan.from_json(reload) if reload else None,
        )

    def to_json(self) -> dict[str, Any]:
        """The state as plain JSON data."""
        return asdict(self)

    def mark(self, **changes: Any) -> None:
        """Set fields; datetimes are stored as ISO strings."""
        for key, value in changes.items():
            setattr(self, key, _iso(value) if isinstance(value, datetime) else value)

    def fail(self, message: str, now: datetime) -> None:
        """Record a fatal error: the task is 'failed' until a later batch succeeds."""
        self.status, self.stop_reason, self.last_failure, self.stop = "failed", STOP_FATAL_ERROR, message, _iso(now)


class StatusStore:
    """The JSON file holding one task's state, with atomic saves and an exclusive run lock."""

    def __init__(self, directory: Path, task_id: str) -> None:
        self.directory = directory
        self.path = directory / f"{task_id}.json"
        self.lock_path = directory / f"{task_id}.lock"
        self.task_id = task_id

    def load(self, tables: Sequence[str], now: datetime) -> TaskState:
        """The saved state, or a fresh 'ready' task if none was saved; ValueError if the file is corrupt."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return TaskState.new(self.task_id, tables, now)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"DMS status file {self.path} is corrupt ({exc}); delete it and run a full load again"
            ) from None
        return TaskState.from_json(data)

    def save(self, state: TaskState) -> None:
        """Write the state to a temporary file, fsync it and rename it over the old one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("w") as handle:
            json.dump(state.to_json(), handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the task's exclusive lock (waits for another replicator of the same task to finish)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def table_mappings(schema: str, tables: Sequence[str]) -> str:
    """The DMS TableMappings JSON: one selection rule per table and the change-seq column rule."""
    rules: list[dict[str, Any]] = [
        {
            "rule-type": "selection",
            "rule-id": str(i),
            "rule-name": f"include-{t}",
            "object-locator": {"schema-name": schema, "table-name": t},
            "rule-action": "include",
        }
        for i, t in enumerate(tables, start=1)
    ]
    rules.append(
        {
            "rule-type": "transformation",
            "rule-id": str(len(tables) + 1),
            "rule-name": "add-dms-change-seq",
            "rule-target": "column",
            "object-locator": {"schema-name": schema, "table-name": "%"},
            "rule-action": "add-column",
            "value": "dms_change_seq",
            "expression": "$AR_H_CHANGE_SEQ",
            "data-type": {"type": "string", "length": 50},
        }
    )
    return json.dumps({"rules": rules})


def describe_replication_tasks(state: TaskState, *, schema: str, now: datetime) -> dict[str, Any]:
    """The state as a boto3 ``describe_replication_tasks`` response with one task."""
    task_id = state.task_id
    tables = list(state.tables.values())
    loaded = sum(t.state == "Table completed" for t in tables)
    errored = sum(t.state == "Table error" for t in tables)
    loading = sum(t.state == "Full load" for t in tables)
    start = _dt(state.fresh_start)
    end = _dt(state.stop) if state.status != "running" and state.stop else now
    stats: dict[str, Any] = {
        "FullLoadProgressPercent": int(100 * loaded / len(tables)) if tables else 0,
        "ElapsedTimeMillis": int((end - start).total_seconds() * 1000) if start and end else 0,
        "TablesLoaded": loaded,
        "TablesLoading": loading,
        "TablesQueued": len(tables) - loaded - loading - errored,
        "TablesErrored": errored,
    }
    for key, value in (
        ("FreshStartDate", state.fresh_start),
        ("StartDate", state.start),
        ("StopDate", state.stop),
        ("FullLoadStartDate", state.full_load_start),
        ("FullLoadFinishDate", state.full_load_finish),
    ):
        if value:
            stats[key] = _dt(value)
    task: dict[str, Any] = {
        "ReplicationTaskIdentifier": task_id,
        "SourceEndpointArn": f"{LOCAL_ARN_PREFIX}:endpoint:{task_id}-source",
        "TargetEndpointArn": f"{LOCAL_ARN_PREFIX}:endpoint:{task_id}-lake",
        "ReplicationInstanceArn": f"{LOCAL_ARN_PREFIX}:rep:local",
        "MigrationType": MIGRATION_TYPE,
        "TableMappings": table_mappings(schema, list(state.tables)),
        "Status": state.status,
        "ReplicationTaskCreationDate": _dt(state.created),
        "ReplicationTaskArn": local_task_arn(task_id),
        "ReplicationTaskStats": stats,
    }
    optional = {
        "StopReason": state.stop_reason,
        "LastFailureMessage": state.last_failure,
        "ReplicationTaskStartDate": _dt(state.start),
        "CdcStartPosition": None if state.cdc_start_position is None else str(state.cdc_start_position),
        "RecoveryCheckpoint": None if state.checkpoint is None else str(state.checkpoint),
    }
    task.update({k: v for k, v in optional.items() if v is not None})
    return {"ReplicationTasks": [task]}


def describe_table_statistics(state: TaskState, *, schema: str) -> dict[str, Any]:
    """The state as a boto3 ``describe_table_statistics`` response.

    ``Inserts``/``Updates``/``Deletes`` count the changes captured from the source (applied, plus those
    waiting in its change log when the status was last published), ``Applied*`` those in the lake.
    """
    rows = []
    for name, t in state.tables.items():
        row: dict[str, Any] = {
            "SchemaName": schema,
            "TableName": name,
            "Inserts": t.inserts + t.waiting.get("I", 0),
            "Deletes": t.deletes + t.waiting.get("D", 0),
            "Updates": t.updates + t.waiting.get("U", 0),
            "Ddls": t.ddls,
            "AppliedInserts": t.inserts,
            "AppliedDeletes": t.deletes,
            "AppliedUpdates": t.updates,
            "AppliedDdls": t.ddls,
            "FullLoadRows": t.full_load_rows,
            "FullLoadCondtnlChkFailedRows": 0,
            "FullLoadErrorRows": t.error_rows,
            "FullLoadReloaded": t.reloaded,
            "TableState": t.state,
            "ValidationPendingRecords": t.validation_pending,
            "ValidationFailedRecords": t.validation_failed,
            "ValidationSuspendedRecords": t.validation_suspended,
            "ValidationState": t.validation_state,
        }
        if t.validation_details:
            row["ValidationStateDetails"] = t.validation_details
        for key, value in (
            ("FullLoadStartTime", t.full_load_start),
            ("FullLoadEndTime", t.full_load_end),
            ("LastUpdateTime", t.last_update),
        ):
            if value:
                row[key] = _dt(value)
        rows.append(row)
    return {"ReplicationTaskArn": local_task_arn(state.task_id), "TableStatistics": rows}


def published_status(state: TaskState, *, schema: str, now: datetime, latency_window_seconds: float) -> dict[str, Any]:
    """What the task publishes, read from its state alone (no source DB): what the aws check reads from AWS.

    Both DMS responses, and the CDC latency datapoint the last sync recorded (what DMS sends to
    CloudWatch), or None when it is older than ``latency_window_seconds`` (the check's metric window).
    """
    measured = _dt(state.cdc_latency_at)
    recent = measured is not None and (now - measured).total_seconds() <= latency_window_seconds
    return {
        "tasks": describe_replication_tasks(state, schema=schema, now=now),
        "table_statistics": describe_table_statistics(state, schema=schema),
        "cdc_lag_seconds": state.cdc_latency_seconds if recent else None,
        "quarantine": quarantine_report(state),
    }


def quarantine_report(state: TaskState, examples: int = 5) -> dict[str, dict[str, Any]]:
    """Per table: quarantined rows and changes in total, those still open, and a few open ones described.

    Open entries are saved as ``"<change seq>|<description>"`` (:mod:`mlops.replication.quarantine`).
    """
    return {
        name: {
            "total": t.quarantined,
            "open": len(t.quarantine_open) + t.quarantine_overflow,
            "examples": [entry.split("|", 1)[1] for _, entry in sorted(t.quarantine_open.items())[:examples]],
        }
        for name, t in state.tables.items()
    }
