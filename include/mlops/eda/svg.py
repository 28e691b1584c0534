"""Small SVG bar charts drawn by plain code (standard library only), for the EDA report.

Two shapes cover the report: :func:`column_chart` (vertical columns per group, series stacked
or side by side, with a legend) and :func:`bar_chart` (horizontal bars in one or more titled
panels sharing an x axis). Every label is XML-escaped; the output is one ``<svg>`` element with a
``<title>`` for screen readers, sized by its ``viewBox`` so it scales with the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")
ALERT = "#c0392b"
MUTED = "#95a5a6"
AXIS = "#888"
WIDTH = 640


@dataclass(frozen=True)
class Panel:
    """One titled group of horizontal bars (``colors`` default to the first palette colour)."""

    title: str
    labels: list[str]
    values: list[float]
    colors: list[str] | None = None


def fmt(value: float) -> str:
    """A tick or bar value: integers with thousands separators, others to 3 significant digits."""
    return f"{int(value):,}" if float(value).is_integer() and abs(value) < 1e15 else f"{value:.3g}"


def text(x: float, y: float, content: str, anchor: str = "start", size: int = 11, weight: str = "normal") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'font-weight="{weight}">{escape(content)}</text>'
    )


def rect(x: float, y: float, width: float, height: float, color: str, tip: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0):.1f}" height="{max(height, 0):.1f}" '
        f'fill="{color}"><title>{escape(tip)}</title></rect>'
    )


def line(x1: float, y1: float, x2: float, y2: float, color: str = AXIS) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" stroke-width="1"/>'


def document(title: str, height: float, body: list[str]) -> str:
    """The ``<svg>`` element around ``body``, with the chart title on top."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'width="{WIDTH}" height="{height:.0f}" font-family="sans-serif">'
        f"<title>{escape(title)}</title>{text(WIDTH / 2, 18, title, 'middle', 13, 'bold')}{''.join(body)}</svg>"
    )


def column_chart(title: str, groups: list[str], series: dict[str, list[float]], *, stacked: bool, y_label: str) -> str:
    """Vertical columns: one slot per group; the series stacked or side by side; legend on the right."""
    left, top, plot_w, plot_h = 60.0, 34.0, 440.0, 220.0
    totals = [sum(values[i] for values in series.values()) for i in range(len(groups))] if stacked else []
    peak = max(totals or [v for values in series.values() for v in values] or [0.0]) or 1.0
    middle = top + plot_h / 2
    body = [f'<g transform="rotate(-90 14 {middle:.1f})">{text(14, middle, y_label, "middle", 11)}</g>']
    for step in range(5):  # gridlines and ticks at 0, 1/4 .. 4/4 of the peak
        y = top + plot_h - plot_h * step / 4
        body += [line(left, y, left + plot_w, y, "#eee"), text(left - 4, y + 4, fmt(peak * step / 4), "end", 10)]
    slot = plot_w / max(len(groups), 1)
    width = slot * 0.7 / (1 if stacked else max(len(series), 1))
    for i, group in enumerate(groups):
        x0, base = left + slot * i + slot * 0.15, top + plot_h
        for k, (name, values) in enumerate(series.items()):
            height = plot_h * values[i] / peak
            x = x0 if stacked else x0 + k * width
            body.append(
                rect(x, base - height, width, height, PALETTE[k % len(PALETTE)], f"{group} / {name}: {fmt(values[i])}")
            )
            base = base - height if stacked else base
        body.append(text(left + slot * (i + 0.5), top + plot_h + 16, group, "middle"))
    body.append(line(left, top + plot_h, left + plot_w, top + plot_h))
    for k, name in enumerate(series):  # legend
        y = top + 14 * k
        body += [
            rect(left + plot_w + 20, y, 10, 10, PALETTE[k % len(PALETTE)], name),
            text(left + plot_w + 36, y + 9, name),
        ]
    return document(title, top + plot_h + 30, body)


def bar_chart(title: str, panels: list[Panel], *, x_label: str, x_max: float | None = None) -> str:
    """Horizontal bars, one titled block per panel, on a shared x axis from 0 to ``x_max``."""
    left, plot_w, row, y = 170.0, 380.0, 16.0, 30.0
    peak = x_max or max([v for p in panels for v in p.values] or [0.0]) * 1.05 or 1.0
    body: list[str] = []
    for panel in panels:
        if panel.title:
            body.append(text(left, y + 12, panel.title, "start", 11, "bold"))
            y += 18
        colors = panel.colors or [PALETTE[0]] * len(panel.values)
        for label, value, color in zip(panel.labels, panel.values, colors, strict=True):
            width = plot_w * min(value, peak) / peak
            body += [
                text(left - 6, y + 11, label, "end", 10),
                rect(left, y + 2, width, row - 4, color, f"{label}: {fmt(value)}"),
                text(left + width + 4, y + 11, fmt(value), "start", 10),
            ]
            y += row
        y += 6
    body.append(line(left, y, left + plot_w, y))
    for step in range(5):
        x = left + plot_w * step / 4
        body += [line(x, y, x, y + 4), text(x, y + 16, fmt(peak * step / 4), "middle", 10)]
    body.append(text(left + plot_w / 2, y + 32, x_label, "middle", 11))
    return document(title, y + 40, body)
