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

Failed windows: a window is ``started`` when its job is requested (:func:`mark`); a failed job records
it ``failed`` with the reason, and a run that finds an earlier run's window still ``started`` (killed,
e.g. by its ``dagrun_timeout``) records that one ``failed`` (:func:`fail_unfinished`). Neither fires,
and neither moves the next window's start (only evaluated windows do): their predictions are judged
again by the next run.

New labelled data (:func:`new_labels_verdict`, ``monitoring.retrain_on_new_labels``): the job counts the
orders labelled after the model's training data cut-off (``new_labelled``, ``labels_after``); the
trigger fires when that count reaches ``min_new_labelled_orders``, and for the same model version and
cut-off again only once ``min_new_labelled_orders`` *more* have arrived since its last firing (one
trigger per batch of new data), never within ``cooldown_hours`` of a firing of either trigger for the
same model version. When both triggers fire in one run, the event names ``model_quality`` and the
new-data firing is recorded too (the retraining covers both).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

EVALUATED, PENDING, STARTED, FAILED = "evaluated", "pending", "started", "failed"
MODEL_QUALITY, NEW_LABELLED_DATA = "model_quality", "new_labelled_data"


@dataclass(frozen=True)
class QualityPolicy:
    window_hours: int = 24
    max_label_wait_hours: float = 14 * 24
    cooldown_hours: float = 24.0
    min_new_labelled_orders: int | None = None  # None: the new-labelled-data trigger is off


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
    """The earlier firing (of either trigger) of the same model version within ``hours`` before this
    window's end, if any."""
    end = _t(record["window_end"])
    for other in windows:
        if (
            (other.get("fired") or other.get("new_data_fired"))
            and other["run_id"] != record["run_id"]
            and other["model_version"] == record["model_version"]
        ):
            if timedelta(0) <= end - _t(other["window_end"]) < timedelta(hours=hours):
                return other
    return None


def _quality_verdict(windows: list[dict[str, Any]], record: dict[str, Any], policy: QualityPolicy) -> tuple[bool, str]:
    """Whether the window's measured quality fires the model-quality trigger, and why."""
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
    return fire, reason


def new_labels_verdict(
    windows: list[dict[str, Any]], record: dict[str, Any], policy: QualityPolicy
) -> tuple[bool, str]:
    """Whether enough orders were labelled after the model's training data cut-off (see the module docstring)."""
    minimum = policy.min_new_labelled_orders
    count, cutoff = record.get("new_labelled"), record.get("labels_after")
    if minimum is None:
        return False, "the new-labelled-data trigger is off (monitoring.retrain_on_new_labels.enabled)"
    if not cutoff:
        return False, (
            f"model v{record['model_version']} has no training data cut-off (registry metadata training_data_cutoff): "
            "retrain it with mlops_train to record one"
        )
    if count is None:
        return False, "the orders table has no commit times (dms_commit_ts): new labels cannot be counted"
    earlier = [
        int(w["new_labelled"])
        for w in windows
        if w.get("new_data_fired") and w["model_version"] == record["model_version"] and w.get("labels_after") == cutoff
    ]
    needed = max(earlier, default=0) + minimum
    counted = f"{count} orders labelled after the training data cut-off {cutoff}"
    if count < needed:
        return False, f"{counted} < {needed}" + (f" (it fired at {max(earlier)})" if earlier else "")
    if (other := _cooling(windows, record, policy.cooldown_hours)) is not None:
        return False, f"{counted} >= {needed}, but a trigger fired for model v{record['model_version']} at " \
            f"{other['window_end']} (cooldown {policy.cooldown_hours} h)"  # fmt: skip
    return True, f"{counted} >= {needed} (monitoring.retrain_on_new_labels.min_new_labelled_orders = {minimum})"


def apply(
    state: dict[str, Any], record: dict[str, Any], policy: QualityPolicy
) -> tuple[dict[str, Any], list[str], str]:
    """Record the window (keyed by run_id) and decide; returns (new state, the triggers that fired, reason).

    The triggers are ``model_quality`` and ``new_labelled_data``, in that order of precedence; the
    reason gives both verdicts.
    """
    state = copy.deepcopy(state)
    windows = [w for w in state["windows"] if w["run_id"] != record["run_id"]]
    fire, reason = _quality_verdict(windows, record, policy)
    new_fire, new_reason = new_labels_verdict(windows, record, policy)
    triggers = [name for name, fired in ((MODEL_QUALITY, fire), (NEW_LABELLED_DATA, new_fire)) if fired]
    stored = {**record, "fired": fire, "new_data_fired": new_fire}
    state["windows"] = sorted([*windows, stored], key=lambda w: (w["window_end"], w["run_id"]))
    return state, triggers, f"{reason}; new labelled data: {new_reason}"


def mark(state: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``state`` with ``record`` (run_id, window, model_version, status started/failed, ...) in
    place of any earlier record of its run; it fires nothing."""
    state = copy.deepcopy(state)
    windows = [w for w in state["windows"] if w["run_id"] != record["run_id"]]
    stored = {**record, "fired": False, "new_data_fired": False}
    state["windows"] = sorted([*windows, stored], key=lambda w: (w["window_end"], w["run_id"]))
    return state


def fail_unfinished(state: dict[str, Any], run_id: str, reason: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A copy of ``state`` where windows other runs left ``started`` are ``failed`` with ``reason``; and those."""
    state = copy.deepcopy(state)
    failed = [w for w in state["windows"] if w["status"] == STARTED and w["run_id"] != run_id]
    for record in failed:
        record.update(status=FAILED, reason=reason)
    return state, failed
