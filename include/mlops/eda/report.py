"""The HTML EDA report: the EDA query results as tables and inline SVG charts (standard library only).

Input is the Athena result CSVs (``<athena-results>/<QueryExecutionId>.csv``, small aggregates) by
query name, read with :mod:`csv`: ``file://`` from disk, ``s3://`` through the S3 client passed in
(on the worker, the provider's S3Hook client). The report is one self-contained HTML file (charts
are SVG drawn by :mod:`mlops.eda.svg`, no images, no scripts), written to the lake's reports prefix.
Nothing here needs pandas or matplotlib, so it runs on the MWAA worker.
"""

from __future__ import annotations

import csv
import html
import io
from datetime import UTC, datetime
from typing import Any

from mlops.eda import svg
from mlops.training import lake_io

Rows = list[dict[str, str]]
SPLIT_ORDER = ("train", "validation", "test")
TITLES = {
    "class_balance": "Rows per split and class balance",
    "null_rates": "Null rates",
    "numeric_distributions": "Numeric distributions",
    "top_categories": "Top categories",
    "label_rate_by_segment": "Label rate by segment",
    "change_since_previous": "Change since the previous run",
}
STYLE = """body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
table.grid{border-collapse:collapse;font-size:12px;margin:0.5em 0 1.5em}
table.grid td,table.grid th{border:1px solid #ddd;padding:2px 6px;text-align:right}
section{margin-bottom:2em} svg{max-width:100%;height:auto;display:block;margin:0.5em 0}"""


def number(text: str) -> float | None:
    """A CSV cell as a number; ``None`` for an empty (NULL) or non-numeric cell."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def read_results(csv_uris: dict[str, str], s3: Any = None) -> dict[str, Rows]:
    """Query name -> rows (dicts of strings) of its Athena result CSV."""
    return {
        name: list(csv.DictReader(io.StringIO(lake_io.read_bytes(uri, s3).decode("utf-8"))))
        for name, uri in csv_uris.items()
    }


# ---- charts (one SVG each) ---------------------------------------------------------------------


def chart_class_balance(rows: Rows) -> str:
    """Stacked columns: rows per split, one segment per label."""
    splits = sorted({r["split"] for r in rows}, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 9, s))
    labels = sorted({r["label"] for r in rows})
    counts = {(r["split"], r["label"]): number(r["row_count"]) or 0.0 for r in rows}
    series = {label: [counts.get((split, label), 0.0) for split in splits] for label in labels}
    return svg.column_chart("Rows per split and label", splits, series, stacked=True, y_label="rows")


def chart_null_rates(rows: Rows) -> str:
    """Horizontal bars: null rate per column, highest first, columns with nulls in red."""
    rates = sorted(
        (
            (name.removesuffix("_null_rate"), number(value) or 0.0)
            for name, value in rows[0].items()
            if name != "row_count"
        ),
        key=lambda item: -item[1],
    )
    colors = [svg.ALERT if rate > 0 else svg.MUTED for _, rate in rates]
    panel = svg.Panel("", [name for name, _ in rates], [rate for _, rate in rates], colors)
    return svg.bar_chart("Null rate per column", [panel], x_label="null rate", x_max=max(0.05, rates[0][1] * 1.1))


def chart_top_categories(rows: Rows) -> str:
    """One panel per categorical feature: share of rows of its most frequent values, most frequent first."""
    panels = []
    for feature in sorted({r["feature"] for r in rows}):
        part = sorted((r for r in rows if r["feature"] == feature), key=lambda r: -(number(r["row_count"]) or 0.0))
        panels.append(svg.Panel(feature, [r["value"] for r in part], [number(r["pct"]) or 0.0 for r in part]))
    return svg.bar_chart("Top categories", panels, x_label="% of rows")


def chart_label_rate_by_segment(rows: Rows) -> str:
    """Grouped columns: return and cancel rate per customer segment (weighted over channels by orders)."""
    segments = sorted({r["customer_segment"] for r in rows})
    totals = {s: {"orders": 0.0, "returned": 0.0, "cancelled": 0.0} for s in segments}
    for r in rows:
        orders = number(r["orders"]) or 0.0
        total = totals[r["customer_segment"]]
        total["orders"] += orders
        total["returned"] += (number(r["return_rate"]) or 0.0) * orders
        total["cancelled"] += (number(r["cancel_rate"]) or 0.0) * orders
    series = {
        kind: [totals[s][kind] / totals[s]["orders"] if totals[s]["orders"] else 0.0 for s in segments]
        for kind in ("returned", "cancelled")
    }
    return svg.column_chart(
        "Return and cancel rate by customer segment", segments, series, stacked=False, y_label="rate"
    )


CHARTS = {
    "class_balance": chart_class_balance,
    "null_rates": chart_null_rates,
    "top_categories": chart_top_categories,
    "label_rate_by_segment": chart_label_rate_by_segment,
}


# ---- tables and the page -----------------------------------------------------------------------


def cell(text: str) -> str:
    """A CSV cell for a table: integers as they are, other numbers to 4 significant digits, text escaped."""
    value = number(text)
    if value is None or text.lstrip("-").isdigit():
        return html.escape(text)
    return f"{value:,.4g}"


def table_html(rows: Rows, max_rows: int = 60) -> str:
    """The first ``max_rows`` rows as an HTML table (header from the CSV)."""
    if not rows:
        return "<p><em>no rows</em></p>"
    columns = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(r[c] or '')}</td>" for c in columns) + "</tr>" for r in rows[:max_rows])
    return f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def section_html(name: str, rows: Rows) -> str:
    """One query's section: title, chart (when it has one and rows), table (null rates: one row per column)."""
    chart = CHARTS[name](rows) if name in CHARTS and rows else ""
    if name == "null_rates" and rows:
        rows = [{"column": column, "value": value} for column, value in rows[0].items()]
    return f"<section><h2>{html.escape(TITLES.get(name, name))}</h2>{chart}{table_html(rows)}</section>"


def render_html(results: dict[str, Rows], meta: dict[str, Any], generated: datetime | None = None) -> str:
    """The whole report as one HTML string."""
    sections = "".join(section_html(name, rows) for name, rows in results.items())
    facts = "".join(f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in meta.items())
    stamp = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Features EDA — {html.escape(str(meta.get("run_key", "")))}</title>
<style>{STYLE}</style></head>
<body><h1>Curated features — exploratory data analysis</h1><ul>{facts}</ul>{sections}
<footer><small>Generated {stamp} from Athena result CSVs.</small></footer>
</body></html>"""


def build_report(csv_uris: dict[str, str], report_uri: str, meta: dict[str, Any], s3: Any = None) -> dict[str, Any]:
    """Read the result CSVs, render the report, write it to ``report_uri``; return a summary."""
    results = read_results(csv_uris, s3)
    lake_io.write_bytes(report_uri, render_html(results, meta).encode("utf-8"), s3)
    return {"report_uri": report_uri, "queries": {name: len(rows) for name, rows in results.items()}}
