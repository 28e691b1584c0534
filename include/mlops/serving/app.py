"""The HTTP front of a model server or an endpoint router: a plain ASGI app (no framework on the hot path).

Routes (both speak the same contract, so a single model server also works with boto3):

- ``GET /ping`` -> 200 when the model (or at least one routed variant) is ready, else 503;
- ``POST /invocations`` -> the SageMaker inference-container contract;
- ``POST /endpoints/{name}/invocations`` -> the SageMaker Runtime ``InvokeEndpoint`` path; errors
  carry ``x-amzn-ErrorType`` and a ``{"__type", "message"}`` body so botocore raises the
  matching ``ClientError`` code (``ValidationError``, ``ModelError``, ...).

Every answer names the variant that served it in ``x-Amzn-Invoked-Production-Variant``; a
request's ``X-Amzn-SageMaker-Target-Variant`` header pins the variant, and on a multi-model endpoint
``X-Amzn-SageMaker-Target-Model`` names the model (a key under the endpoint's model prefix). Bodies above the
payload limit get 413 before they are read.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024  # an oversized body up to this is read and dropped before the 413
RUNTIME_PREFIX = "/endpoints/"
VARIANT_HEADER = "x-Amzn-Invoked-Production-Variant"
TARGET_VARIANT = b"x-amzn-sagemaker-target-variant"
INFERENCE_ID = b"x-amzn-sagemaker-inference-id"
CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"
TARGET_MODEL = b"x-amzn-sagemaker-target-model"


@dataclass
class Outcome:
    """What a backend answered for one request."""

    status: int
    body: bytes
    content_type: str
    variant: str
    error_code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    body: bytes
    content_type: str
    accept: str
    target_variant: str | None
    inference_id: str | None
    custom_attributes: str | None
    target_model: str | None = None


class Backend(Protocol):
    async def invoke(self, request: Request) -> Outcome: ...

    def healthy(self) -> bool: ...


def error_outcome(status: int, code: str, message: str, variant: str = "") -> Outcome:
    body = json.dumps({"error": code, "message": message}).encode()
    return Outcome(status, body, "application/json", variant, code)


class InferenceApp:
    """ASGI app serving ``backend`` under the container and runtime routes."""

    def __init__(
        self,
        backend: Backend,
        *,
        endpoint_name: str,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        capture: Any | None = None,
        admin: Callable[[str, str, bytes], Awaitable[tuple[int, dict[str, Any]]]] | None = None,
        on_shutdown: Callable[[], None] | None = None,
    ) -> None:
        self.backend = backend
        self.endpoint_name = endpoint_name
        self.max_payload_bytes = max_payload_bytes
        self.capture = capture
        self.admin = admin
        self.on_shutdown = on_shutdown
        self._runtime_path = f"{RUNTIME_PREFIX}{endpoint_name}/invocations"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/ping" and method in ("GET", "HEAD"):
            ok = self.backend.healthy()
            await _send(send, 200 if ok else 503, b"" if ok else b'{"error": "not ready"}', "application/json", {})
            return
        runtime = path.startswith(RUNTIME_PREFIX)
        if path == "/invocations" or (runtime and path.endswith("/invocations")):
            if method != "POST":
                await self._fail(send, runtime, error_outcome(405, "MethodNotAllowed", f"{method} {path}: use POST"))
                return
            await self._invocation(scope, receive, send, runtime)
            return
        if self.admin is not None and path.startswith("/_mlops/"):
            body = await _read_all(receive, 1 << 20)
            status, payload = await self.admin(method, path, body or b"")
            await _send(send, status, json.dumps(payload).encode(), "application/json", {})
            return
        await _send(
            send,
            404,
            json.dumps({"error": "NotFound", "message": f"no route {method} {path}"}).encode(),
            "application/json",
            {},
        )

    async def _invocation(self, scope: dict[str, Any], receive: Any, send: Any, runtime: bool) -> None:
        headers = dict(scope["headers"])
        if runtime and scope["path"] != self._runtime_path:
            name = scope["path"][len(RUNTIME_PREFIX) :].rsplit("/", 1)[0]
            await self._fail(send, runtime, error_outcome(400, "ValidationError", f"Endpoint {name} not found."))
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_payload_bytes:
            if int(declared) <= DRAIN_LIMIT_BYTES:
                await _read_all(receive, 0)  # consume it, so the client gets the 413 rather than a reset
            await self._fail(send, runtime, _too_large(int(declared), self.max_payload_bytes))
            return
        body = await _read_all(receive, self.max_payload_bytes)
        if body is None:
            await self._fail(send, runtime, _too_large(None, self.max_payload_bytes))
            return
        try:
            request = request_of(headers, body)
        except InvalidHeader as exc:
            await self._fail(send, runtime, error_outcome(400, "ValidationError", str(exc)))
            return
        if not request.content_type:
            await self._fail(
                send, runtime, error_outcome(415, "UnsupportedMediaType", "Content-Type header is required")
            )
            return
        started = time.time()
        try:
            outcome = await self.backend.invoke(request)
        except Exception as exc:  # a backend bug must never take the server down
            log.exception("invocation failed")
            outcome = error_outcome(500, "InternalFailure", f"{type(exc).__name__}: {exc}")
        if outcome.status >= 400:
            await self._fail(send, runtime, outcome)
            return
        extra = {VARIANT_HEADER: outcome.variant, **outcome.headers}
        await _send(send, outcome.status, outcome.body, outcome.content_type, extra)
        if self.capture is not None:
            self.capture.record(request, outcome, started)

    async def _fail(self, send: Any, runtime: bool, outcome: Outcome) -> None:
        headers = {VARIANT_HEADER: outcome.variant} if outcome.variant else {}
        if not runtime:
            await _send(send, outcome.status, outcome.body, outcome.content_type, headers)
            return
        message = _message(outcome)
        code, status = outcome.error_code or "ModelError", outcome.status
        payload: dict[str, Any] = {"__type": code, "message": message}
        if status >= 500 and code in ("ModelError", "InternalFailure") and outcome.variant:
            # SageMaker Runtime answers a container's 5xx with 424 ModelError carrying the original status.
            code, status = "ModelError", 424
            payload = {
                "__type": code,
                "message": f'Received server error ({outcome.status}) from primary with message "{message}"',
                "OriginalStatusCode": outcome.status,
                "OriginalMessage": message,
            }
        headers["x-amzn-ErrorType"] = code
        await _send(send, status, json.dumps(payload).encode(), "application/json", headers)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.capture is not None:
                    self.capture.close()
                if self.on_shutdown is not None:
                    self.on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


class InvalidHeader(ValueError):
    """A request header SageMaker Runtime would refuse (answered 400 ValidationError, naming the header)."""


# InvokeEndpoint's header constraints (botocore's sagemaker-runtime model): name -> (pattern, max length).
ASCII = re.compile(r"[\x00-\x7f]*")
HEADER_RULES: dict[bytes, tuple[str, re.Pattern[str], int, str]] = {
    b"content-type": ("Content-Type", ASCII, 1024, "ASCII"),
    b"accept": ("Accept", ASCII, 1024, "ASCII"),
    TARGET_VARIANT: (
        "X-Amzn-SageMaker-Target-Variant",
        re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*"),
        63,
        "a variant name: letters, digits and hyphens",
    ),
    INFERENCE_ID: ("X-Amzn-SageMaker-Inference-Id", re.compile(r"[!-~][ -~]*"), 64, "printable ASCII"),
    CUSTOM_ATTRIBUTES: ("X-Amzn-SageMaker-Custom-Attributes", ASCII, 1024, "ASCII"),
    TARGET_MODEL: ("X-Amzn-SageMaker-Target-Model", re.compile(r"[!-~][ -~]*"), 1024, "a printable ASCII model key"),
}


def header_value(headers: dict[bytes, bytes], key: bytes) -> str | None:
    """A checked header value (None when absent); raises InvalidHeader naming the header and the rule."""
    raw = headers.get(key)
    if raw is None:
        return None
    name, pattern, limit, what = HEADER_RULES[key]
    try:
        value = raw.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidHeader(f"{name} header: must be {what}; got non-ASCII bytes") from None
    if len(value) > limit or not pattern.fullmatch(value):
        raise InvalidHeader(f"{name} header: must be {what}, at most {limit} characters; got {value[:80]!r}")
    return value


def request_of(headers: dict[bytes, bytes], body: bytes) -> Request:
    """The invocation's Request from its raw headers (checked as SageMaker Runtime checks them)."""
    return Request(
        body=body,
        content_type=header_value(headers, b"content-type") or "",
        accept=header_value(headers, b"accept") or "",
        target_variant=header_value(headers, TARGET_VARIANT),
        inference_id=header_value(headers, INFERENCE_ID),
        custom_attributes=header_value(headers, CUSTOM_ATTRIBUTES),
        target_model=header_value(headers, TARGET_MODEL),
    )


def _message(outcome: Outcome) -> str:
    try:
        return str(json.loads(outcome.body).get("message") or outcome.body.decode())
    except (ValueError, AttributeError, UnicodeDecodeError):
        return outcome.body.decode("utf-8", "replace")


def _too_large(size: int | None, limit: int) -> Outcome:
    got = f"{size} bytes" if size is not None else "more than that"
    return error_outcome(413, "ValidationError", f"body: payload is {got}; the limit is {limit} bytes (6 MiB)")


async def _read_all(receive: Any, limit: int) -> bytes | None:
    """The request body, or None when it exceeds ``limit`` bytes (the rest is read and dropped)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            elif size > DRAIN_LIMIT_BYTES:
                return None
        if not message.get("more_body"):
            if size > limit:
                return None
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _send(send: Any, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
    raw = [(b"content-type", content_type.encode("latin-1")), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"x-amzn-requestid", uuid.uuid4().hex.encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
