"""A real local Airflow (``mlops_tools.local_airflow``: standalone, scheduler, triggerer) for tests.

Each one gets its own MLOPS_HOME/AIRFLOW_HOME and free loopback ports, so it never meets a
developer's `make airflow`; ``stop`` leaves no process behind.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment `make airflow` would give, pointed at ``home`` and free ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS__"))}
    env.update(
        MLOPS_HOME=str(home),
        AIRFLOW_HOME=str(home / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__API__PORT=str(free_port()),
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
        PYTHONPATH=os.pathsep.join(str(ROOT / p) for p in ("include", "plugins", "tools")),
        **extra,
    )
    return env


def local_airflow(env: dict[str, str], action: str) -> subprocess.CompletedProcess[str]:
    """``python -m mlops_tools.local_airflow <action>`` in ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "mlops_tools.local_airflow", action],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip


@contextmanager
def running_airflow(env: dict[str, str]) -> Iterator[str]:
    """Start Airflow in ``env``, yield its base URL, always stop it."""
    try:
        started = local_airflow(env, "start")
        if started.returncode != 0:
            raise RuntimeError(f"local Airflow did not start:\n{started.stdout}\n{started.stderr}")
        yield f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}"
    finally:
        local_airflow(env, "stop")
