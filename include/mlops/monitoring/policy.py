"""When drift triggers retraining: consecutive drifted windows, cooldown, one trigger per episode.

The state is one JSON document per endpoint (``<monitoring>/state/<endpoint>/policy.json``)::

    {"windows": [{run_id, window_start, window_end, model_version, status, drift_share,
                  drifted_features, violations_uri, report_uri, fired, episode}],
     "episodes": {"<episode id>": {"fired_at": <window_end>, "run_id": ...}}}

Rules (:func:`apply`):

- a window is ``drifted`` when its drift share reaches the threshold, ``clean`` when not,
  ``insufficient`` when it had too few rows, and ``failed`` when its drift job failed (recorded with
  the job's failure reason by :func:`mlops.monitoring.steps.record_failed_window`, so the window is
  accounted for and the next run starts after it instead of retrying it forever); insufficient and
  failed windows neither extend nor break a streak; a window is ``started`` from the moment its job is
  requested until its result (or failure) is recorded, and a run that finds an *earlier* run's window
  still ``started`` (that run was killed, e.g. by its ``dagrun_timeout``, before it could record
  anything) records it as ``failed`` (:func:`fail_unfinished`);
- the policy fires when the last ``consecutive_windows`` sufficient windows of the *current
  model version* are all drifted;
- an **episode** is a run of drifted windows of one model version; its id is the model version
  and the end of its first drifted window. An episode fires at most once (dedupe): later drifted
  windows of the same episode do not trigger again; a clean window ends it, and a new model
  version (after retraining) starts afresh;
- **cooldown**: no firing within ``cooldown_hours`` of the last firing (window-end times, so the
  decision depends on the data, not on when the task ran);
- a run's window is recorded under its ``run_id``; re-running the same run replaces its record
  and reaches the same decision (a run that fired fires again; no other run can).

Windows follow each other: a new run's window starts where the newest recorded window ended
(at most ``window_minutes`` back), see :func:`next_window`.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DRIFTED, CLEAN, INSUFFICIENT, FAILED, STARTED = "drifted", "clean", "insufficient", "failed", "started"
UNJUDGED = (INSUFFICIENT, FAILED, STARTED)  # windows that neither extend nor break a streak
UNFINISHED_REASON = (
    "the run ended without recording a result (killed by its dagrun_timeout, or its worker died): "
    "a later run found the window still started"
)


@dataclass(frozen=True)
class Policy:
    drift_share_threshold: float = 0.25
    consecutive_windows: int = 2
    cooldown_hours: float = 6.0


@dataclass
class Decision:
    fire: bool
    reason: str
    episode: str | None = None
    windows: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def empty_state() -> dict[str, Any]:
    return {"windows": [], "episodes": {}}


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def next_window(state: dict[str, Any], *, run_id: str, end: datetime, window_minutes: int) -> tuple[datetime, datetime]:
    """The window of ``run_id``: recorded one on a re-run; else from the newest earlier window's end
    (or ``end - window_minutes``, whichever is later) to ``end``."""
    for record in state["windows"]:
        if record["run_id"] == run_id:
            return _t(record["window_start"]), _t(record["window_end"])
    start = end - timedelta(minutes=window_minutes)
    earlier = [_t(r["window_end"]) for r in state["windows"] if _t(r["window_end"]) <= end]
    if earlier:
        start = max(start, max(earlier))
    return start, end


def window_status(summary: dict[str, Any], policy: Policy) -> str:
    if summary.get("insufficient"):
        return INSUFFICIENT
    return DRIFTED if float(summary["drift_share"]) >= policy.drift_share_threshold else CLEAN


def apply(state: dict[str, Any], record: dict[str, Any], policy: Policy) -> tuple[dict[str, Any], Decision]:
    """Record a window (keyed by ``record['run_id']``) and decide; returns (new state, decision).

    ``record`` needs run_id, window_start, window_end, model_version, status, drift_share and may
    carry drifted_features, violations_uri, report_uri.
    """
    state, record, previous = _recorded(state, record)
    if record["status"] == FAILED:
        return state, Decision(False, f"window is failed (the drift job failed: {record.get('reason', 'unknown')})")
    if record["status"] != DRIFTED:
        flooded = f"; flood guard: {record['flooded']}" if record.get("flooded") else ""
        share = record["drift_share"]
        return state, Decision(False, f"window is {record['status']} (drift share {share:.2f}){flooded}")
    streak = _drifted_streak(state["windows"], record)
    episode = f"v{record['model_version']}@{streak[0]['window_end']}"
    record["episode"] = episode
    summary = [{k: r.get(k) for k in ("run_id", "window_start", "window_end", "drift_share")} for r in streak]
    if len(streak) < policy.consecutive_windows:
        return state, Decision(
            False, f"{len(streak)} of {policy.consecutive_windows} consecutive drifted windows", episode, summary
        )
    blocked = _blocked(state, record, episode, policy)
    if blocked:
        return state, Decision(False, blocked, episode, summary)
    record["fired"] = True
    state["episodes"][episode] = {"fired_at": record["window_end"], "run_id": record["run_id"]}
    reason = (
        f"{len(streak)} consecutive drifted windows (>= {policy.consecutive_windows}); drift share "
        f"{record['drift_share']:.2f} >= {policy.drift_share_threshold}"
    )
    if previous and previous.get("fired"):
        reason += " (re-run of the run that fired)"
    return state, Decision(True, reason, episode, summary)


def _recorded(
    state: dict[str, Any], record: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """A copy of ``state`` with ``record`` in place of any earlier record of its run; the earlier record."""
    state = copy.deepcopy(state)
    run_id = record["run_id"]
    previous = next((r for r in state["windows"] if r["run_id"] == run_id), None)
    windows = [r for r in state["windows"] if r["run_id"] != run_id]
    record = {**record, "fired": False, "episode": None}
    windows.append(record)
    windows.sort(key=lambda r: (r["window_end"], r["run_id"]))
    state["windows"] = windows
    state["episodes"] = {k: v for k, v in state["episodes"].items() if v["run_id"] != run_id}
    return state, record, previous


def _drifted_streak(windows: list[dict[str, Any]], record: dict[str, Any]) -> list[dict[str, Any]]:
    """The judged windows of ``record``'s model, up to it, that drifted in a row (oldest first)."""
    history = [
        r
        for r in windows
        if str(r["model_version"]) == str(record["model_version"])
        and r["window_end"] <= record["window_end"]
        and r["status"] not in UNJUDGED
    ]
    streak: list[dict[str, Any]] = []
    for r in reversed(history):
        if r["status"] != DRIFTED:
            break
        streak.insert(0, r)
    return streak


