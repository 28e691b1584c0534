"""When measured model quality triggers retraining (pure functions over a small JSON state; worker-side).

State: one document per endpoint (``<monitoring>/state/<endpoint>/quality.json``)::

    {"windows": [{run_id, window_start, window_end, model_version, status, labelled, predictions,
                  label_coverage, map, threshold, baseline_map, violated, fired, ...}]}

Windows: a run's window starts where the newest *evaluated* window ended and ends at the run's end.
While its labels have not matured (the job says ``pending``) the next run's window starts at the
same place, so a pending window grows until enough of its orders have reached a terminal status;
it never reaches back more than ``max_label_wait_hours`` (older predictions are given up on), and
the first window is ``window_hours`` long. Re-running a run gives its recorded window.

Decision (:func:`apply`): fire when the window is evaluated and violates the mAP constraint (the job
already requires ``min_labelled_rows`` labelled rows), unless the trigger fired for the same model
version within ``cooldown_hours`` (window-end times). A re-run of the run that fired fires again.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

EVALUATED, PENDING = "evaluated", "pending"


@dataclass(frozen=True)
class QualityPolicy:
    window_hours: int = 24
    max_label_wait_hours: float = 14 * 24
    cooldown_hours: float = 24.0


def empty_state() -> dict[str, Any]:
    return {"windows": []}


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def next_window(
    state: dict[str, Any], *, run_id: str, end: datetime, policy: QualityPolicy
) -> tuple[datetime, datetime]:
    """The window of ``run_id`` (see the module docstring)."""
    for record in state["windows"]:
        if record["run_id"] == run_id:
            return _t(record["window_start"]), _t(record["window_end"])
    evaluated = [
        _t(r["window_end"]) for r in state["windows"] if r["status"] == EVALUATED and _t(r["window_end"]) <= end
    ]
    start = max(evaluated) if evaluated else end - timedelta(hours=policy.window_hours)
    return max(start, end - timedelta(hours=policy.max_label_wait_hours)), end


def _cooling(windows: list[dict[str, Any]], record: dict[str, Any], hours: float) -> dict[str, Any] | None:
    """The earlier firing of the same model version within ``hours`` before this window's end, if any."""
    end = _t(record["window_end"])
    for other in windows:
        if (
            other.get("fired")
            and other["run_id"] != record["run_id"]
            and other["model_version"] == record["model_version"]
        ):
            if timedelta(0) <= end - _t(other["window_end"]) < timedelta(hours=hours):
                return other
    return None


def apply(state: dict[str, Any], record: dict[str, Any], policy: QualityPolicy) -> tuple[dict[str, Any], bool, str]:
    """Record the window (keyed by run_id) and decide; returns (new state, fire, reason)."""
    state = copy.deepcopy(state)
    windows = [w for w in state["windows"] if w["run_id"] != record["run_id"]]
    if record["status"] != EVALUATED:
        fire, reason = (
            False,
            (
                f"window is pending: {record['labelled']} of {record['predictions']} predictions labelled "
                f"(coverage {record['label_coverage']:.0%}); it grows until its labels mature"
            ),
        )
    elif not record["violated"]:
        fire, reason = False, f"mAP {record['map']} is within the constraint (>= {record['threshold']})"
    elif (earlier := _cooling(windows, record, policy.cooldown_hours)) is not None:
        fire, reason = (
            False,
            (
                f"mAP {record['map']} < {record['threshold']}, but the quality trigger fired for model "
                f"v{record['model_version']} at {earlier['window_end']} (cooldown {policy.cooldown_hours} h)"
            ),
        )
    else:
        fire, reason = (
            True,
            (
                f"mAP {record['map']} on {record['labelled']} labelled predictions < {record['threshold']} "
                f"(evaluated mAP {record['baseline_map']} minus the allowed drop)"
            ),
        )
    state["windows"] = sorted([*windows, {**record, "fired": fire}], key=lambda w: (w["window_end"], w["run_id"]))
    return state, fire, reason
