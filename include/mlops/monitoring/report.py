"""The drift report: one self-contained HTML page (inline SVG plots, no external assets).

Sections: the window and its verdict; the violations; a table of per-feature distances
(L-inf and its threshold, PSI, completeness); one plot per feature (baseline vs window shares
per bucket); the predicted-label mix; and the real-time per-minute aggregates of the window
(from :mod:`mlops.reporting`), when the job was given them.
"""

from __future__ import annotations

import html
from typing import Any

BAR_W, PLOT_H = 22, 120
CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}th{background:#f3f3f3}
.bad{color:#b00020;font-weight:600}.ok{color:#1b5e20}.plots{display:flex;flex-wrap:wrap;gap:18px}
.plot{border:1px solid #ddd;padding:6px}.legend span{display:inline-block;width:10px;height:10px;margin:0 4px}"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else _e(value)


def feature_plot(feature: dict[str, Any]) -> str:
    """An SVG grouped bar chart of baseline (grey) vs window (blue or red when drifted) shares."""
    base, window, labels = feature["baseline_shares"], feature["window_shares"], feature["bucket_labels"]
    if not labels:
        return ""
    top = max([*base, *window, 1e-9])
    width = len(labels) * (2 * BAR_W + 6) + 10
    colour = "#c62828" if feature["drifted"] else "#1565c0"
    bars = []
    for i, label in enumerate(labels):
        x = 5 + i * (2 * BAR_W + 6)
        for j, (share, fill) in enumerate(((base[i], "#9e9e9e"), (window[i], colour))):
            h = PLOT_H * share / top
            bars.append(
                f'<rect x="{x + j * BAR_W}" y="{PLOT_H - h:.1f}" width="{BAR_W - 2}" height="{h:.1f}" '
                f'fill="{fill}"><title>{_e(label)}: {"baseline" if j == 0 else "window"} {share:.3f}</title></rect>'
            )
    title = (
        f"{_e(feature['name'])} — L∞ {_num(feature['linf'], 3)} (threshold {_num(feature['threshold'], 3)}), "
        f"PSI {_num(feature['psi'], 3)}"
    )
    return (
        f'<div class="plot"><div class="{"bad" if feature["drifted"] else "ok"}">{title}</div>'
        f'<svg width="{width}" height="{PLOT_H + 4}" role="img">{"".join(bars)}</svg>'
        f'<div style="font-size:11px;max-width:{width}px">buckets: {_e(", ".join(labels))}</div></div>'
    )


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def aggregates_section(aggregates: list[dict[str, Any]]) -> str:
    """The real-time per-minute aggregates as a table (pk, minute, counters)."""
    if not aggregates:
        return "<p>No real-time aggregates for this window.</p>"
    counters = sorted({k for row in aggregates for k in row if k not in ("pk", "minute", "expires_at")})
    rows = [[_e(r["pk"]), _e(r["minute"]), *(_num(r.get(c, 0), 1) for c in counters)] for r in aggregates]
    return _table(["pk", "minute", *counters], rows)


def _quarantined_fact(quarantined: dict[str, Any]) -> str:
    total = int(quarantined.get("total", 0))
    return f'<span class="bad">{total}</span> (not in the statistics; see below)' if total else "0"


def quarantine_section(quarantined: dict[str, Any]) -> str:
    """Capture lines the drift job could not read: counts by reason, the first examples, the file holding them all."""
    total = int(quarantined.get("total", 0))
    if not total:
        return "<p>None: every capture line of the window was read.</p>"
    reasons = _table(["reason", "lines"], [[_e(k), _e(v)] for k, v in quarantined.get("by_reason", {}).items()])
    examples = _table(
        ["file", "line", "reason"],
        [[_e(x["source"]), _e(x["line"]), _e(x["reason"])] for x in quarantined.get("examples", [])],
    )
    where = f"all {total} are written with their reason to <code>{_e(quarantined.get('file'))}</code> beside it"
    return f"<p>{total} line(s) could not be read and were left out of the analysis; {where}.</p>{reasons}{examples}"


DATA_QUALITY_CHECKS = (
    "completeness_check",
    "data_type_check",
    "categorical_values_check",
    "missing_column_check",
    "extra_column_check",
)


def _sources_fact(summary: dict[str, Any]) -> str:
    """Distinct request sources, the largest one's share, and the flood guard's verdict."""
    if "distinct_sources" not in summary:
        return "not counted"
    text = (
        f"{summary['distinct_sources']} distinct ({summary.get('distinct_inference_ids', 0)} inference ids); "
        f"the largest sent {summary.get('top_source_share', 0):.0%}"
    )
    flooded = summary.get("flooded")
    return _e(text) + (f' <span class="bad">flood guard: {_e(flooded)}</span>' if flooded else "")


def _data_quality_fact(summary: dict[str, Any]) -> str:
    """Data-quality violations (missing values, types, unseen categories, columns) by check type."""
    counts = {k: v for k, v in (summary.get("violation_counts") or {}).items() if k in DATA_QUALITY_CHECKS}
    if not counts:
        return '<span class="ok">no violation</span>'
    return '<span class="bad">' + _e(", ".join(f"{n} {check}" for check, n in sorted(counts.items()))) + "</span>"


def _facts(summary: dict[str, Any]) -> list[list[str]]:
    """The report's facts table of one window."""
    facts = [
        ["model version", _e(summary.get("model_version"))],
        ["endpoint", _e(summary.get("endpoint_name"))],
        ["window", f"{_e(summary['window_start'])} → {_e(summary['window_end'])}"],
        ["captured records / rows", f"{summary['records']} / {summary['rows']}"],
        [
            "drift share",
            f'<span class="{"bad" if summary["window_drifted"] else "ok"}">{summary["drift_share"]:.2%}</span>'
            f" (window drifted at ≥ {summary['settings']['drift_share_threshold']:.0%})",
        ],
        ["drifted features", _e(", ".join(summary["drifted_features"]) or "none")],
        ["quarantined capture lines", _quarantined_fact(summary.get("quarantined") or {})],
        [
            "comparison",
            _e(
                f"{summary['settings']['comparison_method']}, L∞ threshold "
                f"{summary['settings']['comparison_threshold']}, PSI alert at {summary['settings']['psi_threshold']}"
            ),
        ],
    ]
    facts.insert(4, ["request sources", _sources_fact(summary)])
    facts.insert(6, ["data quality (vs constraints.json)", _data_quality_fact(summary)])
    return facts


def render(summary: dict[str, Any], violations: dict[str, Any], aggregates: list[dict[str, Any]] | None = None) -> str:
    """The report HTML of one drift-job run."""
    verdict = "DRIFTED" if summary["window_drifted"] else "insufficient data" if summary["insufficient"] else "no drift"
    facts = _facts(summary)
    feature_rows = [
        [
            _e(f["name"]),
            _e(f["inferred_type"]),
            _num(f["linf"]),
            _num(f["threshold"]),
            _num(f["psi"]),
            "yes" if f["psi_alert"] else "",
            _num(f["completeness"], 3),
            '<span class="bad">drifted</span>' if f["drifted"] else "ok",
        ]
        for f in summary["features"]
    ]
    violation_rows = [
        [_e(v["feature_name"]), _e(v["constraint_check_type"]), _e(v["description"])] for v in violations["violations"]
    ]
    labels = summary.get("predicted_label_shares", {})
    violations_html = _table(["feature", "check", "description"], violation_rows) if violation_rows else "<p>None.</p>"
    label_rows = [[_e(k), f"{v:.3f}"] for k, v in sorted(labels.items())]
    labels_html = _table(["label", "share"], label_rows) if labels else "<p>No outputs captured.</p>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Drift report {_e(summary["window_end"])}</title>
<style>{CSS}</style></head><body>
<h1>Drift report: {_e(verdict)}</h1>{_table(["", ""], facts)}
<h2>Violations ({len(violation_rows)})</h2>{violations_html}
<h2>Features</h2>
<p>L∞: Kolmogorov-Smirnov distance (numeric) or largest category-share difference (categorical) to the baseline;
the threshold is Robust-adjusted for the window size. PSI over the baseline's decile buckets / categories.</p>
{_table(["feature", "type", "L∞", "threshold", "PSI", "PSI alert", "completeness", "verdict"], feature_rows)}
<div class="legend"><span style="background:#9e9e9e"></span>baseline <span style="background:#1565c0"></span>window
<span style="background:#c62828"></span>window (drifted)</div>
<div class="plots">{"".join(feature_plot(f) for f in summary["features"])}</div>
<h2>Quarantined capture lines</h2>{quarantine_section(summary.get("quarantined") or {})}
<h2>Predicted labels</h2>{labels_html}
<h2>Real-time aggregates (per minute)</h2>{aggregates_section(aggregates or [])}
</body></html>"""
