"""Blue/green traffic shifting as SageMaker's ``DeploymentConfig`` describes it, and the bake watch.

``BlueGreenUpdatePolicy.TrafficRoutingConfiguration``:

- ``ALL_AT_ONCE``: green gets all traffic in one step;
- ``CANARY``: green first gets ``CanarySize`` (percent of capacity, or instances), then all;
- ``LINEAR``: green gets ``LinearStepSize`` more per step.

After each intermediate step the deployment bakes ``WaitIntervalInSeconds``; after the last,
``TerminationWaitInSeconds`` (at least ``WaitIntervalInSeconds`` for ALL_AT_ONCE) before blue
is terminated. During every bake the local alarm watches green: a dead green process, or a
5xx share of the requests green's model servers handled (4xx client errors left out) above
``serving.rollback_error_rate``, rolls traffic back to blue.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrafficPlan:
    """Green's share of traffic after each step, and how long to bake after each."""

    steps: tuple[float, ...]
    bakes: tuple[float, ...]
    max_seconds: float | None = None


def _size(size: dict[str, Any], green_instances: int) -> float:
    if size["Type"] == "CAPACITY_PERCENT":
        return min(max(float(size["Value"]) / 100.0, 0.0), 1.0)
    if size["Type"] == "INSTANCE_COUNT":
        return min(float(size["Value"]) / max(green_instances, 1), 1.0)
    raise ValueError(f"CanarySize/LinearStepSize Type {size['Type']!r} is not CAPACITY_PERCENT or INSTANCE_COUNT")


def traffic_plan(deployment_config: dict[str, Any] | None, green_instances: int = 1) -> TrafficPlan:
    """The steps of a ``DeploymentConfig`` (none given = blue/green all at once, no bake)."""
    policy = (deployment_config or {}).get("BlueGreenUpdatePolicy")
    if not policy:
        return TrafficPlan(steps=(1.0,), bakes=(0.0,))
    routing = policy["TrafficRoutingConfiguration"]
    kind, wait = routing["Type"], float(routing.get("WaitIntervalInSeconds", 0))
    termination = float(policy.get("TerminationWaitInSeconds", 0))
    max_seconds = policy.get("MaximumExecutionTimeoutInSeconds")
    if kind == "ALL_AT_ONCE":
        steps: tuple[float, ...] = (1.0,)
    elif kind == "CANARY":
        share = _size(routing["CanarySize"], green_instances)
        steps = (share, 1.0) if share < 1.0 else (1.0,)
    elif kind == "LINEAR":
        step = _size(routing["LinearStepSize"], green_instances)
        if step <= 0:
            raise ValueError("LinearStepSize must be positive")
        count = int(1.0 / step + 0.999999)
        steps = tuple(min(step * (i + 1), 1.0) for i in range(count))
    else:
        raise ValueError(f"TrafficRoutingConfiguration Type {kind!r} is not ALL_AT_ONCE, CANARY or LINEAR")
    final = max(termination, wait) if kind == "ALL_AT_ONCE" else termination
    bakes = tuple([wait] * (len(steps) - 1) + [final])
    return TrafficPlan(steps=steps, bakes=bakes, max_seconds=float(max_seconds) if max_seconds else None)


def split_weights(
    blue: dict[str, float], green: dict[str, float], green_share: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Route weights per variant for each fleet, so green gets ``green_share`` of all traffic.

    Within a fleet, traffic follows its endpoint config's variant weights (A/B stays A/B).
    """

    def scaled(weights: dict[str, float], share: float) -> dict[str, float]:
        total = sum(weights.values())
        return {name: (share * w / total if total else 0.0) for name, w in weights.items()}

    return scaled(blue, 1.0 - green_share), scaled(green, green_share)


@dataclass(frozen=True)
class Alarm:
    """The local stand-in for the rollback alarms: green's 5xx share and liveness."""

    threshold: float
    min_requests: int = 1

    def check(self, requests: int, errors: int, green_alive: bool) -> str | None:
        if not green_alive:
            return "a green model server process died"
        if requests >= self.min_requests and errors / max(requests, 1) > self.threshold:
            rate = errors / requests
            return f"green's error rate {errors}/{requests} = {rate:.1%} crossed the {self.threshold:.1%} alarm"
        return None


def bake(
    seconds: float,
    alarm: Alarm,
    sample: Callable[[], tuple[int, int]],
    green_alive: Callable[[], bool],
    poll_seconds: float = 0.2,
) -> str | None:
    """Watch green for ``seconds`` (at least one check); the rollback reason, or None when it held."""
    deadline = time.monotonic() + seconds
    while True:
        requests, errors = sample()
        reason = alarm.check(requests, errors, green_alive())
        if reason or time.monotonic() >= deadline:
            return reason
        time.sleep(min(poll_seconds, max(deadline - time.monotonic(), 0.0)))
