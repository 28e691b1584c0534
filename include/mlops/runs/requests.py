"""Airflow REST API v2 requests as data, in the shape of MWAA's ``InvokeRestApi``.

``Path`` is relative to ``/api/v2`` (MWAA adds it; the local transport prepends it), so the
same dict is sent to MWAA and to local Airflow. Tests validate each against botocore's
``mwaa.InvokeRestApi`` model.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

_DAG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")


class RunRequestError(ValueError):
    """A run request is invalid; ``field`` names the part of the body that is wrong."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def check_dag_id(dag_id: Any) -> str:
    """``dag_id`` if it is a valid DAG id; raise naming the field otherwise."""
    if not isinstance(dag_id, str) or not _DAG_ID.match(dag_id):
        raise RunRequestError(f"dag_id must be a DAG id (letters, digits, '_', '.', '-'), got {dag_id!r}", "dag_id")
    return dag_id


def dag_details_request(environment: str, dag_id: str) -> dict[str, Any]:
    """GET the DAG's details (its Params with their JSON schemas)."""
    return {"Name": environment, "Path": f"/dags/{quote(check_dag_id(dag_id))}/details", "Method": "GET"}


def trigger_request(environment: str, dag_id: str, conf: dict[str, Any], note: str | None = None) -> dict[str, Any]:
    """POST a DAG run now (``logical_date`` null: Airflow 3's manual run) with ``conf``."""
    body: dict[str, Any] = {"logical_date": None, "conf": conf}
    if note:
        body["note"] = note[:1000]
    return {"Name": environment, "Path": f"/dags/{quote(check_dag_id(dag_id))}/dagRuns", "Method": "POST", "Body": body}


def run_status_request(environment: str, dag_id: str, run_id: str) -> dict[str, Any]:
    """GET one DAG run."""
    if not isinstance(run_id, str) or not run_id or len(run_id) > 250:
        raise RunRequestError(f"run_id must be a DAG run id, got {run_id!r}", "run_id")
    path = f"/dags/{quote(check_dag_id(dag_id))}/dagRuns/{quote(run_id, safe='')}"
    return {"Name": environment, "Path": path, "Method": "GET"}