def _blocked(state: dict[str, Any], record: dict[str, Any], episode: str, policy: Policy) -> str | None:
    """Why a full streak may not fire (its episode already fired, or the cooldown), else None."""
    fired = state["episodes"].get(episode)
    if fired:
        return (
            f"episode {episode} already triggered retraining (run {fired['run_id']}, "
            f"window ending {fired['fired_at']}); one trigger per drift episode"
        )
    others = [_t(e["fired_at"]) for e in state["episodes"].values()]
    last = max((t for t in others if t <= _t(record["window_end"])), default=None)
    if last is not None and _t(record["window_end"]) - last < timedelta(hours=policy.cooldown_hours):
        until = last + timedelta(hours=policy.cooldown_hours)
        return f"cooldown: last trigger at {last.isoformat()}, next allowed from {until.isoformat()}"
    return None


def mark_started(state: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``state`` with ``record`` (run_id, window, model_version, job_name) recorded as ``started``;
    a result already recorded for the run (a re-run) is replaced."""
    started = {**record, "status": STARTED, "drift_share": 0.0, "rows": 0, "drifted_features": []}
    state, _record, _previous = _recorded(state, started)
    return state


def fail_unfinished(
    state: dict[str, Any], run_id: str, reason: str = UNFINISHED_REASON
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A copy of ``state`` where the windows other runs left ``started`` are ``failed`` with ``reason``;
    and those windows."""
    state = copy.deepcopy(state)
    failed = []
    for record in state["windows"]:
        if record["status"] == STARTED and record["run_id"] != run_id:
            record.update(status=FAILED, reason=reason)
            failed.append(record)
    return state, failed
