"""Local background processes (Airflow standalone, endpoints) started in their own process group.

Each process is started with ``setsid`` semantics and recorded in ``<MLOPS_HOME>/run/<name>.json``
so ``make stop`` can stop it and all its children by process group, even from another shell.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from mlops.config import mlops_home


@dataclass(frozen=True)
class ManagedProcess:
    name: str
    pgid: int
    command: list[str]
    log_path: str
    started_at: float


def run_dir() -> Path:
    path = mlops_home() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _record_path(name: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"process name {name!r} must be a plain file name")
    return run_dir() / f"{name}.json"


def is_alive(pgid: int) -> bool:
    """True while any process of the group is alive (a group leader we started is reaped first)."""
    try:
        os.waitpid(pgid, os.WNOHANG)  # reap our own exited child so it is not counted as a zombie
    except ChildProcessError:
        pass
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start(
    name: str, command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> ManagedProcess:
    """Start ``command`` in a new session (its own process group) with output to a log file."""
    existing = read(name)
    if existing and is_alive(existing.pgid):
        raise RuntimeError(f"{name} is already running (process group {existing.pgid}); run `make stop` first")
    log_path = mlops_home() / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    record = ManagedProcess(name, proc.pid, list(command), str(log_path), time.time())
    tmp = _record_path(name).with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)))
    tmp.replace(_record_path(name))
    return record


def read(name: str) -> ManagedProcess | None:
    path = _record_path(name)
    if not path.exists():
        return None
    return ManagedProcess(**json.loads(path.read_text()))


def managed() -> list[ManagedProcess]:
    """Every process recorded under the run folder."""
    return [ManagedProcess(**json.loads(p.read_text())) for p in sorted(run_dir().glob("*.json"))]


def stop(name: str, timeout: float = 20.0) -> bool:
    """Stop a recorded process group: TERM, then KILL after ``timeout``. True if it was running."""
    record = read(name)
    if record is None:
        return False
    was_alive = is_alive(record.pgid)
    if was_alive:
        os.killpg(record.pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while is_alive(record.pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if is_alive(record.pgid):
            os.killpg(record.pgid, signal.SIGKILL)
    _record_path(name).unlink(missing_ok=True)
    return was_alive


def stop_all(timeout: float = 20.0) -> list[str]:
    """Stop every recorded process group; returns the names that were running."""
    return [p.name for p in managed() if stop(p.name, timeout)]
