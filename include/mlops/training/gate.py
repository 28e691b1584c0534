"""The registration gate: an absolute mAP threshold plus champion/challenger on the same test split.

After drift (the run's trigger is in ``PRESENT_TRIGGERS``) the gate decides on the *recent* rows the
evaluation measured (orders after the drift point, or the last days of the test split; the
documents' ``recent`` block), since that is the traffic the model will serve; the table shows both
comparisons.

Runs on the worker: it reads the ``evaluation.json`` documents the evaluation job wrote (their
``multiclass_classification_metrics``), so it needs nothing but the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GATE_METRIC = "mean_average_precision"
#: triggers after which the present differs from the past: the gate then compares on recent rows
PRESENT_TRIGGERS = ("input_drift",)


class GateRejected(RuntimeError):
    """The challenger may not be registered; the message says why and what to do."""


@dataclass(frozen=True)
class GateDecision:
    accepted: bool
    challenger_map: float
    threshold: float
    champion_map: float | None
    tolerance: float
    champion_version: int | None
    reasons: tuple[str, ...]
    basis: str = "test split"  # the rows both mAPs were measured on

    @property
    def required_map(self) -> float:
        """The mAP the challenger had to reach."""
        floor = self.champion_map - self.tolerance if self.champion_map is not None else float("-inf")
        return max(self.threshold, floor)


def gate_value(document: dict[str, Any]) -> float:
    """The mAP value from an ``evaluation.json`` document."""
    try:
        return float(document["multiclass_classification_metrics"][GATE_METRIC]["value"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"evaluation document has no multiclass_classification_metrics.{GATE_METRIC}.value") from None


def decide(
    challenger_map: float,
    *,
    threshold: float,
    champion_map: float | None = None,
    tolerance: float = 0.0,
    champion_version: int | None = None,
    basis: str = "test split",
) -> GateDecision:
    """Accept iff mAP >= threshold and (no champion, or mAP >= champion mAP - tolerance), both on ``basis``."""
    reasons = []
    if not challenger_map >= threshold:
        reasons.append(f"mAP {challenger_map:.4f} is below the threshold {threshold:.4f}")
    if champion_map is not None and not challenger_map >= champion_map - tolerance:
        reasons.append(
            f"mAP {challenger_map:.4f} is below the approved champion (v{champion_version}) "
            f"{champion_map:.4f} minus tolerance {tolerance:.4f} = {champion_map - tolerance:.4f}"
        )
    if basis != "test split":
        reasons = [f"{reason} (on {basis})" for reason in reasons]
    return GateDecision(
        not reasons, challenger_map, threshold, champion_map, tolerance, champion_version, tuple(reasons), basis
    )


def recent_maps(challenger: dict[str, Any], champion: dict[str, Any] | None) -> tuple[float, float, str] | None:
    """Challenger and champion mAP on the recent rows and their description, when the gate must decide on
    them: the run was started by a present-changing trigger and both documents measured those rows."""
    mine, theirs = challenger.get("recent") or {}, (champion or {}).get("recent") or {}
    if mine.get("trigger") not in PRESENT_TRIGGERS or not mine.get("usable") or not theirs.get("usable"):
        return None
    return float(mine[GATE_METRIC]), float(theirs[GATE_METRIC]), f"{mine['rows']} recent rows ({mine['rule']})"


def recent_lines(challenger: dict[str, Any], champion: dict[str, Any] | None) -> list[str]:
    """The recent-rows comparison for the gate's table (empty when the evaluation measured none)."""
    mine, theirs = challenger.get("recent") or {}, (champion or {}).get("recent") or {}
    if not mine:
        return []
    if not mine.get("usable"):
        return [f"recent rows: {mine.get('rows', 0)} ({mine.get('rule')}): too few to compare; gate on the test split"]
    other = f"{theirs[GATE_METRIC]:.4f}" if theirs.get("usable") else "n/a"
    delta = f"{mine[GATE_METRIC] - theirs[GATE_METRIC]:+.4f}" if theirs.get("usable") else ""
    return [
        f"{'mAP, recent rows':<34}{mine[GATE_METRIC]:>12.4f}{other:>12}{delta:>10}",
        f"  (recent rows: {mine['rows']}, {mine['rule']})",
    ]


def comparison_table(decision: GateDecision, challenger: dict[str, Any], champion: dict[str, Any] | None) -> str:
    """A plain-text table of the metrics of both models on the test split, and the verdict."""
    ours = challenger["multiclass_classification_metrics"]
    theirs = (champion or {}).get("multiclass_classification_metrics", {})
    names = [GATE_METRIC] + [n for n in ours if n not in (GATE_METRIC, "confusion_matrix")]
    header = f"{'metric':<34}{'challenger':>12}{'champion':>12}{'delta':>10}"
    lines = [header, "-" * len(header)]
    for name in names:
        mine = ours[name]["value"]
        other = theirs.get(name, {}).get("value")
        delta = f"{mine - other:+.4f}" if other is not None else ""
        lines.append(f"{name:<34}{mine:>12.4f}{'' if other is None else f'{other:.4f}':>12}{delta:>10}")
    lines += recent_lines(challenger, champion)
    lines.append("-" * len(header))
    champion_note = (
        f"champion v{decision.champion_version} mAP {decision.champion_map:.4f} - tolerance {decision.tolerance:.4f}"
        if decision.champion_map is not None
        else "no approved champion"
    )
    lines.append(
        f"gate on the {decision.basis}: threshold {decision.threshold:.4f}; {champion_note}; "
        f"required mAP {decision.required_map:.4f}"
    )
    lines.append("verdict: " + ("ACCEPTED" if decision.accepted else "REJECTED (" + "; ".join(decision.reasons) + ")"))
    return "\n".join(lines)


def enforce(decision: GateDecision) -> None:
    """Raise GateRejected with an actionable message unless the decision accepts."""
    if decision.accepted:
        return
    raise GateRejected(
        "model gate rejected the challenger: "
        + "; ".join(decision.reasons)
        + ". Nothing was registered. Improve the model (features, hyperparameters via the DAG's "
        "`hyperparameters` Param) or, if the bar is wrong, change training.map_threshold / "
        "training.champion_tolerance in include/pipeline.yaml or the run's `map_threshold` Param."
    )
