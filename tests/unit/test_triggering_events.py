"""The events that triggered a run come oldest first, whatever order Airflow lists them in.

Found under the real scheduler: the first asset-triggered mlops_train after `make demo` consumed three
validated-features events and took its data from the oldest (a snapshot pruned since), because Airflow
lists a run's triggering events in no set order and the task kept the last one listed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from mlops_airflow.assets import DRIFT_DETECTED, REGISTERED_MODEL, VALIDATED_FEATURES, triggering_events
from mlops_airflow.operators.serving import registered_model_events


def _event(minute: int, **extra):
    return SimpleNamespace(timestamp=datetime(2026, 12, 4, 19, minute, tzinfo=UTC), extra=extra)


def test_events_of_every_asset_come_oldest_first_with_their_asset():
    context = {
        "triggering_asset_events": {
            VALIDATED_FEATURES: [_event(56, curated_uri="new"), _event(50, curated_uri="old"), _event(52)],
            DRIFT_DETECTED: [_event(51, trigger="input_drift")],
        }
    }
    assert triggering_events(context) == [
        ("mlops_validated_features", {"curated_uri": "old"}),
        ("mlops_drift_detected", {"trigger": "input_drift"}),
        ("mlops_validated_features", {}),
        ("mlops_validated_features", {"curated_uri": "new"}),
    ]


def test_a_manual_run_has_no_triggering_events():
    assert triggering_events({}) == []
    assert triggering_events({"triggering_asset_events": None}) == []


def test_the_deploy_sees_the_newest_registration_last():
    context = {
        "triggering_asset_events": {REGISTERED_MODEL: [_event(58, model_version=3), _event(53, model_version=2)]}
    }
    assert [e["model_version"] for e in registered_model_events(context)] == [2, 3]
