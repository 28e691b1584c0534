"""Blue/green traffic plans from DeploymentConfig, weight splitting, the rollback alarm, routing."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from mlops.serving.bluegreen import Alarm, bake, split_weights, traffic_plan
from mlops.serving.router import Route, RoutingTable


def _policy(routing, termination=0):
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing, "TerminationWaitInSeconds": termination}}


def test_no_deployment_config_is_all_at_once():
    assert traffic_plan(None).steps == (1.0,)


def test_canary_plan():
    plan = traffic_plan(
        _policy(
            {"Type": "CANARY", "WaitIntervalInSeconds": 30, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}},
            termination=5,
        )
    )
    assert plan.steps == (0.1, 1.0) and plan.bakes == (30.0, 5.0)


def test_linear_and_instance_count_plans():
    plan = traffic_plan(
        _policy(
            {"Type": "LINEAR", "WaitIntervalInSeconds": 1, "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25}}
        )
    )
    assert plan.steps == (0.25, 0.5, 0.75, 1.0)
    canary = traffic_plan(
        _policy({"Type": "CANARY", "WaitIntervalInSeconds": 1, "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}}),
        green_instances=4,
    )
    assert canary.steps == (0.25, 1.0)


def test_all_at_once_bakes_its_wait_interval():
    plan = traffic_plan(_policy({"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 7}))
    assert plan.steps == (1.0,) and plan.bakes == (7.0,)


def test_unknown_type_fails():
    with pytest.raises(ValueError, match="BLUE"):
        traffic_plan(_policy({"Type": "BLUE", "WaitIntervalInSeconds": 1}))


def test_split_weights_keeps_ab_ratios_inside_each_fleet():
    blue, green = split_weights({"A": 0.7, "B": 0.3}, {"A": 1.0}, 0.1)
    assert blue == pytest.approx({"A": 0.63, "B": 0.27}) and green == pytest.approx({"A": 0.1})


def test_alarm():
    alarm = Alarm(threshold=0.05)
    assert alarm.check(100, 5, True) is None
    assert "error rate" in alarm.check(100, 6, True)
    assert "died" in alarm.check(0, 0, False)
    assert alarm.check(0, 0, True) is None


def test_bake_returns_early_on_alarm():
    calls = iter([(10, 0), (20, 5)])
    reason = bake(5.0, Alarm(0.1), lambda: next(calls), lambda: True, poll_seconds=0.01)
    assert reason and "5/20" in reason


def test_routing_table_weights_and_target_variant():
    table = RoutingTable([Route("A", "f1", 1, 0.7), Route("B", "f1", 2, 0.3), Route("C", "f1", 3, 0.0)])
    rng = random.Random(0)
    counts = Counter(table.choose(None, rng).variant for _ in range(10_000))
    assert abs(counts["A"] / 10_000 - 0.7) < 0.02 and counts["C"] == 0
    assert table.choose("B", rng).variant == "B"
    assert table.choose("C", rng).variant == "C"  # a weight-0 variant still answers when targeted
    assert table.choose("Z", rng) is None
