"""Retraining policy: N consecutive drifted windows, one trigger per drift episode, cooldown, windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlops.monitoring.policy import CLEAN, DRIFTED, FAILED, INSUFFICIENT, Policy, apply, empty_state, next_window

T0 = datetime(2026, 5, 1, tzinfo=UTC)
POLICY = Policy(drift_share_threshold=0.25, consecutive_windows=2, cooldown_hours=6)


def window(hour: int, status: str, version: str = "1", run: str | None = None) -> dict:
    return {
        "run_id": run or f"run-{hour}",
        "window_start": (T0 + timedelta(hours=hour)).isoformat(),
        "window_end": (T0 + timedelta(hours=hour + 1)).isoformat(),
        "model_version": version,
        "status": status,
        "drift_share": 0.5 if status == DRIFTED else 0.0,
    }


def run(statuses: list[tuple[int, str]] | list[tuple[int, str, str]], policy: Policy = POLICY):
    state, decisions = empty_state(), []
    for item in statuses:
        state, decision = apply(state, window(*item), policy)
        decisions.append(decision)
    return state, decisions


def test_fires_after_n_consecutive_drifted_windows_only_once_per_episode():
    state, decisions = run([(0, CLEAN), (1, DRIFTED), (2, DRIFTED), (3, DRIFTED), (4, DRIFTED)])
    assert [d.fire for d in decisions] == [False, False, True, False, False]
    assert "1 of 2" in decisions[1].reason
    assert "already triggered" in decisions[3].reason
    assert len(decisions[2].windows) == 2 and decisions[2].episode == decisions[4].episode
    assert list(state["episodes"]) == [decisions[2].episode]


def test_clean_window_breaks_the_streak_and_insufficient_windows_do_not():
    _, decisions = run(
        [(0, DRIFTED), (1, CLEAN), (2, DRIFTED), (3, INSUFFICIENT), (4, DRIFTED)], Policy(cooldown_hours=0)
    )
    assert [d.fire for d in decisions] == [False, False, False, False, True]
    assert [w["run_id"] for w in decisions[4].windows] == ["run-2", "run-4"]


def test_cooldown_blocks_a_new_episode_until_it_expires():
    _, decisions = run(
        [(0, DRIFTED), (1, DRIFTED), (2, CLEAN), (3, DRIFTED), (4, DRIFTED), (5, CLEAN), (9, DRIFTED), (10, DRIFTED)]
    )
    assert [d.fire for d in decisions] == [False, True, False, False, False, False, False, True]
    assert decisions[4].reason.startswith("cooldown")


def test_new_model_version_starts_afresh():
    _, decisions = run(
        [(0, DRIFTED, "1"), (1, DRIFTED, "1"), (2, DRIFTED, "2"), (3, DRIFTED, "2")], Policy(cooldown_hours=0)
    )
    assert [d.fire for d in decisions] == [False, True, False, True]
    assert decisions[1].episode != decisions[3].episode


def test_rerun_of_a_run_is_idempotent():
    state, decisions = run([(0, DRIFTED), (1, DRIFTED)])
    assert decisions[1].fire
    again, decision = apply(state, window(1, DRIFTED), POLICY)
    assert decision.fire and "re-run" in decision.reason
    assert len(again["windows"]) == 2 and again["episodes"] == state["episodes"]
    _, decision = apply(again, window(1, DRIFTED, run="another-run-same-window"), POLICY)
    assert not decision.fire


def test_windows_follow_each_other_and_reruns_keep_theirs():
    state = empty_state()
    start, end = next_window(state, run_id="a", end=T0, window_minutes=60)
    assert (start, end) == (T0 - timedelta(hours=1), T0)
    state, _ = apply(
        state, {**window(0, CLEAN, run="a"), "window_start": start.isoformat(), "window_end": end.isoformat()}, POLICY
    )
    start2, _ = next_window(state, run_id="b", end=T0 + timedelta(minutes=10), window_minutes=60)
    assert start2 == T0  # starts where the previous window ended
    start3, _ = next_window(state, run_id="c", end=T0 + timedelta(hours=5), window_minutes=60)
    assert start3 == T0 + timedelta(hours=4)  # at most window_minutes back
    assert next_window(state, run_id="a", end=T0 + timedelta(days=1), window_minutes=60) == (start, end)


def test_a_failed_window_is_recorded_and_neither_extends_nor_breaks_a_streak():
    """Issue 13.6: a window whose drift job failed is recorded (the next window starts after it)."""
    state, _ = apply(empty_state(), window(1, DRIFTED), POLICY)
    state, decision = apply(state, {**window(2, FAILED), "reason": "drift job x Failed: boom"}, POLICY)
    assert not decision.fire and "boom" in decision.reason
    start, _ = next_window(state, run_id="run-later", end=T0 + timedelta(hours=5), window_minutes=240)
    assert start == T0 + timedelta(hours=3)  # after the failed window, not over it again
    state, decision = apply(state, window(3, DRIFTED), POLICY)
    assert decision.fire and [w["run_id"] for w in decision.windows] == ["run-1", "run-3"]


def test_a_run_killed_before_recording_its_result_leaves_a_window_the_next_run_records_as_failed(tmp_path):
    """Issue 16: a drift run killed by its dagrun_timeout ran no record_failed_window; its window, marked
    started when its job was requested, is recorded as failed by the next run, which starts after it."""
    from mlops.monitoring import steps
    from mlops.monitoring.policy import STARTED, UNFINISHED_REASON
    from tests.jobs.sagemaker.monitoring_fixtures import make_lake

    _config, lake = make_lake(tmp_path)
    first = steps.plan_window(lake, "ep", run_id="killed", end=T0 + timedelta(hours=1), window_minutes=60)
    steps.record_started_window(lake, "ep", run_id="killed", window=first, model={"version": "3"}, name="job-1")
    again = steps.plan_window(lake, "ep", run_id="killed", end=T0 + timedelta(hours=1), window_minutes=60)
    assert again == first and steps.load_state(lake, "ep")["windows"][0]["status"] == STARTED  # its own re-run
    after = steps.plan_window(lake, "ep", run_id="next", end=T0 + timedelta(hours=1, minutes=30), window_minutes=60)
    assert after["window_start"] == first["window_end"]  # the killed run's span is accounted for
    [failed] = steps.load_state(lake, "ep")["windows"]
    assert (failed["run_id"], failed["status"], failed["reason"]) == ("killed", FAILED, UNFINISHED_REASON)
    assert failed["job_name"] == "job-1" and failed["model_version"] == "3"


def test_a_started_window_neither_extends_nor_breaks_a_streak():
    from mlops.monitoring.policy import mark_started

    state, _decisions = run([(0, DRIFTED)])
    state = mark_started(state, {k: v for k, v in window(1, DRIFTED).items() if k != "status"})
    state, decision = apply(state, window(2, DRIFTED), POLICY)
    assert decision.fire and [w["status"] for w in state["windows"]] == [DRIFTED, "started", DRIFTED]
