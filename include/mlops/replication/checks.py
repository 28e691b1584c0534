"""Replication health checks: pure functions over DMS-shaped evidence, identical on aws and local.

The inputs are boto3's ``describe_replication_tasks`` and ``describe_table_statistics``
responses (from AWS or from the local stand-in), the CDC lag in seconds (CloudWatch
``CDCLatencySource``/``CDCLatencyTarget`` or the local change log) and the number of lake objects
that arrived since the last check. Whether the lake holds the source's rows is DMS's own data
validation (``Validation*`` fields of the table statistics): the checks read its verdict and
never touch the source DB or the lake. Standard library only, so the MWAA worker can run them.

Validation rule, per expected table:

- ``ValidationFailedRecords`` > 0 or ``ValidationSuspendedRecords`` > 0 fails; so does a state
  that says validation cannot vouch for the table (``Mismatched records``, ``Suspended records``,
  ``Not enabled``, ``No primary key``, ``Table error``, ``Error``, ``Cancelled`` or any state DMS
  does not document).
- A table *awaiting* validation (``Pending records``, ``Pending validation``, ``Pending
  revalidation``, ``Preparing table``) passes while it has been awaiting for at most
  ``max_validation_pending_seconds``, counted from the first check that saw it awaiting
  (:func:`validation_pending_since`); beyond that it fails.
- ``Validated`` with ``ValidationPendingRecords`` > 0 passes: the last validation found no
  mismatch and the pending records are changes that wait for the next one (S3 targets validate
  CDC once a day, at 00:00 UTC, over the previous 24 hours).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

FULL_LOAD_DONE_STOP_REASONS = ("FULL_LOAD_ONLY_FINISHED", "STOPPED_AFTER_FULL_LOAD", "STOPPED_AFTER_CACHED_EVENTS")
TABLE_COMPLETED = "Table completed"
RESUME_HINT = (
    "resume the task (aws: `aws dms start-replication-task --start-replication-task-type resume-processing`; "
    "local: `mlops replicate`)"
)
RELOAD_HINT = (
    "reload it: trigger mlops_ingest with reload_tables=['<table>'] (DMS ReloadTables on aws), "
    "or locally `mlops replicate --reload <table>`"
)
VALIDATED = "Validated"
AWAITING_VALIDATION = ("Pending records", "Pending validation", "Pending revalidation", "Preparing table")
VALIDATION_HINTS = {
    "Mismatched records": "the lake and the source differ",
    "Suspended records": "DMS could not validate some records",
    "Not enabled": "validation is off; set ValidationSettings.EnableValidation (replication.validation_enabled)",
    "No primary key": "DMS validates only tables with a primary key; add one in the source",
    "Table error": "the table is in error and some data was not migrated",
    "Error": "validation failed with an unexpected error; see the task log",
    "Cancelled": "validation was cancelled",
}


def revalidate_hint(table: str) -> str:
    """What to do about records of ``table`` that failed or could not be validated."""
    name = table.rpartition(".")[2]
    return (
        "find the records in the validation failures (aws: s3_validation_failures in the lake bucket; "
        "local: `mlops status`), fix their cause (a fixed source row replicates as a new change), then revalidate "
        "(aws: `aws dms reload-tables --reload-option validate-only`; local: the next `mlops replicate`) or "
        + reload_fix([name])
    )


def reload_fix(tables: Sequence[str]) -> str:
    """The command and DAG Param that reload ``tables`` (every table when empty)."""
    names = " ".join(tables)
    param = "['*']" if not tables else repr(list(tables))
    what = "the table" if len(tables) == 1 else "the tables" if tables else "every table"
    return (
        f"reload {what}: `mlops replicate --reload{' ' + names if names else ''}` (locally) or trigger "
        f"mlops_ingest with reload_tables={param} (DMS ReloadTables on aws)"
    )


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
    fresh_objects: Mapping[str, int] | None,
    require_fresh_objects: bool,
    *,
    max_validation_pending_seconds: float,
    pending_since: Mapping[str, datetime],
    now: datetime,
    previous_applied: Mapping[str, int] | None = None,
    since: datetime | None = None,
    quarantine: Mapping[str, Mapping[str, Any]] | None = None,
    content: Sequence[CheckResult] = (),
) -> list[CheckResult]:
    """Every replication check: task status, full load, tables, data validation, CDC lag, the source's
    changes against what arrived (:mod:`mlops.replication.source_changes`), the quarantine and the lake's content.

    ``fresh_objects`` counts the lake objects per table written since ``since`` (the last successful
    check, whose applied-change counters are ``previous_applied``; None and {} on the first check).
    ``pending_since`` comes from :func:`validation_pending_since` (when each table awaiting
    validation was first seen awaiting); ``now`` is the time of this check. ``quarantine`` is the
    stand-in's report per table (None where DMS reports none: aws); ``content`` holds the lake
    content checks' results (:mod:`mlops.replication.content`).
    """
    from mlops.replication.source_changes import check_source_changes

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
    rows = table_stats_response.get("TableStatistics") or []
    results += check_tables(rows, expected_tables)
    results += check_validation(rows, expected_tables, max_validation_pending_seconds, pending_since, now)
    results.append(check_cdc_lag(cdc_lag_seconds, max_cdc_lag_seconds, status))
    results += check_source_changes(
        rows, expected_tables, previous_applied=previous_applied or {}, fresh_objects=fresh_objects,
        cdc_lag_seconds=cdc_lag_seconds, max_cdc_lag_seconds=max_cdc_lag_seconds,
        require_fresh_objects=require_fresh_objects, since=since, now=now,
    )  # fmt: skip
    results += check_quarantine(quarantine, expected_tables)
    return results + list(content)


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


def find_table(rows: Sequence[dict[str, Any]], expected: str) -> dict[str, Any] | None:
    schema, _, table = expected.rpartition(".")
    for row in rows:
        if row.get("TableName") == table and (not schema or row.get("SchemaName") == schema):
            return row
    return None


def check_tables(rows: Sequence[dict[str, Any]], expected_tables: Sequence[str]) -> list[CheckResult]:
    """Each expected table (``table`` or ``schema.table``) is listed, completed and without error rows."""
    results = []
    for expected in expected_tables:
        row = find_table(rows, expected)
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
                else f"table {expected} has {errors} full-load error rows (rows whose values the lake cannot carry; "
                f"see the quarantine); fix them in the source, then {reload_fix([expected.rpartition('.')[2]])}",
            )
        )  # fmt: skip
    return results


def check_validation(
    rows: Sequence[dict[str, Any]],
    expected_tables: Sequence[str],
    max_pending_seconds: float,
    pending_since: Mapping[str, datetime],
    now: datetime,
) -> list[CheckResult]:
    """DMS data validation vouches for each expected table (the rule is in the module docstring).

    Tables missing from the statistics are reported by :func:`check_tables` alone.
    """
    results: list[CheckResult] = []
    for expected in expected_tables:
        row = find_table(rows, expected)
        if row is None:
            continue
        details = row.get("ValidationStateDetails") or ""
        failed = int(row.get("ValidationFailedRecords") or 0)
        suspended = int(row.get("ValidationSuspendedRecords") or 0)
        results.append(_validation_state(expected, row, max_pending_seconds, pending_since.get(expected), now))
        results.append(
            CheckResult(
                "validation_failed_records", expected, "ValidationFailedRecords", failed, 0, failed == 0,
                f"table {expected}: no record failed validation" if failed == 0
                else f"table {expected}: {failed} record(s) differ between source and lake"
                + (f" ({details})" if details else "") + f"; {revalidate_hint(expected)}",
            )
        )  # fmt: skip
        results.append(
            CheckResult(
                "validation_suspended_records", expected, "ValidationSuspendedRecords", suspended, 0, suspended == 0,
                f"table {expected}: no record suspended from validation" if suspended == 0
                else f"table {expected}: {suspended} record(s) could not be validated"
                + (f" ({details})" if details else "")
                + "; DMS stops comparing after FailureMaxCount failed records "
                f"(replication.validation_failure_max_count); {revalidate_hint(expected)}",
            )
        )  # fmt: skip
    return results


def _validation_state(
    table: str, row: dict[str, Any], max_pending_seconds: float, since: datetime | None, now: datetime
) -> CheckResult:
    """The table's ValidationState: Validated passes, awaiting passes within the budget, the rest fails."""
    state = row.get("ValidationState")
    pending = int(row.get("ValidationPendingRecords") or 0)
    details = row.get("ValidationStateDetails") or ""
    expected = f"{VALIDATED}, or awaiting validation for at most {max_pending_seconds:g}s"
    if state == VALIDATED:
        waiting = f"; {pending} changed record(s) wait for the next validation" if pending else ""
        return CheckResult("validation_state", table, "ValidationState", state, expected, True,
                           f"table {table} is validated{waiting}")  # fmt: skip
    if state in AWAITING_VALIDATION:
        waited = (now - since).total_seconds() if since else 0.0
        ok = waited <= max_pending_seconds
        message = f"table {table} is {state!r} ({pending} record(s) pending) for {waited:.0f}s"
        if not ok:
            message += (
                f", longer than {max_pending_seconds:g}s: DMS is not validating it; check that the task runs "
                f"(S3 targets validate at 00:00 UTC only while the task runs), then {RESUME_HINT} "
                "(or raise replication.max_validation_pending_seconds)"
            )
        return CheckResult("validation_state", table, "ValidationState", state, expected, ok, message)
    hint = VALIDATION_HINTS.get(state or "", "DMS reports a validation state this check does not know")
    return CheckResult(
        "validation_state", table, "ValidationState", state, expected, False,
        f"table {table} is {state!r}: {hint}" + (f" ({details})" if details else "") + f"; {revalidate_hint(expected)}",
    )  # fmt: skip


