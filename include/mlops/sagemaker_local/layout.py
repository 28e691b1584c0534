"""Job directories laid out like the SageMaker container's ``/opt/ml``, and container-path remapping."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.config import mlops_home
from mlops.lake import local_path

CONTAINER_ROOT = "/opt/ml"
LOCAL_ACCOUNT = "000000000000"
HOST = "algo-1"


def jobs_root() -> Path:
    """Where local jobs run: ``<MLOPS_HOME>/sagemaker``."""
    return mlops_home() / "sagemaker"


@dataclass(frozen=True)
class JobDir:
    """One job's directory; ``opt_ml`` stands for the container's ``/opt/ml``."""

    root: Path

    @property
    def opt_ml(self) -> Path:
        return self.root / "opt" / "ml"

    @property
    def log_file(self) -> Path:
        return self.root / "logs" / f"{HOST}.log"

    @property
    def describe_file(self) -> Path:
        return self.root / "describe.json"

    def container(self, path: str) -> Path:
        """The local path of a container path under /opt/ml (anything else is refused)."""
        if path != CONTAINER_ROOT and not path.startswith(CONTAINER_ROOT + "/"):
            raise ValueError(f"container path {path!r} is outside {CONTAINER_ROOT}; SageMaker only mounts paths there")
        return self.opt_ml / path[len(CONTAINER_ROOT) :].lstrip("/")

    def remap(self, token: str) -> str:
        """A command-line token with a leading /opt/ml container path rewritten to the job dir."""
        if token == CONTAINER_ROOT or token.startswith(CONTAINER_ROOT + "/"):
            return str(self.container(token))
        return token

    @classmethod
    def fresh(cls, kind: str, name: str, root: Path | None = None) -> JobDir:
        """An empty job dir for ``kind``/``name`` (a rerun of the same job name starts clean)."""
        job = cls((root or jobs_root()) / kind / name)
        if job.root.exists():
            shutil.rmtree(job.root)
        job.opt_ml.mkdir(parents=True)
        job.log_file.parent.mkdir(parents=True)
        return job

    def write_json(self, container_path: str, payload: Any) -> Path:
        path = self.container(container_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, default=str))
        return path


def stage_input(uri: str, destination: Path) -> int:
    """Copy what an S3Prefix/S3Object URI names (a folder or one file) into ``destination``; return files copied."""
    source = local_path(uri)
    destination.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        shutil.copy2(source, destination / source.name)
        return 1
    if not source.is_dir():
        raise FileNotFoundError(f"input {uri} does not exist; nothing to stage (check the upstream step's output)")
    count = 0
    for path in sorted(source.rglob("*")):
        if path.is_file():
            target = destination / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                target.hardlink_to(path)
            except OSError:
                shutil.copy2(path, target)
            count += 1
    return count


def failure_reason(job: JobDir, returncode: int, log_tail: str) -> str:
    """The reason a container failed: /opt/ml/output/failure (or message), else the exit code and log tail."""
    for name in ("failure", "message"):
        path = job.container(f"{CONTAINER_ROOT}/output/{name}")
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()[:1024]
    return f"AlgorithmError: exit code {returncode}; last log lines:\n{log_tail}"[:1024]
