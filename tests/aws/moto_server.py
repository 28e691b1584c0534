"""A moto server on loopback for wiring tests, and the few helpers the tests need around it.

:class:`MotoServer` starts ``moto.server.ThreadedMotoServer`` on ``127.0.0.1`` (a free port),
gives the environment that points Airflow's ``aws_default`` connection and plain boto3/pyarrow at
it, and drives moto's own control API (``/moto-api/...``: state transitions, canned SageMaker
Runtime answers). Nothing here talks to anything but 127.0.0.1.

:func:`stub_operations` patches botocore's ``BaseClient._make_api_call`` for named operations only;
every other call goes to moto unchanged. While it is active it also records every call (sync and
aiobotocore) with who makes it (:class:`RecordedCall`): ``task`` for the code under test (the Airflow
tasks, the MWAA execution role on AWS), ``harness`` for the test's own clients (:meth:`MotoServer.client`)
and for whatever a stub handler does besides the stubbed call itself. ``tests/aws/iam_coverage.py``
checks the recorded ``task`` calls against the IAM policies in ``infra/cfn``.
"""

from __future__ import annotations

import contextvars
import copy
import json
import socket
import urllib.request
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

ACCESS_KEY = "testing"
SECRET_KEY = "testing"  # moto accepts any key pair

#: Operations whose response the recording keeps (later calls name their resource only by its id).
RESPONSE_KEPT = {"StartQueryExecution": ("QueryExecutionId",)}


@dataclass(frozen=True)
class RecordedCall:
    """One AWS API call the code under test made (or the harness, ``principal == "harness"``)."""

    service: str  # botocore's service name: s3, sagemaker, sagemaker-runtime, glue, ...
    operation: str  # the API operation: PutObject, CreateTrainingJob, ...
    params: dict[str, Any]
    principal: str  # "task" (the MWAA execution role on AWS) | "harness" (the test itself)
    region: str
    response: dict[str, Any] = field(default_factory=dict)