def validation_pending_since(
    rows: Sequence[dict[str, Any]], expected_tables: Sequence[str], previous: Mapping[str, str], now: datetime
) -> dict[str, datetime]:
    """When each expected table awaiting validation was first seen awaiting.

    ``previous`` is the same mapping from the last successful check (ISO strings); a table
    that was validated in between starts again at ``now``. Tables not awaiting are left out.
    """
    since: dict[str, datetime] = {}
    for expected in expected_tables:
        row = find_table(rows, expected)
        if row is not None and row.get("ValidationState") in AWAITING_VALIDATION:
            earlier = previous.get(expected)
            since[expected] = min(datetime.fromisoformat(earlier), now) if earlier else now
    return since


def replicated_rows(rows: Sequence[dict[str, Any]], expected_tables: Sequence[str]) -> dict[str, int]:
    """Rows per expected table in the lake by DMS's counters: FullLoadRows + AppliedInserts - AppliedDeletes."""
    counts: dict[str, int] = {}
    for expected in expected_tables:
        row = find_table(rows, expected)
        if row is not None:
            loaded = int(row.get("FullLoadRows") or 0)
            counts[expected] = loaded + int(row.get("AppliedInserts") or 0) - int(row.get("AppliedDeletes") or 0)
    return counts


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


def check_quarantine(
    report: Mapping[str, Mapping[str, Any]] | None, expected_tables: Sequence[str]
) -> list[CheckResult]:
    """No quarantined row or change is still open (the lake misses it) in any expected table.

    ``report`` (:func:`mlops.replication.status.quarantine_report`) gives per table the open
    entries and a few descriptions; None means the target reports no quarantine (DMS on aws logs
    such records to the task log with ``DataErrorPolicy: LOG_ERROR``, and its validation fails them).
    """
    if report is None:
        return [
            CheckResult("quarantine", None, "QuarantinedOpen", None, 0, True,
                        "no quarantine on this target: DMS logs records it cannot apply and validation reports them")
        ]  # fmt: skip
    results = []
    for expected in expected_tables:
        table = expected.rpartition(".")[2]
        entry = report.get(table) or {}
        open_entries = int(entry.get("open") or 0)
        examples = "; ".join(entry.get("examples") or [])
        message = (
            f"table {table}: nothing quarantined is missing from the lake ({entry.get('total', 0)} quarantined in all)"
            if not open_entries
            else f"table {table}: {open_entries} quarantined row(s)/change(s) are missing from the lake "
            f"({examples}); replication went on without them. Fix the rows in the source (the new change "
            f"supersedes the quarantined one), or {reload_fix([table])}"
        )
        results.append(CheckResult("quarantine", table, "QuarantinedOpen", open_entries, 0, not open_entries, message))
    return results


