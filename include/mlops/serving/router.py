"""The endpoint router: the endpoint's stable address, in front of its model servers.

    python -m mlops.serving.router --state-file <MLOPS_HOME>/serving/endpoints/<name>.routes.json

It plays SageMaker Runtime's part: it answers ``/endpoints/<name>/invocations`` (and the
container routes), picks a production variant by weight or by the request's
``X-Amzn-SageMaker-Target-Variant`` header (passing ``X-Amzn-SageMaker-Target-Model`` on to a
multi-model container), forwards to that variant's model server over a
keep-alive pool, captures sampled traffic, and counts requests and 5xx errors per variant and
fleet so the endpoint manager can watch a canary.

The routing state file holds ``{"endpoint_name", "port", "max_payload_bytes", "capture",
"routes": [{"variant", "fleet", "port", "weight"}]}``. The manager rewrites it and calls
``POST /_mlops/reload``; the swap is one assignment on the event loop, so every request sees
either the old or the new routes, and requests in flight finish on the fleet they started on.
"""

from __future__ import annotations

import argparse
import bisect
import json
import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

from mlops.serving.app import InferenceApp, Outcome, Request, error_outcome
from mlops.serving.capture import CaptureSettings, CaptureWriter
from mlops.serving.upstream import UpstreamPool

log = logging.getLogger("mlops.serving.router")
FORWARDED = ("content-type", "x-amzn-sagemaker-custom-attributes")


@dataclass(frozen=True)
class Route:
    variant: str
    fleet: str
    port: int
    weight: float

    @property
    def key(self) -> str:
        return f"{self.variant}/{self.fleet}"


