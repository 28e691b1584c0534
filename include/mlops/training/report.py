"""Evaluation charts (PR curves, confusion matrix) as PNG, and the HTML report that shows them."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlops.training.gate import GATE_METRIC, PRESENT_TRIGGERS
from mlops.training.metrics import precision_recall_curve


def plot_pr_curves(
    y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str], ap: dict[str, float], path: Path
) -> Path:
    """One precision-recall curve per class, AP in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth = np.asarray(y_true)
    fig, ax = plt.subplots(figsize=(6, 5))
    for i, name in enumerate(classes):
        recall, precision = precision_recall_curve(truth == name, proba[:, i])
        ax.step(recall, precision, where="post", label=f"{name} (AP {ap[name]:.3f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="Precision-recall, one vs rest")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_confusion(
    matrix: dict[str, dict[str, int]], classes: Sequence[str], path: Path, labelled: str = "argmax"
) -> Path:
    """The confusion matrix (rows actual, columns predicted) with counts; ``labelled`` names the label rule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.array([[matrix[a][p] for p in classes] for a in classes])
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=30)
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="actual", title=f"Confusion matrix ({labelled})")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", color="black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _metric_rows(challenger: dict[str, Any], champion: dict[str, Any] | None) -> str:
    ours = challenger["multiclass_classification_metrics"]
    theirs = (champion or {}).get("multiclass_classification_metrics", {})
    rows = []
    for name, cell in ours.items():
        if name == "confusion_matrix":
            continue
        other = theirs.get(name, {}).get("value")
        strong = " style='font-weight:bold'" if name == GATE_METRIC else ""
        rows.append(
            f"<tr{strong}><td>{html.escape(name)}</td><td>{cell['value']:.4f}</td>"
            f"<td>±{cell['standard_deviation']:.4f}</td><td>{'' if other is None else f'{other:.4f}'}</td></tr>"
        )
    return "\n".join(rows)


def _matrix_table(matrix: dict[str, dict[str, int]], caption: str) -> str:
    classes = list(matrix)
    head = "".join(f"<th>{html.escape(p)}</th>" for p in classes)
    rows = "".join(
        f"<tr><th>{html.escape(a)}</th>" + "".join(f"<td>{matrix[a][p]}</td>" for p in classes) + "</tr>"
        for a in classes
    )
    return f"<table><caption>{html.escape(caption)}</caption><tr><th>actual \\ predicted</th>{head}</tr>{rows}</table>"


def decision_section(challenger: dict[str, Any]) -> str:
    """The confusion matrices at the argmax and at the decision thresholds, side by side (empty without)."""
    chosen = challenger.get("decision")
    if not chosen:
        return ""
    thresholds = ", ".join(f"{html.escape(c)} {t:.4g}" for c, t in chosen["thresholds"].items())
    cells = []
    for rule in ("argmax", "thresholds"):
        caption = f"{rule}: macro-F1 {chosen['macro_f1_' + rule]:.4f}"
        cells.append(f"<td>{_matrix_table(chosen['confusion_matrix_' + rule], caption)}</td>")
    return (
        f"<h2>Labels</h2><p>Decision thresholds (objective {html.escape(str(chosen.get('objective')))}, chosen on "
        f"the validation split; label = the class with the largest probability / threshold): {thresholds}.</p>"
        f"<table><tr>{''.join(cells)}</tr></table>"
    )


def recent_section(challenger: dict[str, Any], champion: dict[str, Any] | None) -> str:
    """The mAP on the recent rows (after the drift point, or the split's last days) next to the whole split's."""
    mine, theirs = challenger.get("recent") or {}, (champion or {}).get("recent") or {}
    if not mine:
        return ""
    rows, rule = mine.get("rows", 0), html.escape(str(mine.get("rule")))
    if not mine.get("usable"):
        return f"<h2>Recent rows</h2><p>{rows} recent rows ({rule}): too few to compare.</p>"
    other = f"{theirs[GATE_METRIC]:.4f}" if theirs.get("usable") else ""
    decides = mine.get("trigger") in PRESENT_TRIGGERS and bool(other)
    return (
        f"<h2>Recent rows</h2><p>{rows} rows: {rule}. Trigger: {html.escape(str(mine.get('trigger')))}; "
        f"the gate decides on {'these rows' if decides else 'the whole test split'}.</p>"
        f"<table><tr><th>{GATE_METRIC}</th><th>challenger</th><th>champion</th></tr>"
        f"<tr><td>recent rows</td><td>{mine[GATE_METRIC]:.4f}</td><td>{other}</td></tr></table>"
    )


def write_html(
    path: Path, *, title: str, challenger: dict[str, Any], champion: dict[str, Any] | None, images: Sequence[str]
) -> Path:
    """A self-contained report page next to its PNGs (referenced by file name)."""
    counts = challenger["dataset"]["class_counts"]
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p>Test split: {challenger["dataset"]["item_count"]} rows; class counts {html.escape(str(counts))}.
Gate metric: <b>{GATE_METRIC}</b> (macro over classes).</p>
<table><tr><th>metric</th><th>challenger</th><th>bootstrap sd</th><th>champion (same split)</th></tr>
{_metric_rows(challenger, champion)}
</table>
{recent_section(challenger, champion)}
{decision_section(challenger)}
{"".join(f'<p><img src="{html.escape(name)}" alt="{html.escape(name)}"></p>' for name in images)}
</body></html>
"""
    path.write_text(body)
    return path
