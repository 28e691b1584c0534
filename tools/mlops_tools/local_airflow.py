"""`make airflow` / `make stop`: Airflow standalone on 127.0.0.1:8080 in its own process group."""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.request

from mlops import processes

NAME = "airflow-standalone"
HEALTH_URL = "http://127.0.0.1:{port}/api/v2/monitor/health"


def _healthy(port: str) -> bool:
    try:
        with urllib.request.urlopen(HEALTH_URL.format(port=port), timeout=2) as response:  # noqa: S310 - loopback
            return response.status == 200
    except OSError:
        return False


def start(timeout: float = 180.0) -> int:
    """Start `airflow standalone` and wait until its API server answers its health check."""
    port = os.environ.get("AIRFLOW__API__PORT", "8080")
    env = {
        **os.environ,
        # standalone starts its components as `airflow ...` commands: they must come from this venv.
        "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}",
        # Local development only: every UI user is admin, and the server listens on loopback only.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
    }
    record = processes.start(NAME, [sys.executable, "-m", "airflow", "standalone"], env=env)
    print(f"==> airflow standalone starting (process group {record.pgid}); log: {record.log_path}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.is_alive(record.pgid):
            print(f"airflow standalone exited during start-up; see {record.log_path}", file=sys.stderr)
            processes.stop(NAME)
            return 1
        if _healthy(port):
            print(f"==> Airflow UI: http://127.0.0.1:{port}  (stop with `make stop`)")
            return 0
        time.sleep(2)
    print(f"airflow did not become healthy within {timeout:.0f}s; stopping it; see {record.log_path}", file=sys.stderr)
    processes.stop(NAME)
    return 1


def stop() -> int:
    """Stop Airflow and every other process group the project started (endpoints included)."""
    stopped = processes.stop_all()
    print("stopped: " + ", ".join(stopped) if stopped else "nothing was running")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_tools.local_airflow")
    parser.add_argument("action", choices=["start", "stop"])
    args = parser.parse_args(argv)
    return start() if args.action == "start" else stop()


if __name__ == "__main__":
    raise SystemExit(main())
