"""The A/B test's rule: promote the challenger or keep the champion, and say why.

Worker-side (standard library only): it reads the analysis job's small ``ab_summary.json``
(:mod:`mlops.monitoring.ab_job`) and applies ``serving.ab_test``:

1. each variant needs ``min_requests`` captured requests in the window, else keep (not enough traffic);
2. each needs ``min_labeled`` rows whose label has matured, else keep (labels not in yet);
3. promote only when the lower end of the ``confidence`` interval of challenger-minus-champion mAP is
   above ``min_improvement``: the challenger is better by at least that much, beyond the sampling noise;
4. otherwise keep the champion (the interval says by how much it may be better or worse).

Promotion shifts all traffic to the challenger (UpdateEndpointWeightsAndCapacities: challenger 1,
champion 0; :func:`mlops.aws.ab_test_requests.promotion_request`): instant, no new instances, and
reversible by the same call.
"""

from __future__ import annotations

from typing import Any

PROMOTE, KEEP = "promote_challenger", "keep_champion"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _shortfall(summary: dict[str, Any], rule: Any) -> str | None:
    """Why there is not enough evidence yet (traffic, then labels), or None."""
    for role in ("champion", "challenger"):
        name = summary[role]
        variant = summary["variants"].get(name, {})
        if variant.get("requests", 0) < rule.min_requests:
            return (
                f"not enough traffic: {role} {name} has {variant.get('requests', 0)} captured requests in the window, "
                f"serving.ab_test.min_requests is {rule.min_requests}"
            )
        if variant.get("labeled_rows", 0) < rule.min_labeled:
            return (
                f"labels not matured: {role} {name} has {variant.get('labeled_rows', 0)} rows with a terminal order "
                f"status, serving.ab_test.min_labeled is {rule.min_labeled}"
            )
    return None


def decide(summary: dict[str, Any], rule: Any) -> dict[str, Any]:
    """``{action, winner, reason}`` for the summary under ``rule`` (a ``serving.ab_test`` config)."""
    champion, challenger = summary["champion"], summary["challenger"]
    shortfall = _shortfall(summary, rule)
    if shortfall is not None:
        return {"action": KEEP, "winner": champion, "reason": f"keep champion {champion}: {shortfall}"}
    low, high = summary["map_difference_ci"]
    delta = summary["map_difference"]
    level = f"{summary['confidence']:.0%}"
    measured = (
        f"challenger {challenger} mAP {_fmt(summary['variants'][challenger]['map'])} vs champion {champion} "
        f"{_fmt(summary['variants'][champion]['map'])}: difference {delta:+.4f}, "
        f"{level} interval [{low:+.4f}, {high:+.4f}]"
    )
    if low > rule.min_improvement:
        return {
            "action": PROMOTE,
            "winner": challenger,
            "reason": f"promote challenger {challenger}: {measured}, above min_improvement {rule.min_improvement}",
        }
    return {
        "action": KEEP,
        "winner": champion,
        "reason": f"keep champion {champion}: {measured} does not clear min_improvement {rule.min_improvement}",
    }


def comparison_table(summary: dict[str, Any], decision: dict[str, Any]) -> str:
    """A plain-text table of the variants (the UI shows a task's ``comparison`` text as its own section)."""
    lines = [
        f"{'variant':<16} {'role':<10} {'requests':>8} {'labeled':>7} {'mAP':>7} {'interval':>17} {'latency':>9}  "
        "prediction mix"
    ]
    for role in ("champion", "challenger"):
        name = summary[role]
        v = summary["variants"].get(name, {})
        ci = v.get("map_ci")
        interval = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "n/a"
        mix = ", ".join(f"{k} {share:.0%}" for k, share in (v.get("prediction_mix") or {}).items())
        latency = f"{v['latency_ms']:.1f} ms" if v.get("latency_ms") is not None else "n/a"
        lines.append(
            f"{name:<16} {role:<10} {v.get('requests', 0):>8} {v.get('labeled_rows', 0):>7} "
            f"{_fmt(v.get('map')):>7} {interval:>17} {latency:>9}  {mix}"
        )
    lines.append(f"decision: {decision['reason']}")
    return "\n".join(lines)
