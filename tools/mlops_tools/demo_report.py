"""The summary of `make demo`: a table on the console, JSON for machines, an HTML index of reports."""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from mlops.config import load_config, mlops_home

if TYPE_CHECKING:
    from mlops_tools.demo import Demo

console = Console()
HIDDEN_FIGURES = frozenset(
    {"run_id", "events", "xcoms", "sample_request", "sample_response", "replay", "checked_at", "run_key",
     "snapshot_id", "model_package_arn", "model_package_group", "raw_uri", "curated_uri", "image_uri",
     "evaluation_uri", "start", "end", "seconds", "first_order_id"}
)  # fmt: skip
REPORT_KEYS = ("report_uri", "data_docs", "violations_uri")


def plain(value: Any) -> Any:
    """A JSON-friendly copy: dataclasses to dicts, datetimes to ISO strings, bytes decoded."""
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value


def _short(value: Any, limit: int = 44) -> str:
    text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def figures_text(figures: dict[str, Any], limit: int = 7) -> str:
    """The few figures that say what a stage did; long values keep their end (URIs keep the file)."""
    shown = [
        (k, v)
        for k, v in figures.items()
        if k not in HIDDEN_FIGURES and v is not None and not isinstance(v, dict | list)
    ]
    nested = [
        (k, v)
        for k, v in figures.items()
        if k not in HIDDEN_FIGURES
        and isinstance(v, dict)
        and v
        and all(not isinstance(x, dict | list) for x in v.values())
    ]
    parts = [f"{k}={_short(v)}" for k, v in shown[:limit]]
    parts += [f"{k}: " + ", ".join(f"{kk}={_short(vv, 12)}" for kk, vv in v.items()) for k, v in nested[:2]]
    return "\n".join(parts)


