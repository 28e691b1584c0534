"""One model server: the inference container of one production variant.

    python -m mlops.serving.server --model-data file:///…/model.tar.gz --model-dir DIR \
        --port 8080 [--endpoint-name NAME] [--variant-name AllTraffic]
    python -m mlops.serving.server --multi-model --model-data file:///…/prefix/ --model-dir DIR \
        --port 8080 [--max-models 8] [--max-bytes 536870912]

With ``--multi-model`` (a ``Mode: MultiModel`` container) ``--model-data`` is a prefix and target
models load on their first request (:mod:`mlops.serving.multimodel`); the cache bounds default to the
container environment's ``MLOPS_MME_MAX_MODELS`` / ``MLOPS_MME_MAX_BYTES``.

It extracts the package, imports ``code/inference.py`` (see :mod:`mlops.serving.handler`),
calls ``model_fn`` and only then listens on 127.0.0.1, so ``/ping`` answering 200 means the
model is loaded. A package that cannot load exits with status 2 and a message naming the
cause. Handler exceptions become 4xx/5xx answers (:mod:`mlops.serving.errors`); the process
keeps serving.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from pathlib import Path

from mlops.serving.app import MAX_PAYLOAD_BYTES, InferenceApp, Outcome, Request, error_outcome
from mlops.serving.errors import ModelPackageError, status_for
from mlops.serving.handler import DEFAULT_PROGRAM, ModelHandler, extract_model

log = logging.getLogger("mlops.serving.server")
LOOPBACK = "127.0.0.1"


class LocalBackend:
    """Runs the handler chain in-process (on the event loop: ONNX inference is sub-millisecond)."""

    def __init__(self, handler: ModelHandler, variant: str, endpoint_name: str = "local") -> None:
        self.handler = handler
        self.variant = variant
        self.endpoint_name = endpoint_name

    def healthy(self) -> bool:
        return True

    async def invoke(self, request: Request) -> Outcome:
        if request.target_model is not None:
            return error_outcome(
                400,
                "ValidationError",
                f"Endpoint {self.endpoint_name} is not a multi-model endpoint and does not support target model "
                f"header (got {request.target_model}); deploy it with serving.mode: multi_model",
                self.variant,
            )
        if request.target_variant and request.target_variant != self.variant:
            return error_outcome(
                400,
                "ValidationError",
                f"variant {request.target_variant} not found; this endpoint serves {self.variant}",
                self.variant,
            )
        try:
            body, content_type = self.handler.invoke(request.body, request.content_type, request.accept)
        except Exception as exc:
            status, code = status_for(exc)
            if status >= 500:
                log.exception("model error")
            return error_outcome(status, code, str(exc) or type(exc).__name__, self.variant)
        return Outcome(200, body, content_type, self.variant)


def build_app(
    model_data: str,
    model_dir: Path,
    *,
    endpoint_name: str = "local",
    variant_name: str = "AllTraffic",
    program: str = DEFAULT_PROGRAM,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    capture: object | None = None,
) -> InferenceApp:
    """Load the package and return the ASGI app (raises ModelPackageError)."""
    directory = extract_model(model_data, model_dir)
    handler = ModelHandler.load(directory, program=program)
    return InferenceApp(
        LocalBackend(handler, variant_name, endpoint_name),
        endpoint_name=endpoint_name,
        max_payload_bytes=max_payload_bytes,
        capture=capture,
    )


def build_multi_model_app(
    prefix: str,
    work_dir: Path,
    *,
    endpoint_name: str = "local",
    variant_name: str = "AllTraffic",
    program: str = DEFAULT_PROGRAM,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    max_models: int = 8,
    max_bytes: int = 512 * 1024 * 1024,
) -> InferenceApp:
    """The ASGI app of a multi-model container; no model loads before its first request."""
    from mlops.serving.multimodel import MultiModelBackend

    backend = MultiModelBackend(
        prefix, work_dir, variant=variant_name, max_models=max_models, max_bytes=max_bytes, program=program
    )
    return InferenceApp(backend, endpoint_name=endpoint_name, max_payload_bytes=max_payload_bytes)


def serve(app: object, port: int, host: str = LOOPBACK) -> None:
    """Run ``app`` with uvicorn (uvloop + httptools, no access log) until SIGTERM; drains in-flight requests."""
    import uvicorn

    if host != LOOPBACK:
        raise ValueError(f"servers bind {LOOPBACK} only, not {host}")
    # Everything loaded so far (framework modules, the model) lives for the whole process: move it out of the
    # cyclic GC's reach so a full collection never scans it in the middle of a request.
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=75,
        timeout_graceful_shutdown=30,
        backlog=2048,
    )
    uvicorn.Server(config).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops.serving.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-data", required=True, help="ModelDataUrl: file://, s3:// or a path (tar.gz or dir)")
    parser.add_argument("--model-dir", required=True, type=Path, help="where the package is extracted")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")))
    parser.add_argument("--endpoint-name", default="local")
    parser.add_argument("--variant-name", default="AllTraffic")
    parser.add_argument("--program", default=os.environ.get("SAGEMAKER_PROGRAM", DEFAULT_PROGRAM))
    parser.add_argument("--max-payload-bytes", type=int, default=MAX_PAYLOAD_BYTES)
    parser.add_argument("--multi-model", action="store_true", help="a Mode: MultiModel container over a prefix")
    parser.add_argument("--max-models", type=int, default=int(os.environ.get("MLOPS_MME_MAX_MODELS", "8")))
    parser.add_argument("--max-bytes", type=int, default=int(os.environ.get("MLOPS_MME_MAX_BYTES", str(512 << 20))))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.multi_model:
        app = build_multi_model_app(
            args.model_data,
            args.model_dir,
            endpoint_name=args.endpoint_name,
            variant_name=args.variant_name,
            program=args.program,
            max_payload_bytes=args.max_payload_bytes,
            max_models=args.max_models,
            max_bytes=args.max_bytes,
        )
        log.info("serving target models under %s on http://%s:%d", args.model_data, LOOPBACK, args.port)
        serve(app, args.port)
        return 0
    try:
        app = build_app(
            args.model_data,
            args.model_dir,
            endpoint_name=args.endpoint_name,
            variant_name=args.variant_name,
            program=args.program,
            max_payload_bytes=args.max_payload_bytes,
        )
    except ModelPackageError as exc:
        print(f"model server cannot start: {exc}", file=sys.stderr, flush=True)
        return 2
    log.info("serving %s (variant %s) on http://%s:%d", args.model_data, args.variant_name, LOOPBACK, args.port)
    serve(app, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
