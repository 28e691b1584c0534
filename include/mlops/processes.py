"""Local background processes (Airflow standalone, endpoints, jobs) and stopping all of them.

Long-lived processes are started with ``setsid`` semantics and recorded in
``<MLOPS_HOME>/run/<name>.json`` so ``make stop`` can stop each and its children by process
group, even from another shell. Every process the project starts also carries
``MLOPS_PROCESS_OWNER=<MLOPS_HOME>`` in its environment, which its children inherit: a job
subprocess started in its own session by a task that was killed meanwhile is in no recorded
group, and :func:`sweep` finds it by that tag (Linux ``/proc``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from mlops.config import mlops_home

OWNER_ENV = "MLOPS_PROCESS_OWNER"
LOOPBACK = "127.0.0.1"


def bindable(port: int, host: str = LOOPBACK) -> bool:
    """True if a server could listen on ``host:port`` now (SO_REUSEADDR, as uvicorn and Airflow's API server
    bind: a port left in TIME_WAIT by a stopped server counts as free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


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


def owner_tag() -> str:
    """The value of ``MLOPS_PROCESS_OWNER`` for processes of this ``MLOPS_HOME``."""
    return str(mlops_home())


def owned_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's environment) plus the owner tag."""
    return {**(os.environ if env is None else env), OWNER_ENV: owner_tag()}


def _stat(pid_dir: Path) -> tuple[str, int] | None:
    """(state, process group) of a /proc/<pid> entry, or None once it is gone."""
    try:
        fields = (pid_dir / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[2])


def is_alive(pgid: int) -> bool:
    """True while a process of the group is alive; zombies don't count (PID 1 may never reap them here)."""
    try:
        os.waitpid(pgid, os.WNOHANG)  # reap our own exited child so it is not counted
    except ChildProcessError:
        pass
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    members = (_stat(entry) for entry in Path("/proc").glob("[0-9]*"))
    return any(member is not None and member[1] == pgid and member[0] != "Z" for member in members)


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
            env=owned_env(env),
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
            deadline = time.monotonic() + 5
            while is_alive(record.pgid) and time.monotonic() < deadline:
                time.sleep(0.1)
    _record_path(name).unlink(missing_ok=True)
    return was_alive


def _ancestors() -> set[int]:
    """This process and its parents (never swept, whatever their environment says)."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])  # the parent pid
        except (OSError, IndexError, ValueError):
            break
    return pids


def owned_pids() -> list[int]:
    """Live processes tagged with this home's owner tag, except this process and its parents."""
    marker = f"{OWNER_ENV}={owner_tag()}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return sorted(set(found) - _ancestors())


def sweep(timeout: float = 10.0) -> list[int]:
    """Stop every process tagged as this home's (orphaned job subprocesses included); returns their pids."""
    pids = owned_pids()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and owned_pids():
            time.sleep(0.2)
        for pid in pids:  # reap those that were our own children
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        if not owned_pids():
            break
    return pids


def stop_all(timeout: float = 20.0) -> list[str]:
    """Stop every recorded process group, then every other process of this home; returns what ran."""
    stopped = [p.name for p in managed() if stop(p.name, timeout)]
    orphans = sweep()
    return [*stopped, *(f"pid {pid}" for pid in orphans)]
