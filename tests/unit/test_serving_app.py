"""The ASGI front in-process: routes, payload limit, content-type rules, error shapes per route."""

from __future__ import annotations

import asyncio
import json

import pytest

from mlops.serving.app import InferenceApp, Outcome, Request, error_outcome


class EchoBackend:
    def __init__(self) -> None:
        self.seen: list[Request] = []

    def healthy(self) -> bool:
        return True

    async def invoke(self, request: Request) -> Outcome:
        self.seen.append(request)
        if request.body == b"boom":
            raise RuntimeError("backend bug")
        if request.body == b"model-error":
            return error_outcome(500, "ModelError", "model exploded", "V1")
        return Outcome(200, request.body, "application/json", "V1")


def call(app, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None, chunk: int = 0):
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk and body else [body]
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "method": method, "path": path, "headers": raw_headers}
    asyncio.run(app(scope, receive, send))
    start, payload = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, payload


def _app(limit: int = 1024) -> tuple[InferenceApp, EchoBackend]:
    backend = EchoBackend()
    return InferenceApp(backend, endpoint_name="ep", max_payload_bytes=limit), backend


JSON = {"Content-Type": "application/json"}


def test_ping_and_unknown_route():
    app, _ = _app()
    assert call(app, "GET", "/ping")[0] == 200
    assert call(app, "GET", "/nope")[0] == 404
    assert call(app, "GET", "/invocations")[0] == 405


def test_invocation_passes_headers_and_names_the_variant():
    app, backend = _app()
    headers = {
        **JSON,
        "Accept": "text/csv",
        "X-Amzn-SageMaker-Target-Variant": "V1",
        "X-Amzn-SageMaker-Inference-Id": "id-1",
        "X-Amzn-SageMaker-Custom-Attributes": "a=b",
    }
    status, answer, body = call(app, "POST", "/endpoints/ep/invocations", b"{}", headers)
    assert status == 200 and body == b"{}" and answer["x-amzn-invoked-production-variant"] == "V1"
    request = backend.seen[-1]
    assert (request.accept, request.target_variant, request.inference_id, request.custom_attributes) == (
        "text/csv",
        "V1",
        "id-1",
        "a=b",
    )


def test_payload_limit_by_header_and_by_streamed_size():
    app, backend = _app(limit=10)
    status, answer, body = call(app, "POST", "/endpoints/ep/invocations", b"x" * 11, {**JSON, "Content-Length": "11"})
    assert status == 413 and answer["x-amzn-errortype"] == "ValidationError"
    status, _, body = call(app, "POST", "/invocations", b"x" * 25, JSON, chunk=4)  # chunked, no length
    assert status == 413 and "limit is 10 bytes" in json.loads(body)["message"]
    assert call(app, "POST", "/invocations", b"x" * 10, JSON)[0] == 200
    assert len(backend.seen) == 1


def test_missing_content_type_is_415():
    app, _ = _app()
    assert call(app, "POST", "/invocations", b"{}")[0] == 415


def test_wrong_endpoint_name_on_the_runtime_path():
    app, _ = _app()
    status, _, body = call(app, "POST", "/endpoints/other/invocations", b"{}", JSON)
    assert status == 400 and "Endpoint other not found" in json.loads(body)["message"]


def test_model_error_shapes():
    app, _ = _app()
    status, _, body = call(app, "POST", "/invocations", b"model-error", JSON)
    assert status == 500 and json.loads(body) == {"error": "ModelError", "message": "model exploded"}
    status, answer, body = call(app, "POST", "/endpoints/ep/invocations", b"model-error", JSON)
    assert status == 424 and answer["x-amzn-errortype"] == "ModelError"
    assert json.loads(body)["OriginalStatusCode"] == 500


def test_a_backend_bug_is_an_answer_not_a_crash():
    app, _ = _app()
    status, _, body = call(app, "POST", "/invocations", b"boom", JSON)
    assert status == 500 and "backend bug" in json.loads(body)["message"]
    assert call(app, "POST", "/invocations", b"{}", JSON)[0] == 200


def _raw_call(app, path: str, headers: list[tuple[bytes, bytes]]):
    """One POST with raw header bytes (as a hostile client sends them), through the ASGI app."""
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app({"type": "http", "method": "POST", "path": path, "headers": headers}, receive, send))
    return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:]))


@pytest.mark.parametrize(
    ("header", "value", "named"),
    [
        (b"x-amzn-sagemaker-target-variant", b"V\xff1", "X-Amzn-SageMaker-Target-Variant"),
        (b"x-amzn-sagemaker-target-variant", b"V 1/..", "X-Amzn-SageMaker-Target-Variant"),
        (b"x-amzn-sagemaker-target-variant", b"V" * 64, "X-Amzn-SageMaker-Target-Variant"),
        (b"x-amzn-sagemaker-inference-id", b"id-\xc3\x28", "X-Amzn-SageMaker-Inference-Id"),
        (b"x-amzn-sagemaker-inference-id", b" leading-space", "X-Amzn-SageMaker-Inference-Id"),
        (b"x-amzn-sagemaker-inference-id", b"i" * 65, "X-Amzn-SageMaker-Inference-Id"),
        (b"x-amzn-sagemaker-custom-attributes", b"caf\xe9", "X-Amzn-SageMaker-Custom-Attributes"),
        (b"content-type", b"application/json\xff", "Content-Type"),
        (b"accept", b"text/\x80csv", "Accept"),
    ],
)
def test_bad_headers_are_400_naming_the_header_on_both_routes(header, value, named):
    """Issue 13.7: a non-UTF-8 / malformed SageMaker header was a 500; SageMaker Runtime refuses it with 400."""
    app, backend = _app()
    headers = [(b"content-type", b"application/json"), (header, value)]
    for path in ("/invocations", "/endpoints/ep/invocations"):
        status, body = _raw_call(app, path, headers)
        assert status == 400, body
        assert named in body["message"]
        assert body.get("error", body.get("__type")) == "ValidationError"
    assert backend.seen == []  # refused before the model is asked