def reload_tables_param(value: str | Sequence[str] | None, replicated: Sequence[str]) -> list[str]:
    """The tables a ``reload_tables`` Param asks to reload: [] for none, every table for ``['*']``.

    Accepts a list, or its rendered template text (``"['orders']"``, ``'["orders"]'``, ``"orders,customers"``).
    Raises ValueError naming the replicated tables for anything else, before anything is reloaded.
    """
    import ast

    if value is None or (isinstance(value, str) and value.strip() in ("", "[]", "None")):
        return []
    if isinstance(value, str):
        text = value.strip()
        try:
            items = ast.literal_eval(text) if text.startswith(("[", "(")) else text.split(",")
        except (ValueError, SyntaxError):
            raise ValueError(
                f"reload_tables={value!r} is not a list of table names; e.g. ['orders'] or ['*']"
            ) from None
    else:
        items = value
    tables = [str(item).strip() for item in items if str(item).strip()]
    if tables == ["*"]:
        return list(replicated)
    unknown = [t for t in tables if t not in replicated]
    if unknown:
        raise ValueError(
            f"reload_tables names {unknown}, which are not replicated; use some of {list(replicated)} or ['*'] for all"
        )
    return list(dict.fromkeys(tables))


def reload_progress(rows: Sequence[dict[str, Any]], tables: Sequence[str]) -> tuple[list[str], list[str]]:
    """(tables still loading, tables errored) among ``tables`` in DescribeTableStatistics rows."""
    loading, errored = [], []
    for table in tables:
        row = find_table(rows, table)
        state = (row or {}).get("TableState")
        if state == "Table error":
            errored.append(table)
        elif state != TABLE_COMPLETED:
            loading.append(table)
    return loading, errored


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
