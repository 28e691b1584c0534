"""Processes of a local endpoint: model-server containers and the router, and their health.

Every process is started through :mod:`mlops.processes` (own process group, recorded under
``<MLOPS_HOME>/run``), so ``make stop`` stops endpoints with everything else. Ports come from
``serving.port_range`` on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import mlops
from mlops import processes
from mlops.runtimes import runtime_python
from mlops.serving.errors import DeploymentError

LOOPBACK = processes.LOOPBACK
PACKAGE_ROOT = str(Path(mlops.__file__).resolve().parents[1])  # the folder that holds `mlops`


def free_port(port_range: tuple[int, int], taken: Iterable[int] = ()) -> int:
    """The first port of the range that nothing listens on and no endpoint has claimed."""
    claimed = set(taken)
    for port in range(port_range[0], port_range[1] + 1):
        if port not in claimed and processes.bindable(port, LOOPBACK):
            return port
    raise DeploymentError(
        f"no free port in serving.port_range {port_range[0]}-{port_range[1]}; widen it or "
        "delete endpoints (`make stop` stops them all)"
    )


def process_name(endpoint: str, role: str) -> str:
    """Process record name: ``endpoint-<name>`` for the router, ``endpoint-<name>-<variant>-<fleet>`` else."""
    return f"endpoint-{endpoint}" if role == "router" else f"endpoint-{endpoint}-{role}"


def _feature_store_environment() -> dict[str, str]:
    from mlops.config import load_config
    from mlops.feature_store import endpoint_environment

    return endpoint_environment(load_config())


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT, *filter(None, [env.get("PYTHONPATH")])])
    for name, value in _feature_store_environment().items():  # raw orders: the local online store
        env.setdefault(name, value)
    env.setdefault("MLOPS_ORT_THREADS", "1")  # one intra-op thread per request: lowest latency on few cores
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def start_container(
    *,
    name: str,
    model_data_url: str,
    model_dir: Path,
    port: int,
    endpoint: str,
    variant: str,
    environment: dict[str, str] | None,
    max_payload_bytes: int,
    multi_model: bool = False,
) -> dict[str, Any]:
    """Start one model server (a ``Mode: MultiModel`` container when ``multi_model``); returns its record."""
    command = [
        runtime_python("sagemaker"),
        "-m",
        "mlops.serving.server",
        "--model-data",
        model_data_url,
        "--model-dir",
        str(model_dir),
        "--port",
        str(port),
        "--endpoint-name",
        endpoint,
        "--variant-name",
        variant,
        "--max-payload-bytes",
        str(max_payload_bytes),
        *(["--multi-model"] if multi_model else []),
    ]
    processes.stop(name, timeout=5)  # a stale record of a dead process with the same name
    record = processes.start(name, command, env=_child_env(environment))
    return {"process": name, "pgid": record.pgid, "port": port, "log": record.log_path}


def start_router(*, name: str, state_file: Path) -> dict[str, Any]:
    command = [runtime_python("sagemaker"), "-m", "mlops.serving.router", "--state-file", str(state_file)]
    processes.stop(name, timeout=5)
    record = processes.start(name, command, env=_child_env())
    return {"process": name, "pgid": record.pgid, "log": record.log_path}


def ping(port: int, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/ping", timeout=timeout) as response:  # nosec B310  # an http:// URL on 127.0.0.1 built here, never a user-given scheme
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def wait_healthy(record: dict[str, Any], timeout: float) -> None:
    """Wait until ``/ping`` answers 200; raise DeploymentError naming the cause (log tail) otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.is_alive(record["pgid"]):
            raise DeploymentError(f"{record['process']} exited during start-up: {log_tail(record['log'])}")
        if ping(record["port"]):
            return
        time.sleep(0.1)
    raise DeploymentError(
        f"{record['process']} did not pass its /ping health check within {timeout:.0f}s: {log_tail(record['log'])}"
    )


def log_tail(path: str, lines: int = 3) -> str:
    try:
        tail = Path(path).read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return "(no log)"
    return " | ".join(tail) or "(empty log)"


def alive(record: dict[str, Any]) -> bool:
    return processes.is_alive(record["pgid"]) if record.get("pgid") else False


def stop(record: dict[str, Any]) -> None:
    processes.stop(record["process"], timeout=30)


def admin(port: int, path: str, method: str = "GET", timeout: float = 5.0) -> dict[str, Any]:
    """Call the router's admin API (loopback only)."""
    request = urllib.request.Request(
        f"http://{LOOPBACK}:{port}{path}", method=method, data=b"" if method == "POST" else None
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  # nosec B310  # an http:// URL on 127.0.0.1 built here, never a user-given scheme
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise DeploymentError(
            f"router on port {port} refused {method} {path}: {exc.read().decode(errors='replace')}"
        ) from exc
