"""Replication health checks: pure functions over DMS-shaped evidence, identical on aws and local.

The inputs are boto3's ``describe_replication_tasks`` and ``describe_table_statistics``
responses (from AWS or from the local stand-in), the CDC lag in seconds (CloudWatch
``CDCLatencySource``/``CDCLatencyTarget`` or the local change log) and the number of lake objects
that arrived since the last check (:func:`count_fresh_objects`, for ``file://`` and ``s3://``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow.fs as pafs

from mlops.replication.lake_io import LakeFS

FULL_LOAD_DONE_STOP_REASONS = ("FULL_LOAD_ONLY_FINISHED", "STOPPED_AFTER_FULL_LOAD", "STOPPED_AFTER_CACHED_EVENTS")
TABLE_COMPLETED = "Table completed"
RESUME_HINT = (
    "resume the task (aws: `aws dms start-replication-task --start-replication-task-type resume-processing`; "
    "local: `mlops replicate`)"
)
RELOAD_HINT = "reload it (aws: `aws dms reload-tables`; local: LocalReplicator.full_load())"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check; ``message`` says what was measured and, on failure, what to do."""

    name: str
    table: str | None
    metric: str
    value: Any
    threshold: Any
    passed: bool
    message: str


class ReplicationCheckError(RuntimeError):
    """One or more replication checks failed; ``failures`` holds them."""

    def __init__(self, failures: Sequence[CheckResult]) -> None:
        self.failures = list(failures)
        lines = [f"{len(self.failures)} replication check(s) failed:"]
        lines += [
            f"  - {_label(r)}: {r.metric}={r.value!r} (expected {r.threshold}); {r.message}" for r in self.failures
        ]
        super().__init__("\n".join(lines))


def _label(result: CheckResult) -> str:
    return f"{result.name} [table {result.table}]" if result.table else result.name


def check_replication(
    tasks_response: dict[str, Any],
    table_stats_response: dict[str, Any],
    expected_tables: list[str],
    max_cdc_lag_seconds: float,
    cdc_lag_seconds: float | None,
    fresh_objects: int | None,
    require_fresh_objects: bool,
) -> list[CheckResult]:
    """Every replication check: task status, full load, tables, CDC lag and fresh objects."""
    tasks = tasks_response.get("ReplicationTasks") or []
    if len(tasks) != 1:
        results = [
            CheckResult(
                "task_status", None, "ReplicationTasks", len(tasks), 1, False,
                "DescribeReplicationTasks must return exactly one task; "
                "check the task ARN (aws.dms_replication_task_arn)",
            )
        ]  # fmt: skip
        status = None
    else:
        task = tasks[0]
        status = task.get("Status")
        results = [check_task_status(task), *check_full_load(task.get("ReplicationTaskStats") or {})]
    results += check_tables(table_stats_response.get("TableStatistics") or [], expected_tables)
    results.append(check_cdc_lag(cdc_lag_seconds, max_cdc_lag_seconds, status))
    results.append(check_fresh_objects(fresh_objects, require_fresh_objects))
    return results


def check_task_status(task: dict[str, Any]) -> CheckResult:
    """The task replicates (``running``) or stopped only because its full load finished."""
    status, reason = task.get("Status"), task.get("StopReason") or ""
    ok = status == "running" or (status == "stopped" and any(r in reason for r in FULL_LOAD_DONE_STOP_REASONS))
    name = task.get("ReplicationTaskIdentifier", "?")
    if ok:
        message = f"task {name} is {status}" + (f" ({reason})" if reason else "")
    else:
        failure = task.get("LastFailureMessage")
        message = (
            f"task {name} is {status!r} (StopReason: {reason or 'none'}"
            + (f"; LastFailureMessage: {failure}" if failure else "")
            + f"); fix the cause shown in the task log, then {RESUME_HINT}"
        )
    return CheckResult("task_status", None, "Status", status, "running, or stopped after full load", ok, message)


def check_full_load(stats: dict[str, Any]) -> list[CheckResult]:
    """The full load reached 100 % and no table errored."""
    progress = stats.get("FullLoadProgressPercent")
    errored = stats.get("TablesErrored")
    return [
        CheckResult(
            "full_load_progress", None, "FullLoadProgressPercent", progress, 100, progress == 100,
            "full load complete" if progress == 100
            else f"full load is at {progress}%; wait for it to finish, or look for errored tables and {RELOAD_HINT}",
        ),
        CheckResult(
            "tables_errored", None, "TablesErrored", errored, 0, errored == 0,
            "no errored tables" if errored == 0
            else f"{errored} table(s) errored; see TableState per table and {RELOAD_HINT}",
        ),
    ]  # fmt: skip


def _find_table(rows: Sequence[dict[str, Any]], expected: str) -> dict[str, Any] | None:
    schema, _, table = expected.rpartition(".")
    for row in rows:
        if row.get("TableName") == table and (not schema or row.get("SchemaName") == schema):
            return row
    return None


