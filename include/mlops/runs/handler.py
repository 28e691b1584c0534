"""The run API's Lambda handler (API Gateway, IAM auth): start a DAG run, read its status.

    POST /runs                      {"dag_id": "mlops_train", "conf": {...}, "note": "..."}
                                    -> 200 {"dag_id", "run_id", "state"} | 400 naming the field
    GET  /runs/{dag_id}/{run_id}    -> 200 {"dag_id", "dag_run_id", "state", ...}

On AWS the function's environment names the MWAA environment (``MWAA_ENVIRONMENT_NAME``) and
calls MWAA's InvokeRestApi with its own role; locally, ``AIRFLOW_API_URL`` points the same code at
the local Airflow. The body is validated against the DAG's Params before anything is triggered.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from mlops.runs.requests import RunRequestError
from mlops.runs.service import AirflowApiError, RunsService
from mlops.runs.transport import LocalAirflowTransport, MwaaTransport, Transport, local_token

MAX_BODY_BYTES = 64 * 1024


def transport_from_environment(environ: dict[str, str] | None = None) -> Transport:
    """MWAA when ``MWAA_ENVIRONMENT_NAME`` is set, else the local Airflow at ``AIRFLOW_API_URL``."""
    env = os.environ if environ is None else environ
    if env.get("MWAA_ENVIRONMENT_NAME"):
        import boto3  # in the Lambda runtime

        return MwaaTransport(env["MWAA_ENVIRONMENT_NAME"], boto3.client("mwaa"))
    url = env.get("AIRFLOW_API_URL", "http://127.0.0.1:8080")
    return LocalAirflowTransport(
        url, local_token(url, env.get("AIRFLOW_API_USERNAME"), env.get("AIRFLOW_API_PASSWORD"))
    )


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def _request_body(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("body") or ""
    data = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    if len(data) > MAX_BODY_BYTES:
        raise RunRequestError(f"the body is {len(data)} bytes; the limit is {MAX_BODY_BYTES}", "body")
    try:
        body = json.loads(data or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunRequestError(f"the body is not JSON: {exc}", "body") from None
    if not isinstance(body, dict):
        raise RunRequestError("the body must be a JSON object with dag_id and conf", "body")
    unknown = sorted(set(body) - {"dag_id", "conf", "note"})
    if unknown:
        raise RunRequestError(f"unknown field(s) {unknown}; the body has dag_id, conf and note", unknown[0])
    if body.get("note") is not None and not isinstance(body["note"], str):
        raise RunRequestError("note must be a string", "note")
    return body


def route(event: dict[str, Any], service: RunsService) -> dict[str, Any]:
    """Dispatch one API Gateway proxy event (REST API v1 or HTTP API v2 shape)."""
    method = event.get("httpMethod") or event.get("requestContext", {}).get("http", {}).get("method", "")
    path = (event.get("path") or event.get("rawPath") or "").rstrip("/")
    parts = [part for part in path.split("/") if part]
    if method == "POST" and parts == ["runs"]:
        body = _request_body(event)
        return _response(200, service.start(body.get("dag_id"), body.get("conf", {}), body.get("note")))
    if method == "GET" and len(parts) == 3 and parts[0] == "runs":
        return _response(200, service.status(parts[1], parts[2]))
    return _response(404, {"message": f"no route {method} {path}; use POST /runs or GET /runs/{{dag_id}}/{{run_id}}"})


def handler(event: dict[str, Any], context: Any = None, service: RunsService | None = None) -> dict[str, Any]:
    """The Lambda entry point: 400 naming the field for a bad request, Airflow's status for its refusals."""
    try:
        return route(event, service or RunsService(transport_from_environment()))
    except RunRequestError as exc:
        return _response(400, {"message": str(exc), "field": exc.field})
    except AirflowApiError as exc:
        return _response(502 if exc.status >= 500 else exc.status, {"message": str(exc)})
