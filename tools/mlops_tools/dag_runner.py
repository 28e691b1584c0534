"""Run a pipeline DAG in-process with ``dag.test()`` and collect what it produced.

Used by ``make demo`` and by the integration tests. ``dag.test()`` needs a migrated metadata
DB under ``AIRFLOW_HOME``; :func:`ensure_airflow_db` creates it once (about 12 s).
Task logs go to a file so a person sees progress lines, not Airflow's log stream.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = PROJECT_ROOT / "dags"
_ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception|Failure)): (.+)$")


@dataclass
class DagRunResult:
    """What one ``dag.test()`` run did: final state, per-task states, XComs and Asset extras."""

    dag_id: str
    run_id: str
    state: str
    seconds: float
    task_states: dict[str, str]
    xcoms: dict[str, Any] = field(default_factory=dict)
    asset_extras: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None
    log_path: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", PROJECT_ROOT / ".mlops" / "airflow"))


def ensure_airflow_db() -> None:
    """Migrate the metadata DB under AIRFLOW_HOME if it does not exist yet."""
    home = airflow_home()
    if (home / "airflow.db").exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"`airflow db migrate` failed in {home}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def load_dag(dag_id: str, dags_folder: Path = DAGS_FOLDER) -> Any:
    """Import ``<dags_folder>/<dag_id>.py`` and return its DAG object."""
    path = dags_folder / f"{dag_id}.py"
    if not path.exists():
        raise FileNotFoundError(f"no DAG file {path}; DAG files are named after their dag_id")
    spec = importlib.util.spec_from_file_location(f"mlops_dag_{dag_id}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


class _FdStream(io.TextIOBase):
    """A text stream that writes straight to a file descriptor.

    Loggers configured during a run keep a reference to ``sys.stdout``; this stream stays valid
    after the run (it then writes to whatever the descriptor points at again)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        os.write(self._fd, text.encode("utf-8", errors="replace"))
        return len(text)

    def fileno(self) -> int:
        return self._fd


@contextmanager
def _output_to(log_path: Path | None) -> Iterator[None]:
    """Send this process's output to ``log_path``: file descriptors 1 and 2, and sys.stdout/stderr
    (which a test runner may have replaced with its own capture)."""
    if log_path is None:
        yield
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = os.dup(1), os.dup(2)
    saved_streams = sys.stdout, sys.stderr
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    sys.stdout, sys.stderr = _FdStream(1), _FdStream(2)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved_streams
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        os.close(saved_fds[0])
        os.close(saved_fds[1])


def last_error(log_text: str) -> str | None:
    """The last ``SomeError: message`` of a task log, with its indented continuation lines."""
    lines = log_text.splitlines()
    starts = [i for i, line in enumerate(lines) if _ERROR_LINE.match(line.strip())]
    if not starts:
        return None
    first = lines[starts[-1]].strip()
    match = _ERROR_LINE.match(first)
    assert match
    message = [f"{match.group(1)}: {match.group(2)}"]
    for line in lines[starts[-1] + 1 :]:
        if not line.startswith((" ", "\t")) or not line.strip():
            break
        message.append(line.rstrip())
    return "\n".join(message)


def run_dag(
    dag_id: str,
    conf: dict[str, Any] | None = None,
    log_path: Path | None = None,
    retries: int | None = 0,
    keep_queued: bool = False,
) -> DagRunResult:
    """Run ``dag_id`` once with ``dag.test()``; never raises for a failed run (see ``state``).

    ``retries=0`` (the default) makes a failing task fail the run at once instead of waiting
    out the DAG's retry delays; ``None`` keeps the DAG's own retries.

    The run's Asset events stay (the UI shows them), but the asset-triggered runs they queued for
    unpaused downstream DAGs are taken off the queue unless ``keep_queued``: the caller (the demo,
    a test) runs those DAGs itself, and a scheduler started later on this metadata DB (``make
    airflow``) would otherwise start them at once against whatever state the lake is in by then.
    """
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    ensure_airflow_db()
    dag = load_dag(dag_id)
    if retries is not None:
        for task in dag.tasks:
            task.retries = retries
    start_offset = log_path.stat().st_size if log_path and log_path.exists() else 0
    started, started_at = time.monotonic(), datetime.now(UTC)
    with _output_to(log_path):
        dag_run = dag.test(run_conf=conf or None)
    seconds = time.monotonic() - started
    with create_session() as session:
        task_states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}
        xcoms = dict(
            session.execute(
                select(XComModel.task_id, XComModel.value).where(
                    XComModel.dag_id == dag_id, XComModel.run_id == dag_run.run_id, XComModel.key == "return_value"
                )
            ).all()
        )
        events = session.execute(
            select(AssetModel.name, AssetEvent.extra, AssetEvent.asset_id)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == dag_run.run_id)
        ).all()
        if not keep_queued and events:
            session.execute(
                delete(AssetDagRunQueue).where(
                    AssetDagRunQueue.asset_id.in_({asset_id for _, _, asset_id in events}),
                    AssetDagRunQueue.created_at >= started_at,
                )
            )
    error = None
    if str(dag_run.state) != "success" and log_path is not None:
        with log_path.open("rb") as log:
            log.seek(start_offset)
            error = last_error(log.read().decode(errors="replace"))
    return DagRunResult(
        dag_id=dag_id,
        run_id=dag_run.run_id,
        state=str(dag_run.state),
        seconds=seconds,
        task_states=task_states,
        xcoms=xcoms,
        asset_extras={name: dict(extra or {}) for name, extra, _ in events},
        error=error,
        log_path=str(log_path) if log_path else None,
    )
