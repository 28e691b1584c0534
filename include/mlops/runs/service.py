"""Start and inspect DAG runs through a transport, validating the body against the DAG's Params first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops.runs import requests
from mlops.runs.params import param_schemas, validate_conf
from mlops.runs.requests import RunRequestError
from mlops.runs.transport import Transport


class AirflowApiError(RuntimeError):
    """Airflow refused or failed a request; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class RunsService:
    """``start`` / ``status`` of DAG runs on one Airflow (MWAA or local)."""

    transport: Transport

    def _call(self, request: dict[str, Any], what: str) -> Any:
        status, body = self.transport.send(request)
        if status == 404:
            raise RunRequestError(f"{what}: not found ({_detail(body)})", "dag_id")
        if status >= 400:
            raise AirflowApiError(f"{what}: Airflow answered {status}: {_detail(body)}", status)
        return body

    def param_schemas(self, dag_id: str) -> dict[str, dict[str, Any]]:
        """``dag_id``'s Params with their JSON schemas, as Airflow serves them."""
        details = self._call(requests.dag_details_request(self.transport.environment, dag_id), f"DAG {dag_id}")
        return param_schemas(details)

    def start(self, dag_id: str, conf: Any, note: str | None = None) -> dict[str, Any]:
        """Validate ``conf`` against ``dag_id``'s Params, then trigger; returns run_id and state."""
        validate_conf(conf, self.param_schemas(dag_id), dag_id)
        request = requests.trigger_request(self.transport.environment, dag_id, conf, note)
        run = self._call(request, f"triggering {dag_id}")
        return {"dag_id": dag_id, "run_id": run["dag_run_id"], "state": run.get("state")}

    def status(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The run's state and times."""
        run = self._call(requests.run_status_request(self.transport.environment, dag_id, run_id), f"run {run_id}")
        keys = ("dag_id", "dag_run_id", "state", "start_date", "end_date", "conf")
        return {key: run.get(key) for key in keys}


def _detail(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("detail") or body)[:500]
    return str(body)[:500]
