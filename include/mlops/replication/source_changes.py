"""The freshness rule of the replication check: judged from the source's own change activity.

An idle source is healthy. Ingest fails only when changes that exist did not reach the lake within
the lag budget (``replication.max_cdc_lag_seconds``). The evidence is DMS's, the same on both
targets (standard library only, so the MWAA worker runs it):

- DescribeTableStatistics per table: ``Inserts``/``Updates``/``Deletes``/``Ddls`` count the changes
  DMS *captured* from the source, ``Applied*`` those it *applied* to the target; the difference is
  what waits to be written. ``LastUpdateTime`` is when DMS last updated the table's statistics.
  (Locally, the DMS stand-in counts the changes waiting in the source's change log the same way.)
- The CDC lag (CloudWatch ``CDCLatencySource`` + ``CDCLatencyTarget``; locally the age of the
  oldest change not yet applied), zero when nothing waits.
- The applied counters at the last successful check (its XCom) and the lake objects of each table
  written since then.

Per expected table:

- changes waiting while the lag exceeds the budget fail, naming the table and the count (without
  a latency datapoint: changes waiting while the table's statistics were not updated for longer
  than the budget, i.e. DMS stopped applying);
- changes applied (or a full load finished) since the last check with no new lake object of the
  table fail when ``require_fresh_objects`` (DMS says it wrote what the lake does not hold);
- no change waiting and none applied passes: the source was idle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from mlops.replication.checks import RESUME_HINT, CheckResult, find_table

OPS = ("Inserts", "Updates", "Deletes", "Ddls")


def change_counts(row: Mapping[str, Any]) -> tuple[int, int]:
    """(changes captured from the source, changes applied to the target) of one TableStatistics row.

    A target that reports no ``Applied*`` counters applied what it captured.
    """
    captured = sum(int(row.get(op) or 0) for op in OPS)
    if not any(f"Applied{op}" in row for op in OPS):
        return captured, captured
    return captured, sum(int(row.get(f"Applied{op}") or 0) for op in OPS)


def applied_changes(rows: Sequence[Mapping[str, Any]], expected_tables: Sequence[str]) -> dict[str, int]:
    """Changes applied to the lake per expected table so far (recorded by each check for the next one)."""
    counts = {}
    for table in expected_tables:
        row = find_table(rows, table)
        if row is not None:
            counts[table] = change_counts(row)[1]
    return counts


def _utc(moment: Any) -> datetime | None:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if isinstance(moment, datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def _arrived_since(row: Mapping[str, Any], applied: int, previous: int | None, since: datetime | None) -> int:
    """Changes applied since the last check, plus one for a (re)load finished since then.

    Counters restart when DMS reloads a table, so a count below the previous one is all new.
    """
    new = applied if previous is None or applied < previous else applied - previous
    loaded = _utc(row.get("FullLoadEndTime"))
    reloaded = loaded is not None and (since is None or loaded > since)
    return new + int(reloaded)


def check_waiting(table: str, waiting: int, row: Mapping[str, Any], lag: float | None, budget: float,
                  now: datetime) -> CheckResult:  # fmt: skip
    """Changes captured but not yet in the lake pass while the lag (and the table's last update) is within budget."""
    updated = _utc(row.get("LastUpdateTime"))
    idle_for = (now - updated).total_seconds() if updated else None
    if lag is not None:
        late = waiting > 0 and lag > budget
    else:  # no latency datapoint: how long DMS has not touched the table's statistics tells instead
        late = waiting > 0 and idle_for is not None and idle_for > budget
    if not waiting:
        message = f"table {table}: no captured change waits for the lake"
    elif not late:
        message = f"table {table}: {waiting} change(s) on their way to the lake, within the {budget:g}s lag budget"
    else:
        measured = f"CDC lag {lag:.0f}s" if lag is not None else f"no statistics update for {idle_for:.0f}s"
        message = (
            f"table {table}: {waiting} change(s) made in the source have not reached the lake ({measured}, budget "
            f"{budget:g}s): the task is behind or stalled; check the source load, the replication instance and "
            f"the task log, then {RESUME_HINT} (or raise replication.max_cdc_lag_seconds)"
        )
    return CheckResult("source_changes_waiting", table, "ChangesWaiting", waiting, f"0 after {budget:g}s",
                       not late, message)  # fmt: skip


def check_arrived(table: str, arrived: int, fresh: int | None, required: bool) -> CheckResult:
    """Changes DMS applied since the last check arrived as new lake objects of the table."""
    ok = not required or not arrived or bool(fresh)
    if not arrived:
        message = f"table {table}: the source was idle since the last check (no change applied, nothing to arrive)"
    elif fresh:
        message = f"table {table}: {arrived} change(s) applied since the last check, in {fresh} new lake object(s)"
    else:
        message = (
            f"table {table}: DMS applied {arrived} change(s) since the last check but no new lake object of the "
            "table arrived" + ("" if fresh is not None else " (objects were not counted)")
        )
        if required:
            message += (
                "; check the task's S3 target endpoint (bucket, folder, permissions) and the task log, then "
                f"{RESUME_HINT} (or set replication.require_fresh_objects=false)"
            )
    return CheckResult("changes_arrived", table, "FreshObjects", fresh, ">= 1 when changes were applied", ok, message)


def check_source_changes(
    rows: Sequence[Mapping[str, Any]],
    expected_tables: Sequence[str],
    *,
    previous_applied: Mapping[str, int],
    fresh_objects: Mapping[str, int] | None,
    cdc_lag_seconds: float | None,
    max_cdc_lag_seconds: float,
    require_fresh_objects: bool,
    since: datetime | None,
    now: datetime,
) -> list[CheckResult]:
    """The freshness rule (module docstring) for every expected table listed in the statistics."""
    results = []
    for table in expected_tables:
        row = find_table(rows, table)
        if row is None:
            continue  # check_tables reports it
        captured, applied = change_counts(row)
        waiting = max(0, captured - applied)
        results.append(check_waiting(table, waiting, row, cdc_lag_seconds, max_cdc_lag_seconds, now))
        arrived = _arrived_since(row, applied, previous_applied.get(table), since)
        fresh = None if fresh_objects is None else int(fresh_objects.get(table.rpartition(".")[2]) or 0)
        results.append(check_arrived(table, arrived, fresh, require_fresh_objects))
    return results
