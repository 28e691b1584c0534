"""Local Airflow as a service: healthy components, unpaused DAGs, a dead scheduler named, nothing left on stop."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest

from mlops import processes
from tests import live_airflow

pytestmark = [pytest.mark.slow, pytest.mark.airflow]


def _pids_matching(pgid: int, text: str) -> list[int]:
    """Processes of group ``pgid`` whose full command line contains ``text``.

    Read through psutil, not ``ps``: piped ``ps`` cuts lines at 80 columns, which hid the
    scheduler once the checkout's path was a few characters longer.
    """
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if os.getpgid(proc.pid) == pgid and text in " ".join(proc.info["cmdline"] or []):
                found.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


@pytest.fixture
def airflow_env(tmp_path, monkeypatch) -> dict[str, str]:
    home = tmp_path / "home"
    monkeypatch.setenv("MLOPS_HOME", str(home))  # processes.* in this test look at the same home
    env = live_airflow.airflow_env(
        home,
        # a dead scheduler shows sooner than the default 30 s (heartbeats every 2 s); not much sooner:
        # on a loaded CI machine a live scheduler's heartbeat can be 15 s late
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
        AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD="25",
    )
    yield env
    live_airflow.local_airflow(env, "stop")


def test_start_unpauses_names_a_dead_scheduler_and_stop_leaves_nothing(airflow_env):
    started = live_airflow.local_airflow(airflow_env, "start")
    assert started.returncode == 0, started.stdout + started.stderr
    healthy = "metadatabase healthy, scheduler healthy, dag_processor healthy, triggerer healthy"
    assert f"healthy: {healthy}" in started.stdout
    from mlops_tools.local_airflow import AirflowApi, project_dag_ids

    project = project_dag_ids()
    assert {"mlops_ingest", "mlops_features", "mlops_train", "mlops_deploy", "mlops_monitor"} <= set(project)
    assert f"unpaused: {', '.join(project)}" in started.stdout

    api = AirflowApi(airflow_env["AIRFLOW__API__PORT"])
    dags = api.dags()
    assert {d: dags[d] for d in dags if d.startswith("mlops_")} == dict.fromkeys(project, False)
    assert live_airflow.local_airflow(airflow_env, "status").returncode == 0

    record = processes.read("airflow-standalone")
    assert record is not None
    schedulers = _pids_matching(record.pgid, "airflow scheduler")
    assert schedulers, "no scheduler process found in the standalone's process group"
    for pid in schedulers:
        os.kill(pid, signal.SIGKILL)
    deadline, status = time.monotonic() + 90, None
    while time.monotonic() < deadline:
        status = live_airflow.local_airflow(airflow_env, "status")
        if status.returncode != 0:
            break
        time.sleep(2)
    assert status is not None and status.returncode == 1, status.stdout if status else "no status"
    # the scheduler is named (under heavy load the API may time out on the others too)
    assert re.search(r"not healthy: [a-z_, ]*\bscheduler\b", status.stderr), status.stderr
    assert "make stop airflow" in status.stderr

    # A job subprocess a killed task left behind: its own session, in no recorded group, tagged as ours.
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        env=processes.owned_env(), start_new_session=True,
    )  # fmt: skip
    stopped = live_airflow.local_airflow(airflow_env, "stop")
    assert stopped.returncode == 0 and "airflow-standalone" in stopped.stdout, stopped.stdout + stopped.stderr
    assert f"pid {orphan.pid}" in stopped.stdout
    assert orphan.wait(timeout=10) is not None
    assert processes.owned_pids() == [], "a process of the project outlived make stop"
    assert not processes.is_alive(record.pgid)
    assert json.loads(json.dumps(api.health()))["scheduler"] == "unreachable"
