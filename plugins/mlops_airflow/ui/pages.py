"""The plugin's HTML pages, rendered on the server (every value escaped; no script).

Links are path-absolute under the app's mount path (``base``, e.g. ``/mlops``), so they hold
behind the API server's ``base_url`` and inside the UI's iframe; links to Airflow's own pages
open in the top window.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from functools import cache
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import quote

from mlops_airflow.ui.discovery import Deployment, TaskFindings
from mlops_airflow.ui.registry_view import DECISIONS, VersionRow
from mlops_airflow.ui.run_data import RunInfo

MOUNT = "/mlops"


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def q(value: str) -> str:
    """One URL path segment."""
    return quote(value, safe="")


@cache
def _template() -> Template:
    return Template(resources.files("mlops_airflow.ui").joinpath("page.html").read_text(encoding="utf-8"))


def airflow_root(base: str) -> str:
    """Airflow's own root path, from the plugin's mount path."""
    return base.removesuffix(MOUNT)


def page(base: str, title: str, body: str) -> str:
    """A whole page: the shared navigation, the title and ``body`` (already HTML)."""
    nav = (
        f'<a href="{esc(base)}/">MLOps reports</a><a href="{esc(base)}/registry">Model registry</a>'
        f'<a href="{esc(airflow_root(base))}/" target="_top">Airflow</a>'
    )
    return _template().substitute(title=esc(title), nav=nav, body=body)


def run_url(base: str, dag_id: str, run_id: str) -> str:
    return f"{base}/runs/{q(dag_id)}/{q(run_id)}"


def file_url(base: str, dag_id: str, run_id: str, key: str) -> str:
    return f"{run_url(base, dag_id, run_id)}/files/{quote(key, safe='/')}"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return esc(value)


def _facts(facts: dict[str, Any]) -> str:
    if not facts:
        return ""
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{_number(v)}</dd>" for k, v in facts.items())
    return f"<dl>{rows}</dl>"


def _deployment(item: Deployment) -> str:
    facts = {
        "status": item.status,
        "endpoint config": item.config_name,
        "model version": item.model_version,
        "invocation URL": item.invocation_url,
    }
    rows = "".join(
        f"<tr><td>{esc(v.name)}</td><td>{esc(v.model or '')}</td><td class=num>{_number(v.weight)}</td>"
        f"<td class=num>{'' if v.share is None else f'{100 * v.share:.0f} %'}</td></tr>"
        for v in item.variants
    )
    return (
        f"<h3>Deployment: endpoint <code>{esc(item.endpoint_name)}</code></h3>"
        f"{_facts({k: v for k, v in facts.items() if v is not None})}"
        f"<table><tr><th>variant</th><th>model</th><th>weight</th><th>traffic</th></tr>{rows}</table>"
    )


def _subpages(base: str, dag_id: str, run_id: str, index_key: str, keys: list[str]) -> str:
    folder = index_key.rsplit("/", 1)[0] + "/"
    links = "".join(
        f'<li><a href="{esc(file_url(base, dag_id, run_id, k))}">{esc(k.removeprefix(folder))}</a></li>'
        for k in keys
        if k != index_key
    )
    return f"<ul>{links}</ul>" if links else ""


def findings_html(
    base: str, dag_id: str, run_id: str, items: Iterable[TaskFindings], subpages: dict[str, list[str]] | None = None
) -> str:
    """One section per task instance: reports (links; a site's pages under its index), the
    champion/challenger table, deployments, facts."""
    parts, subpages = [], subpages or {}
    for item in items:
        mapped = f" [{item.map_index}]" if item.map_index >= 0 else ""
        parts.append(f"<h2>{esc(item.task_id)}{esc(mapped)}</h2>")
        if item.reports:
            links = "".join(
                f'<li><a href="{esc(file_url(base, dag_id, run_id, r.key))}">{esc(r.label)}: {esc(r.file_name)}</a>'
                f' <span class="muted">{esc(r.key)}</span>'
                f"{_subpages(base, dag_id, run_id, r.key, subpages.get(r.key, []))}</li>"
                for r in item.reports
            )
            parts.append(f"<ul>{links}</ul>")
        if item.comparison:
            parts.append(f"<h3>Champion / challenger</h3><pre>{esc(item.comparison)}</pre>")
        parts += [_deployment(d) for d in item.deployments]
        parts.append(_facts(item.facts))
    return "".join(parts)


def run_page(
    base: str,
    info: RunInfo,
    items: list[TaskFindings],
    task_id: str | None = None,
    subpages: dict[str, list[str]] | None = None,
) -> str:
    """What one DAG run (or one of its tasks) published; ``subpages``: report key -> pages below it."""
    shown = [i for i in items if task_id is None or i.task_id == task_id]
    airflow_run = f"{airflow_root(base)}/dags/{q(info.dag_id)}/runs/{q(info.run_id)}"
    head = (
        f'<p class="muted">run <code>{esc(info.run_id)}</code> · {esc(info.state)} · {esc(info.run_after)} · '
        f'<a href="{esc(airflow_run)}" target="_top">open in Airflow</a></p>'
    )
    if not shown:
        what = f"task {task_id}" if task_id else "this run"
        body = (
            f"<p>Nothing to show for {esc(what)} yet: no report, evaluation or deployment in its XComs or "
            "Asset events. Tasks publish them by returning their locations (<code>report_uri</code>, "
            "<code>data_docs</code>, <code>evaluation_uri</code>, ...) once they succeed.</p>"
        )
        return page(base, f"{info.dag_id}{' · ' + task_id if task_id else ''}", head + body)
    title = f"{info.dag_id}{' · ' + task_id if task_id else ''}"
    return page(base, title, head + findings_html(base, info.dag_id, info.run_id, shown, subpages))


def runs_page(base: str, title: str, runs: list[tuple[str, str, list[TaskFindings]]], empty: str) -> str:
    """Several runs' findings, newest first (the overview and the task pages)."""
    if not runs:
        return page(base, title, f"<p>{esc(empty)}</p>")
    parts = []
    for dag_id, run_id, items in runs:
        parts.append(f'<h2><a href="{esc(run_url(base, dag_id, run_id))}">{esc(dag_id)} · {esc(run_id)}</a></h2><ul>')
        for item in items:
            for r in item.reports:
                parts.append(
                    f'<li>{esc(item.task_id)}: <a href="{esc(file_url(base, dag_id, run_id, r.key))}">'
                    f"{esc(r.label)}: {esc(r.file_name)}</a></li>"
                )
            for d in item.deployments:
                shares = ", ".join(f"{v.name} {100 * (v.share or 0):.0f} %" for v in d.variants)
                parts.append(f"<li>{esc(item.task_id)}: endpoint {esc(d.endpoint_name)} ({esc(shares)})</li>")
        parts.append("</ul>")
    return page(base, title, "".join(parts))


def _registry_row(base: str, row: VersionRow, train_dag: str) -> str:
    run = f'<a href="{esc(run_url(base, train_dag, row.run_id))}">{esc(row.run_id)}</a>' if row.run_id else ""
    report = (
        f'<a href="{esc(file_url(base, train_dag, row.run_id, row.evaluation_key))}">evaluation report</a>'
        if row.run_id and row.evaluation_key
        else ""
    )
    actions = "".join(
        f'<form class="inline" method="post" action="{esc(base)}/registry/{row.version}/{decision}">'
        f'<button type="submit">{decision.capitalize()}</button></form>'
        for decision in DECISIONS
    ) if row.pending else ""  # fmt: skip
    serving = "<br>".join(esc(s) for s in row.serving) or '<span class="muted">not serving</span>'
    return (
        f'<tr id="v{row.version}"><td class=num>{row.version}</td>'
        f'<td class="status status-{esc(row.status)}">{esc(row.status)}</td>'
        f"<td class=num>{'' if row.map is None else f'{row.map:.4f}'}</td>"
        f"<td><code>{esc(row.snapshot or '')}</code></td><td><code>{esc(row.training_job or '')}</code></td>"
        f"<td>{run}</td><td>{report}</td><td>{serving}</td><td>{actions}</td></tr>"
    )


def registry_page(
    base: str, group: str, endpoint_name: str, rows: list[VersionRow], train_dag: str, message: str = ""
) -> str:
    """Every version of the model package group, with approve/reject on pending ones."""
    note = f'<p class="status">{esc(message)}</p>' if message else ""
    if not rows:
        body = f"{note}<p>No version of <code>{esc(group)}</code> is registered yet; mlops_train registers one.</p>"
        return page(base, f"Model registry · {group}", body)
    header = (
        "<tr><th>version</th><th>approval status</th><th>test mAP</th><th>data snapshot</th><th>training job</th>"
        "<th>registered by run</th><th>evaluation</th><th>serving now</th><th>actions</th></tr>"
    )
    table = "<table>" + header + "".join(_registry_row(base, r, train_dag) for r in rows) + "</table>"
    intro = (
        f'<p class="muted">model package group <code>{esc(group)}</code> · endpoint '
        f"<code>{esc(endpoint_name)}</code> · mlops_deploy deploys Approved versions only</p>"
    )
    return page(base, f"Model registry · {group}", note + intro + table)
