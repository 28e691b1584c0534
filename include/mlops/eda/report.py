"""The HTML EDA report: the EDA query results as tables and matplotlib charts (Agg, base64 PNG inline).

Input is the Athena result CSVs (``<athena-results>/<QueryExecutionId>.csv``) by query name,
read with pandas through fsspec, so ``file://`` and ``s3://`` work alike. The report is one
self-contained HTML file, written to the lake's reports prefix.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime
from typing import Any

from mlops.lake import local_path


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img alt="chart" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _table(frame: Any, max_rows: int = 60) -> str:
    return frame.head(max_rows).to_html(index=False, border=0, classes="grid", na_rep="", float_format="{:,.4g}".format)


def chart_class_balance(frame: Any) -> str:
    import matplotlib.pyplot as plt

    pivot = frame.pivot_table(index="split", columns="label", values="row_count", aggfunc="sum").fillna(0)
    fig, ax = plt.subplots(figsize=(6, 3))
    pivot.plot.bar(ax=ax, stacked=True, rot=0)
    ax.set_ylabel("rows")
    ax.set_title("Rows per split and label")
    return _png(fig)


def chart_null_rates(frame: Any) -> str:
    import matplotlib.pyplot as plt

    rates = frame.drop(columns=["row_count"]).iloc[0].rename(lambda c: c.removesuffix("_null_rate")).astype(float)
    rates = rates.sort_values()
    fig, ax = plt.subplots(figsize=(6, 0.18 * len(rates) + 1))
    rates.plot.barh(ax=ax, color=["#c0392b" if r > 0 else "#95a5a6" for r in rates])
    ax.set_xlabel("null rate")
    ax.set_xlim(0, max(0.05, rates.max() * 1.1))
    ax.set_title("Null rate per column")
    return _png(fig)


def chart_top_categories(frame: Any) -> str:
    import matplotlib.pyplot as plt

    features = sorted(frame["feature"].unique())
    fig, axes = plt.subplots(len(features), 1, figsize=(6, 1.6 * len(features)), squeeze=False)
    for ax, feature in zip(axes[:, 0], features, strict=True):
        part = frame[frame["feature"] == feature].sort_values("row_count")
        ax.barh(part["value"].astype(str), part["pct"])
        ax.set_title(feature, fontsize=9)
        ax.set_xlabel("% of rows", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def chart_label_rate_by_segment(frame: Any) -> str:
    import matplotlib.pyplot as plt

    weighted = (
        frame.assign(returned=frame["return_rate"] * frame["orders"], cancelled=frame["cancel_rate"] * frame["orders"])
        .groupby("customer_segment")[["orders", "returned", "cancelled"]]
        .sum()
    )
    rates = weighted[["returned", "cancelled"]].div(weighted["orders"], axis=0)
    fig, ax = plt.subplots(figsize=(6, 3))
    rates.plot.bar(ax=ax, rot=0)
    ax.set_ylabel("rate")
    ax.set_title("Return and cancel rate by customer segment")
    return _png(fig)


CHARTS = {
    "class_balance": chart_class_balance,
    "null_rates": chart_null_rates,
    "top_categories": chart_top_categories,
    "label_rate_by_segment": chart_label_rate_by_segment,
}
TITLES = {
    "class_balance": "Rows per split and class balance",
    "null_rates": "Null rates",
    "numeric_distributions": "Numeric distributions",
    "top_categories": "Top categories",
    "label_rate_by_segment": "Label rate by segment",
    "change_since_previous": "Change since the previous run",
}


def read_results(csv_uris: dict[str, str]) -> dict[str, Any]:
    """Query name -> DataFrame of its Athena result CSV."""
    import pandas as pd

    return {
        name: pd.read_csv(uri if not uri.startswith("file://") else local_path(uri)) for name, uri in csv_uris.items()
    }


def render_html(results: dict[str, Any], meta: dict[str, Any]) -> str:
    """The whole report as one HTML string."""
    import matplotlib

    matplotlib.use("Agg")
    sections = []
    for name, frame in results.items():
        chart = CHARTS[name](frame) if name in CHARTS and len(frame) else ""
        table = (
            _table(frame.T.reset_index().rename(columns={"index": "column", 0: "value"}))
            if name == "null_rates"
            else _table(frame)
        )
        sections.append(f"<section><h2>{html.escape(TITLES.get(name, name))}</h2>{chart}{table}</section>")
    facts = "".join(f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in meta.items())
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Features EDA — {html.escape(str(meta.get("run_key", "")))}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}
table.grid{{border-collapse:collapse;font-size:12px;margin:0.5em 0 1.5em}}
table.grid td,table.grid th{{border:1px solid #ddd;padding:2px 6px;text-align:right}}
section{{margin-bottom:2em}} img{{max-width:100%}}</style></head>
<body><h1>Curated features — exploratory data analysis</h1><ul>{facts}</ul>{"".join(sections)}
<footer><small>Generated {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")} from Athena result CSVs.</small></footer>
</body></html>"""


def write_text(uri: str, text: str) -> None:
    """Write ``text`` to a ``file://`` or ``s3://`` URI."""
    if uri.startswith("file://"):
        path = local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    import fsspec

    with fsspec.open(uri, "w", encoding="utf-8") as handle:
        handle.write(text)


def build_report(csv_uris: dict[str, str], report_uri: str, meta: dict[str, Any]) -> dict[str, Any]:
    """Read the result CSVs, render the report, write it to ``report_uri``; return a summary."""
    results = read_results(csv_uris)
    write_text(report_uri, render_html(results, meta))
    return {"report_uri": report_uri, "queries": {name: len(frame) for name, frame in results.items()}}
