"""Where the local SageMaker stand-in keeps its resources: JSON files under ``<MLOPS_HOME>/serving``.

    serving/models/<ModelName>.json                    the CreateModel request
    serving/endpoint-configs/<EndpointConfigName>.json the CreateEndpointConfig request
    serving/endpoints/<EndpointName>.json              endpoint state: status, port, fleets, pids
    serving/endpoints/<EndpointName>.routes.json       the router's routing state
    serving/containers/<process name>/model            extracted model packages

The files outlive Airflow restarts; each write is atomic (write + rename) and endpoint
changes hold a per-endpoint lock, so two deploys of one endpoint never interleave.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.config import mlops_home

LOCAL_ACCOUNT = "000000000000"
LOCAL_REGION = "local"
KINDS = ("models", "endpoint-configs", "endpoints")


class ResourceNotFound(LookupError):
    """The named model, endpoint config or endpoint does not exist (SageMaker: ValidationException)."""

    code = "ValidationException"


class ResourceInUse(ValueError):
    """The name is taken (SageMaker: ValidationException 'Cannot create already existing ...')."""

    code = "ValidationException"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def arn(kind: str, name: str) -> str:
    """A SageMaker-shaped ARN for a local resource (kind: model, endpoint-config, endpoint)."""
    return f"arn:aws:sagemaker:{LOCAL_REGION}:{LOCAL_ACCOUNT}:{kind}/{name.lower()}"


class Store:
    """JSON documents per resource kind, written atomically."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or (mlops_home() / "serving")
        for kind in KINDS:
            (self.root / kind).mkdir(parents=True, exist_ok=True)

    def path(self, kind: str, name: str, suffix: str = ".json") -> Path:
        if kind not in KINDS:
            raise ValueError(f"unknown resource kind {kind!r}")
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"{name!r} is not a valid resource name")
        return self.root / kind / f"{name}{suffix}"

    def exists(self, kind: str, name: str) -> bool:
        return self.path(kind, name).exists()

    def get(self, kind: str, name: str) -> dict[str, Any]:
        path = self.path(kind, name)
        if not path.exists():
            label = {"models": "model", "endpoint-configs": "endpoint configuration", "endpoints": "endpoint"}[kind]
            raise ResourceNotFound(f'Could not find {label} "{name}".')
        return json.loads(path.read_text())

    def put(self, kind: str, name: str, document: dict[str, Any], suffix: str = ".json") -> Path:
        path = self.path(kind, name, suffix)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(document, indent=2, sort_keys=True, default=str))
        tmp.replace(path)
        return path

    def delete(self, kind: str, name: str) -> None:
        self.get(kind, name)
        self.path(kind, name).unlink()

    def names(self, kind: str) -> list[str]:
        return sorted(p.stem for p in (self.root / kind).glob("*.json") if not p.name.endswith(".routes.json"))

    def container_dir(self, process_name: str) -> Path:
        return self.root / "containers" / process_name

    @contextmanager
    def locked(self, endpoint_name: str) -> Iterator[None]:
        """Hold the endpoint's lock (blocks while another process changes the same endpoint)."""
        lock_path = self.path("endpoints", endpoint_name, ".lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