#: Every MotoServer's recorded calls, in order, kept after the server stops (tests/aws/iam_coverage.py reads them).
RECORDINGS: list[list[RecordedCall]] = []
_HARNESS_CLIENTS: weakref.WeakSet[Any] = weakref.WeakSet()
_IN_STUB_HANDLER = contextvars.ContextVar("in_stub_handler", default=False)
_ACTIVE: list[MotoServer] = []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    """moto in a thread on 127.0.0.1; use as a context manager (always stopped)."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self.calls: list[RecordedCall] = []

    def __enter__(self) -> MotoServer:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        if not _ACTIVE:
            # moto's backends live in the process: start from an empty account, whatever an earlier
            # test of this process left there (model versions, buckets...).
            self._post("/moto-api/reset", {})
        RECORDINGS.append(self.calls)
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if self._server is not None:
            self._server.stop()
            self._server = None

    def environment(self) -> dict[str, str]:
        """Env for Airflow's aws_default connection and for code using boto3/pyarrow/s3fs directly."""
        connection = {
            "conn_type": "aws",
            "login": ACCESS_KEY,
            "password": SECRET_KEY,
            "extra": {"endpoint_url": self.url, "region_name": self.region},
        }
        return {
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, service: str) -> Any:
        import boto3

        client = boto3.client(
            service,
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        _HARNESS_CLIENTS.add(client)  # its calls are the test's own, never the code under test's
        return client

    def _post(self, path: str, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.url}{path}", data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
            response.read()

    def immediate(self, model_name: str) -> None:
        """Make a moto resource reach its final state on the first describe (moto's state manager)."""
        self._post("/moto-api/state-manager/set-transition",
                   {"model_name": model_name, "transition": {"progression": "immediate"}})  # fmt: skip

    def sagemaker_invocation_results(self, bodies: list[dict[str, Any]], variant: str) -> None:
        """Queue the answers moto's InvokeEndpoint returns (moto's own configuration API)."""
        results = [
            {"Body": json.dumps(body), "ContentType": "application/json", "InvokedProductionVariant": variant,
             "CustomAttributes": ""}
            for body in bodies
        ]  # fmt: skip
        self._post("/moto-api/static/sagemaker/endpoint-results",
                   {"account_id": "123456789012", "region": self.region, "results": results})  # fmt: skip


@contextmanager
def stub_operations(handlers: dict[str, Callable[[Any, Callable[[], Any], dict[str, Any]], Any]]) -> Iterator[None]:
    """Patch botocore for the named operations only: ``handler(client, call_moto, params) -> response``.

    ``call_moto()`` makes the real call (to moto), so a handler may pass through and add a side effect.
    """
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def patched(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        handler = handlers.get(operation_name)
        call = _record(self, operation_name, api_params)
        if handler is None:
            return _keep_response(call, original(self, operation_name, api_params))
        token = _IN_STUB_HANDLER.set(True)
        try:
            return _keep_response(call, handler(self, lambda: original(self, operation_name, api_params), api_params))
        finally:
            _IN_STUB_HANDLER.reset(token)

    with mock.patch.object(BaseClient, "_make_api_call", patched), _record_async_calls():
        yield


def _record(client: Any, operation: str, params: dict[str, Any]) -> RecordedCall | None:
    """Append the call to the active server's recording before it is made (a failed call needs authorization too)."""
    if not _ACTIVE:
        return None
    call = RecordedCall(
        service=client.meta.service_model.service_name,
        operation=operation,
        params=_plain(params),
        principal="harness" if client in _HARNESS_CLIENTS or _IN_STUB_HANDLER.get() else "task",
        region=client.meta.region_name,
    )
    _ACTIVE[-1].calls.append(call)
    return call


def _keep_response(call: RecordedCall | None, response: Any) -> Any:
    """Keep the response fields later calls refer to (RESPONSE_KEPT); return the response unchanged."""
    if call is not None and isinstance(response, dict):
        call.response.update({k: response[k] for k in RESPONSE_KEPT.get(call.operation, ()) if k in response})
    return response


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    """The call's parameters without payloads (bodies, file objects): what authorization depends on."""
    return copy.deepcopy({k: v for k, v in params.items() if k not in ("Body", "Fileobj")})


@contextmanager
def _record_async_calls() -> Iterator[None]:
    """Record aiobotocore calls too (the provider's deferrable triggers poll through it)."""
    try:
        from aiobotocore.client import AioBaseClient
    except ImportError:  # an environment without deferrable operators
        yield
        return
    original = AioBaseClient._make_api_call

    async def patched(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        call = _record(self, operation_name, api_params)
        return _keep_response(call, await original(self, operation_name, api_params))

    with mock.patch.object(AioBaseClient, "_make_api_call", patched):
        yield


# ---- S3 <-> a local mirror of the buckets, so local stand-ins can execute a request's work ----------


class S3Mirror:
    """``s3://bucket/key`` <-> ``<root>/bucket/key``: download a request's inputs, run the local
    stand-in on the rewritten request, upload its outputs back to moto's S3."""

    def __init__(self, s3: Any, root: Path) -> None:
        self.s3, self.root = s3, root

    def local_uri(self, uri: str) -> str:
        return uri.replace("s3://", f"file://{self.root}/", 1)

    def rewrite(self, request: dict[str, Any]) -> dict[str, Any]:
        return json.loads(json.dumps(request).replace("s3://", f"file://{self.root}/"))

    def download(self, uri: str) -> None:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                target = self.root / bucket / item["Key"]
                target.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(bucket, item["Key"], str(target))

    def upload(self, uri: str) -> list[str]:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        source = self.root / bucket / prefix
        files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        keys = []
        for path in files:
            key = path.relative_to(self.root / bucket).as_posix()
            if any(part.startswith(".") for part in key.split("/")):
                continue
            self.s3.upload_file(str(path), bucket, key)
            keys.append(key)
        return keys


def upload_tree(s3: Any, folder: Path, bucket: str, prefix: str) -> int:
    """Upload every file under ``folder`` to ``s3://bucket/prefix/<relative path>``."""
    count = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        s3.upload_file(str(path), bucket, f"{prefix.rstrip('/')}/{path.relative_to(folder).as_posix()}")
        count += 1
    return count