def check_tables(rows: Sequence[dict[str, Any]], expected_tables: Sequence[str]) -> list[CheckResult]:
    """Each expected table (``table`` or ``schema.table``) is listed, completed and without error rows."""
    results = []
    for expected in expected_tables:
        row = _find_table(rows, expected)
        if row is None:
            results.append(
                CheckResult(
                    "table_state", expected, "TableState", None, TABLE_COMPLETED, False,
                    f"table {expected} is missing from DescribeTableStatistics; add it to the task's table mappings "
                    f"(replication.tables) and {RELOAD_HINT}",
                )
            )  # fmt: skip
            continue
        state, errors = row.get("TableState"), row.get("FullLoadErrorRows") or 0
        results.append(
            CheckResult(
                "table_state", expected, "TableState", state, TABLE_COMPLETED, state == TABLE_COMPLETED,
                f"table {expected} is {state!r}" if state == TABLE_COMPLETED
                else f"table {expected} is {state!r}, not {TABLE_COMPLETED!r}; check the task log and {RELOAD_HINT}",
            )
        )  # fmt: skip
        results.append(
            CheckResult(
                "full_load_error_rows", expected, "FullLoadErrorRows", errors, 0, errors == 0,
                f"table {expected} loaded without error rows" if errors == 0
                else f"table {expected} has {errors} full-load error rows; fix the rejected rows in the source and "
                + RELOAD_HINT,
            )
        )  # fmt: skip
    return results


def check_cdc_lag(lag_seconds: float | None, max_lag_seconds: float, task_status: str | None) -> CheckResult:
    """CDC lag is under the bound; a missing measurement passes only when the task is not running CDC."""
    if lag_seconds is None:
        ok = task_status != "running"
        message = (
            "no CDC latency measured; the task is not running CDC"
            if ok
            else "no CDC latency measured while the task runs; check that CDCLatencySource is reported, "
            f"then {RESUME_HINT}"
        )
        return CheckResult("cdc_lag", None, "CDCLatencySource", None, max_lag_seconds, ok, message)
    ok = lag_seconds <= max_lag_seconds
    message = (
        f"CDC lag {lag_seconds:.1f}s is within {max_lag_seconds:g}s"
        if ok
        else f"CDC lag {lag_seconds:.1f}s exceeds {max_lag_seconds:g}s: the lake is behind the source; "
        f"check source load and the replication instance, then {RESUME_HINT} "
        "(or raise replication.max_cdc_lag_seconds)"
    )
    return CheckResult("cdc_lag", None, "CDCLatencySource", round(lag_seconds, 3), max_lag_seconds, ok, message)


def check_fresh_objects(fresh_objects: int | None, required: bool) -> CheckResult:
    """New lake objects arrived since the last check (only enforced when ``required``)."""
    ok = not required or bool(fresh_objects)
    if fresh_objects is None:
        message = "fresh objects were not counted" + ("; pass the count of new lake objects" if required else "")
    elif fresh_objects:
        message = f"{fresh_objects} new lake object(s) since the last check"
    else:
        message = "no new lake objects since the last check" + (
            ": the source had no changes or the task stopped writing; check source activity and the task, "
            "or set replication.require_fresh_objects=false"
            if required
            else ""
        )
    return CheckResult("fresh_objects", None, "FreshObjects", fresh_objects, ">= 1" if required else "any", ok, message)


def raise_on_failures(results: Sequence[CheckResult]) -> None:
    """Raise :class:`ReplicationCheckError` naming every failed check's table and metric."""
    failures = [r for r in results if not r.passed]
    if failures:
        raise ReplicationCheckError(failures)


def format_results(results: Sequence[CheckResult]) -> str:
    """One line per check, for task logs."""
    return "\n".join(
        f"{'PASS' if r.passed else 'FAIL'} {_label(r)} {r.metric}={r.value!r}: {r.message}" for r in results
    )


def list_fresh_objects(uri: str, since: datetime | None) -> list[str]:
    """URIs of objects under ``uri`` (recursively) modified after ``since`` (all when None).

    Works on ``file://`` and ``s3://`` alike; hidden objects (``_``/``.`` names) are ignored.
    A naive ``since`` is taken as UTC.
    """
    lake_fs = LakeFS.from_uri(uri)
    selector = pafs.FileSelector(lake_fs.root_path, recursive=True, allow_not_found=True)
    cutoff = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    fresh = []
    for info in lake_fs.filesystem.get_file_info(selector):
        if info.type != pafs.FileType.File or info.base_name.startswith(("_", ".")):
            continue
        mtime = info.mtime if info.mtime is None or info.mtime.tzinfo else info.mtime.replace(tzinfo=UTC)
        if cutoff is None or (mtime is not None and mtime > cutoff):
            fresh.append(lake_fs.uri(info.path))
    return sorted(fresh)


def count_fresh_objects(uri: str, since: datetime | None) -> int:
    """How many objects under ``uri`` are newer than ``since`` (see :func:`list_fresh_objects`)."""
    return len(list_fresh_objects(uri, since))
