"""Execute an ``InvokeRestApi``-shaped request: on MWAA through boto3, locally against Airflow's REST API.

Both return ``(status code, decoded JSON body)``. Only loopback URLs are accepted for the local
transport: it stands in for MWAA's API, never for a remote server.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlparse

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
LOCAL_TIMEOUT_S = 30  # a local Airflow on SQLite answers slowly while its scheduler writes


class AirflowUnreachable(ConnectionError):
    """The local Airflow did not answer (not running, or too busy to answer in time)."""

    def __init__(self, base_url: str, exc: OSError) -> None:
        reason = getattr(exc, "reason", None) or exc
        super().__init__(
            f"local Airflow at {base_url} did not answer ({reason}); check it with `make airflow-status`, "
            "start it with `make airflow`, and retry"
        )


class Transport(Protocol):
    """Sends one InvokeRestApi-shaped request; answers (status, body)."""

    environment: str

    def send(self, request: dict[str, Any]) -> tuple[int, Any]: ...


class MwaaTransport:
    """MWAA's InvokeRestApi (the environment's execution role decides what the call may do)."""

    def __init__(self, environment: str, client: Any) -> None:
        self.environment, self.client = environment, client

    def send(self, request: dict[str, Any]) -> tuple[int, Any]:
        errors = (self.client.exceptions.RestApiClientException, self.client.exceptions.RestApiServerException)
        try:
            response = self.client.invoke_rest_api(**request)
        except errors as exc:  # Airflow answered 4xx / 5xx
            return int(exc.response.get("RestApiStatusCode", 500)), exc.response.get("RestApiResponse")
        return int(response["RestApiStatusCode"]), response.get("RestApiResponse")


class LocalAirflowTransport:
    """The same requests against a local Airflow's REST API v2, with a bearer token."""

    def __init__(self, base_url: str, token: Callable[[], str], environment: str = "local") -> None:
        host = urlparse(base_url).hostname
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the local Airflow API must be on loopback, got {base_url!r}; on AWS use MWAA")
        self.base_url, self.token, self.environment = base_url.rstrip("/"), token, environment

    def send(self, request: dict[str, Any]) -> tuple[int, Any]:
        data = json.dumps(request["Body"]).encode() if "Body" in request else None
        http = urllib.request.Request(  # noqa: S310 - loopback only (checked in __init__)
            f"{self.base_url}/api/v2{request['Path']}",
            data=data,
            method=request["Method"],
            headers={"Authorization": f"Bearer {self.token()}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(http, timeout=LOCAL_TIMEOUT_S) as response:  # noqa: S310  # nosec B310  # an http:// URL on 127.0.0.1 built here, never a user-given scheme
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                return exc.code, json.loads(body or b"null")
            except ValueError:
                return exc.code, body.decode(errors="replace")
        except OSError as exc:  # refused, reset or timed out (URLError is an OSError)
            raise AirflowUnreachable(self.base_url, exc) from exc


def local_token(base_url: str, username: str | None = None, password: str | None = None) -> Callable[[], str]:
    """A cached token getter: POST /auth/token with credentials, or GET it in local all-admins mode."""
    cache: dict[str, str] = {}

    def token() -> str:
        if "token" not in cache:
            body = json.dumps({"username": username, "password": password}).encode() if username else None
            request = urllib.request.Request(  # noqa: S310 - loopback only
                f"{base_url.rstrip('/')}/auth/token", data=body, method="POST" if body else "GET",
                headers={"Content-Type": "application/json"},
            )  # fmt: skip
            try:
                with urllib.request.urlopen(request, timeout=LOCAL_TIMEOUT_S) as response:  # noqa: S310  # nosec B310  # an http:// URL on 127.0.0.1 built here, never a user-given scheme
                    cache["token"] = json.loads(response.read())["access_token"]
            except urllib.error.HTTPError:
                raise
            except OSError as exc:
                raise AirflowUnreachable(base_url, exc) from exc
        return cache["token"]

    return token