def _text(value: Any, limit: int = 400) -> str:
    value = plain(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + " ..."


def endpoint_summary(demo: Demo) -> dict[str, Any] | None:
    """URL, sample request and response, and replay commands of the demo's endpoint, if one went live."""
    from mlops.serving.runtime import endpoint_summary as summary_of

    names = [s.figures["endpoint_name"] for s in demo.stages if "invocation_url" in s.figures]
    if not names:
        return None
    try:
        return plain(summary_of(names[-1]))
    except Exception as exc:  # the rest of the summary still prints
        return {"invocation_url": f"unavailable: {exc}"}


def raw_order_sample(endpoint_name: str) -> dict[str, Any]:
    """A raw order as a checkout would send it now (the newest order's customer, lines and choices, read from
    the local catalog's latest-state views) and the endpoint's answer: its features come from the online store."""
    import duckdb

    from mlops.aws.glue_requests import stack_names
    from mlops.catalog.duckdb_catalog import local_catalog_path
    from mlops.serving.runtime import invoke_endpoint

    db = stack_names(load_config()).database
    columns = ("order_id", "customer_id", "channel", "payment_method", "shipping_method", "ship_country",
               "promised_days", "shipping_fee", "discount_code")  # fmt: skip
    select = ", ".join(f"CAST({c} AS DOUBLE)" if c == "shipping_fee" else c for c in columns)
    line_sql = (
        "SELECT product_id, quantity, CAST(unit_price AS DOUBLE), CAST(discount_pct AS DOUBLE) "
        f'FROM "{db}".order_items WHERE order_id = ? ORDER BY order_item_id'  # nosec B608  # project constants only
    )
    with duckdb.connect(str(local_catalog_path()), read_only=True) as con:
        newest = f'SELECT {select} FROM "{db}".orders ORDER BY order_ts DESC, order_id DESC LIMIT 1'  # nosec B608  # project constants only
        order = dict(zip(columns, con.execute(newest).fetchone(), strict=True))
        lines = con.execute(line_sql, [order.pop("order_id")]).fetchall()
    request = {
        "instances": [
            {**plain(order), "order_ts": datetime.now(UTC).isoformat(timespec="seconds"),
             "lines": [dict(zip(("product_id", "quantity", "unit_price", "discount_pct"), line, strict=True))
                       for line in lines]}
        ]
    }  # fmt: skip
    return {"request": request, "response": invoke_endpoint(endpoint_name, request)["Body"]}


def model_versions() -> list[dict[str, Any]]:
    """Every registered version, newest first."""
    from mlops.registry import list_packages

    try:
        packages = list_packages(load_config().registry.model_package_group)
    except Exception:  # no registry yet
        return []
    return [{k: p[k] for k in ("version", "approval_status", "map", "model_data_url")} for p in packages]


def collect_reports(demo: Demo) -> list[dict[str, str]]:
    """Every report a stage pointed at, then any other HTML report under the lake's reports."""
    found: list[dict[str, str]] = []
    for stage in demo.stages:
        for key, value in stage.figures.items():
            if key in REPORT_KEYS and isinstance(value, str):
                found.append({"stage": stage.name, "name": key, "uri": value})
    root = mlops_home() / "lake" / "reports"
    for path in sorted(root.rglob("*.html")) if root.exists() else []:
        uri = path.as_uri()
        if path.name != "index.html" and not any(r["uri"].rstrip("/") in uri for r in found):
            found.append({"stage": path.relative_to(root).parts[0], "name": path.name, "uri": uri})
    return found


def write_report_index(reports: list[dict[str, str]], demo: Demo) -> Path:
    """One HTML page linking every report, with the stage table."""
    path = mlops_home() / "lake" / "reports" / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(
        f"<tr><td>{html.escape(s.name)}</td><td>{s.status}</td><td>{s.seconds:.1f}</td>"
        f"<td><pre>{html.escape(figures_text(s.figures) or s.detail)}</pre></td></tr>"
        for s in demo.stages
    )
    links = "".join(
        f'<li>{html.escape(r["stage"])}: <a href="{html.escape(r["uri"])}">{html.escape(r["name"])}</a></li>'
        for r in reports
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        "<!doctype html><meta charset=utf-8><title>mlops demo reports</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:left;vertical-align:top}"
        "pre{margin:0}</style>"
        f"<h1>MLOps demo, SIZE={demo.size}</h1><h2>Reports</h2><ul>{links}</ul>"
        f"<h2>Stages</h2><table><tr><th>stage</th><th>status</th><th>seconds</th><th>key figures</th></tr>"
        f"{rows}</table>"
    )
    tmp.replace(path)
    return path


def report(demo: Demo, started_at: datetime) -> Path:
    """Print the summary, write it as JSON under the state folder, and write the report index."""
    table = Table("stage", "status", "seconds", "key figures", title=f"make demo SIZE={demo.size}")
    for stage in demo.stages:
        colour = {"ok": "green", "failed": "red"}.get(stage.status, "yellow")
        table.add_row(
            stage.name,
            f"[{colour}]{stage.status}[/{colour}]",
            f"{stage.seconds:.1f}",
            figures_text(stage.figures) or stage.detail,
        )
    console.print(table)
    endpoint = endpoint_summary(demo)
    if endpoint:
        console.print(f"[bold]endpoint[/bold] {endpoint['invocation_url']}")
        console.print(f"  sample request: {_text(endpoint.get('sample_request'))}")
        console.print(f"  its response:   {_text(endpoint.get('sample_response'))}")
        try:
            raw = raw_order_sample(endpoint["endpoint_name"])
            console.print(f"  raw-order request (features from the online store): {_text(raw['request'])}")
            console.print(f"  its response:   {_text(raw['response'])}")
        except Exception as exc:  # the rest of the summary still prints
            console.print(f"  raw-order request: unavailable: {exc}")
        for how, command in (endpoint.get("replay") or {}).items():
            console.print(f"  replay with {how}: {command}", soft_wrap=True)
    versions = model_versions()
    if versions:
        console.print(
            "[bold]model versions[/bold] "
            + ", ".join(f"v{v['version']} {v['approval_status']} mAP={v['map']}" for v in versions)
        )
    reports = collect_reports(demo)
    index = write_report_index(reports, demo)
    console.print(f"[bold]reports[/bold] {len(reports)} linked from {index.as_uri()}")
    summary = {
        "target": "local",
        "size": demo.size,
        "seed": demo.seed,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "ok": not demo.failed,
        "stages": [plain({k: v for k, v in asdict(s).items()}) for s in demo.stages],
        "endpoint": endpoint,
        "model_versions": versions,
        "reports": reports,
        "report_index": str(index),
    }
    for stage in summary["stages"]:
        stage["figures"].pop("xcoms", None)
    path = mlops_home() / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=str))
    tmp.replace(path)
    console.print(f"summary JSON: {path}")
    return path
