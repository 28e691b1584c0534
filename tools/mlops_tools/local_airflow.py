"""`make airflow` / `make airflow-status` / `make stop`: local Airflow as a service.

``start`` runs ``airflow standalone`` (LocalExecutor, the API server on 127.0.0.1) in its own
process group, waits until the metadata database, scheduler, DAG processor and triggerer all
report healthy (``/api/v2/monitor/health``) and names any that does not, then unpauses the
project's DAGs, which Airflow creates paused (``MLOPS_AIRFLOW_UNPAUSE``: a comma-separated list of
the ones to unpause instead, or ``none``; unpaused hourly DAGs start a run at once). ``status``
reports each component and exits non-zero when one is down (standalone does not restart a dead
scheduler). ``stop`` stops every process of the project: Airflow, endpoints, and job subprocesses
a killed task left behind (:func:`mlops.processes.stop_all`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mlops import processes

NAME = "airflow-standalone"
COMPONENTS = ("metadatabase", "scheduler", "dag_processor", "triggerer")
STATUS_CONFIRMATIONS, STATUS_CONFIRM_PAUSE_S = 3, 3.0  # `status` re-asks before it reports an outage
API_TIMEOUT_S = 15  # the API server answers slowly while the scheduler holds SQLite's write lock
DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


class AirflowApi:
    """The local API server's REST API v2, as the all-admins simple auth manager serves it."""

    def __init__(self, port: str | int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self._token: str | None = None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        request = urllib.request.Request(  # noqa: S310 - loopback only
            self.base + path, data=json.dumps(body).encode() if body is not None else None, headers=headers,
            method=method,
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=API_TIMEOUT_S) as response:  # noqa: S310 - loopback only
            return json.loads(response.read() or b"null")

    def token(self) -> str:
        """A bearer token (local all-admins mode hands one out without credentials)."""
        if self._token is None:
            self._token = self._call("GET", "/auth/token", auth=False)["access_token"]
        return self._token

    def health(self) -> dict[str, str]:
        """Component -> status (``healthy``/``unhealthy``/``unknown``)."""
        try:
            answer = self._call("GET", "/api/v2/monitor/health", auth=False)
        except (OSError, urllib.error.URLError, ValueError):
            return dict.fromkeys(COMPONENTS, "unreachable")
        return {c: (answer.get(c) or {}).get("status") or "unknown" for c in COMPONENTS}

    def dags(self) -> dict[str, bool]:
        """dag_id -> is_paused, for the DAGs Airflow has parsed."""
        answer = self._call("GET", "/api/v2/dags?limit=100")
        return {dag["dag_id"]: dag["is_paused"] for dag in answer["dags"]}

    def unpause(self, dag_id: str, attempts: int = 5, pause_s: float = 2.0) -> None:
        """Unpause ``dag_id``. A 5xx or no answer within ``API_TIMEOUT_S`` (standalone's SQLite busy while the
        scheduler writes) is retried, the PATCH being idempotent; RuntimeError naming the DAG and the fix after
        the last try."""
        for attempt in range(1, attempts + 1):
            try:
                self._call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
                return
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    raise
                last = f"HTTP {exc.code}"
            except (TimeoutError, urllib.error.URLError) as exc:
                last = f"no answer within {API_TIMEOUT_S} s ({exc})"
            if attempt == attempts:
                raise RuntimeError(
                    f"unpausing {dag_id} failed {attempts} times (last: {last}); unpause it in the UI, or "
                    "`make stop && make airflow`"
                )
            time.sleep(pause_s)


def project_dag_ids(folder: Path = DAGS_FOLDER) -> list[str]:
    """The project's DAG ids: one DAG per file in dags/, named after the file."""
    return sorted(p.stem for p in folder.glob("*.py") if not p.name.startswith("_"))


def dags_to_unpause(setting: str | None, project: list[str]) -> list[str]:
    """The DAGs ``start`` unpauses: every project DAG without ``MLOPS_AIRFLOW_UNPAUSE``, none for ``none``,
    else the listed ones; ValueError naming any that is not a project DAG."""
    if setting is None:
        return project
    listed = [] if setting.strip().lower() == "none" else [d.strip() for d in setting.split(",") if d.strip()]
    unknown = sorted(set(listed) - set(project))
    if unknown:
        raise ValueError(
            f"MLOPS_AIRFLOW_UNPAUSE names {unknown}, which are not DAGs of this project ({', '.join(project)}); "
            "list some of those, or `none`"
        )
    return listed


def api_port(setting: str | None) -> int:
    """The API server's port from ``AIRFLOW__API__PORT`` (8080 when unset); ValueError naming a bad value."""
    text = "8080" if setting is None else setting.strip()
    port = int(text) if text.isdigit() else 0
    if not 1 <= port <= 65535:
        raise ValueError(
            f"AIRFLOW__API__PORT={setting!r} is not a TCP port (1-65535); e.g. `make airflow AIRFLOW__API__PORT=8081`"
        )
    return port


def describe(health: dict[str, str]) -> str:
    return ", ".join(f"{component} {status}" for component, status in health.items())


def wait(condition: Any, timeout: float, what: str, alive: Any) -> None:
    """Poll ``condition()`` every second until true; raise naming ``what`` on timeout or death."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"airflow standalone exited while waiting for {what}")
        if condition():
            return
        time.sleep(1)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def start(timeout: float = 240.0) -> int:
    """Start standalone, wait for every component, unpause the project's DAGs."""
    wanted = project_dag_ids()
    try:
        port = api_port(os.environ.get("AIRFLOW__API__PORT"))
        unpaused = dags_to_unpause(os.environ.get("MLOPS_AIRFLOW_UNPAUSE"), wanted)
    except ValueError as exc:  # before anything starts
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not processes.bindable(port):  # else the health checks below would ask whatever serves there
        print(
            f"error: 127.0.0.1:{port} is already in use (another Airflow? `make stop` stops this project's); "
            f"or serve on another port: `make airflow AIRFLOW__API__PORT={port + 1 if port < 65535 else 8081}`",
            file=sys.stderr,
        )
        return 2
    env = {
        **os.environ,
        # standalone starts its components as `airflow ...` commands: they must come from this venv.
        "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}",
        # Local development only: every UI user is admin, and the server listens on loopback only.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
        # task processes reach the Task Execution API on this server, whatever its port
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        # every component shares one SQLite file: wait for its lock instead of dying on "database is locked"
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "mlops_tools.airflow_sqlite.CONNECT_ARGS",
    }
    record = processes.start(NAME, [sys.executable, "-m", "airflow", "standalone"], env=env)
    print(f"==> airflow standalone starting (process group {record.pgid}); log: {record.log_path}", flush=True)
    api, alive = AirflowApi(port), lambda: processes.is_alive(record.pgid)
    try:
        wait(lambda: set(api.health().values()) == {"healthy"}, timeout, "every component to be healthy", alive)
        print(f"==> healthy: {describe(api.health())}", flush=True)
        wait(lambda: set(wanted) <= set(api.dags()), timeout, f"the DAGs {', '.join(wanted)} to be parsed", alive)
        for dag_id in unpaused:
            api.unpause(dag_id)
    except RuntimeError as exc:
        print(f"error: {exc}; components: {describe(api.health())}; see {record.log_path}", file=sys.stderr)
        processes.stop(NAME)
        return 1
    print(f"==> unpaused: {', '.join(unpaused) or 'none (MLOPS_AIRFLOW_UNPAUSE)'}")
    print(f"==> Airflow UI: http://127.0.0.1:{port}  (every local user is admin; stop with `make stop`)")
    return 0


def status() -> int:
    """Print each component's health; exit 1 naming the ones that are not healthy."""
    record = processes.read(NAME)
    if record is None or not processes.is_alive(record.pgid):
        print("airflow is not running; start it with `make airflow`", file=sys.stderr)
        return 1
    try:
        api = AirflowApi(api_port(os.environ.get("AIRFLOW__API__PORT")))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    health = api.health()
    for _ in range(STATUS_CONFIRMATIONS):  # one late heartbeat or a slow answer under load is not an outage
        if all(state == "healthy" for state in health.values()):
            break
        time.sleep(STATUS_CONFIRM_PAUSE_S)
        health = api.health()
    print(describe(health))
    down = [component for component, state in health.items() if state != "healthy"]
    if down:
        print(f"not healthy: {', '.join(down)}; restart with `make stop airflow` (log: {record.log_path})",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def stop() -> int:
    """Stop Airflow and every other process of the project (endpoints, orphaned job subprocesses)."""
    stopped = processes.stop_all()
    print("stopped: " + ", ".join(stopped) if stopped else "nothing was running")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_tools.local_airflow")
    parser.add_argument("action", choices=["start", "status", "stop"])
    args = parser.parse_args(argv)
    return {"start": start, "status": status, "stop": stop}[args.action]()


if __name__ == "__main__":
    raise SystemExit(main())