class RoutingTable:
    """Weighted choice over routes; immutable, replaced as a whole on reload."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = [r for r in routes if r.weight > 0]
        self._cumulative = list(accumulate(r.weight for r in self.routes))
        self.variants = sorted({r.variant for r in routes})
        self.by_variant = {v: RoutingTable._sub([r for r in routes if r.variant == v]) for v in self.variants}

    @staticmethod
    def _sub(routes: list[Route]) -> tuple[list[Route], list[float]]:
        live = [r for r in routes if r.weight > 0] or routes  # a pinned variant at weight 0 still answers
        return live, list(accumulate(r.weight if r.weight > 0 else 1.0 for r in live))

    def choose(self, target_variant: str | None, rng: random.Random) -> Route | None:
        if target_variant is not None:
            if target_variant not in self.by_variant:
                return None
            routes, cumulative = self.by_variant[target_variant]
        else:
            routes, cumulative = self.routes, self._cumulative
        if not routes:
            return None
        if len(routes) == 1:
            return routes[0]
        return routes[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]


class RouterBackend:
    """Forwards each invocation to a model server chosen from the routing table."""

    def __init__(self, state_file: Path, seed: int | None = None) -> None:
        self.state_file = state_file
        self.rng = random.Random(seed)  # noqa: S311 - traffic split, not security
        self.pools: dict[int, UpstreamPool] = {}
        self.stats: dict[str, dict[str, int]] = defaultdict(
            lambda: {"requests": 0, "errors": 0, "client_errors": 0, "inflight": 0}
        )
        self.capture: CaptureWriter | None = None
        self.state: dict[str, Any] = {}
        self.table = RoutingTable([])
        self.reload()

    def reload(self) -> dict[str, Any]:
        """Read the state file and swap routes (and capture settings) in one step."""
        state = json.loads(self.state_file.read_text())
        table = RoutingTable([Route(**r) for r in state["routes"]])
        ports = {r.port for routes, _ in table.by_variant.values() for r in routes}
        for port in ports:
            if port not in self.pools or self.pools[port].closed:
                self.pools[port] = UpstreamPool(port)
        settings = CaptureSettings.from_request(state.get("capture"))
        if settings != (self.capture.settings if self.capture else None):
            old, self.capture = self.capture, (CaptureWriter(state["endpoint_name"], settings) if settings else None)
            if old is not None:
                old.close()
        self.table, self.state = table, state
        for port in [p for p in self.pools if p not in ports]:
            self.pools.pop(port).close()  # idle connections only; in-flight requests keep their own
        return self.describe()

    def healthy(self) -> bool:
        return bool(self.table.routes)

    def describe(self) -> dict[str, Any]:
        return {"routes": [r.__dict__ for r in self.table.routes], "stats": dict(self.stats)}

    async def invoke(self, request: Request) -> Outcome:
        route = self.table.choose(request.target_variant, self.rng)
        if route is None:
            if request.target_variant is not None:
                return error_outcome(
                    400,
                    "ValidationError",
                    f"variant {request.target_variant} not found; the "
                    f"endpoint has {', '.join(self.table.variants) or 'no variants'}",
                )
            return error_outcome(503, "ServiceUnavailable", "the endpoint has no routable variant")
        stats = self.stats[route.key]
        stats["requests"] += 1
        stats["inflight"] += 1
        try:
            headers = {"content-type": request.content_type}
            if request.accept:
                headers["accept"] = request.accept
            if request.custom_attributes:
                headers["x-amzn-sagemaker-custom-attributes"] = request.custom_attributes
            if request.target_model is not None:
                headers["x-amzn-sagemaker-target-model"] = request.target_model
            pool = self.pools.get(route.port) or UpstreamPool(route.port)
            try:
                status, answer_headers, body = await pool.request("/invocations", request.body, headers)
            except Exception as exc:  # connection refused/reset, timeout: a 5xx for the alarm
                stats["errors"] += 1
                log.warning("variant %s (fleet %s, port %d) failed: %s", route.variant, route.fleet, route.port, exc)
                return error_outcome(
                    500, "ModelError", f"model server of variant {route.variant} failed: {exc}", route.variant
                )
        finally:
            stats["inflight"] -= 1
        content_type = answer_headers.get("content-type", "application/octet-stream")
        if status >= 500:
            stats["errors"] += 1
        elif status >= 400:
            stats["client_errors"] += 1
        if status >= 400:
            code = "ModelError" if status >= 500 else "ValidationError"
            try:
                code = json.loads(body).get("error") or code
            except (ValueError, AttributeError):
                pass
            return Outcome(status, body, content_type, route.variant, code)
        extra = {}
        if "x-amzn-sagemaker-custom-attributes" in answer_headers:
            extra["X-Amzn-SageMaker-Custom-Attributes"] = answer_headers["x-amzn-sagemaker-custom-attributes"]
        return Outcome(status, body, content_type, route.variant, headers=extra)

    def close(self) -> None:
        if self.capture is not None:
            self.capture.close()
        for pool in self.pools.values():
            pool.close()


class _CaptureProxy:
    """Lets the app capture through whichever CaptureWriter the backend holds after reloads."""

    def __init__(self, backend: RouterBackend) -> None:
        self.backend = backend

    def record(self, request: Request, outcome: Outcome, started: float) -> None:
        if self.backend.capture is not None:
            self.backend.capture.record(request, outcome, started)

    def close(self) -> None:
        self.backend.close()


def build_app(state_file: Path, seed: int | None = None) -> InferenceApp:
    backend = RouterBackend(state_file, seed)

    async def admin(method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if path == "/_mlops/state" and method == "GET":
            return 200, backend.describe()
        if path == "/_mlops/reload" and method == "POST":
            try:
                return 200, backend.reload()
            except (OSError, ValueError, KeyError, TypeError) as exc:
                return 400, {"error": "BadState", "message": f"{type(exc).__name__}: {exc}"}
        return 404, {"error": "NotFound", "message": f"no admin route {method} {path}"}

    return InferenceApp(
        backend,
        endpoint_name=backend.state["endpoint_name"],
        max_payload_bytes=int(backend.state.get("max_payload_bytes", 6 * 1024 * 1024)),
        capture=_CaptureProxy(backend),
        admin=admin,
    )


def main(argv: list[str] | None = None) -> int:
    from mlops.serving.server import serve

    parser = argparse.ArgumentParser(prog="python -m mlops.serving.router", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-file", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = build_app(args.state_file)
    port = int(json.loads(args.state_file.read_text())["port"])
    log.info("endpoint %s routing on http://127.0.0.1:%d", app.endpoint_name, port)
    serve(app, port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
