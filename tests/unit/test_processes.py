"""Local background processes are recorded and stopped by process group, children included."""

from __future__ import annotations

import sys
import time

import pytest

from mlops import processes


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))


def test_stop_kills_the_whole_group():
    # The parent spawns a child that would outlive a plain TERM of the parent.
    script = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); time.sleep(300)"
    )
    record = processes.start("sleeper", [sys.executable, "-c", script])
    time.sleep(0.5)
    assert processes.is_alive(record.pgid)
    assert processes.stop_all() == ["sleeper"]
    assert not processes.is_alive(record.pgid)
    assert processes.managed() == []


def test_refuses_to_start_twice():
    processes.start("twice", [sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        with pytest.raises(RuntimeError, match="already running"):
            processes.start("twice", [sys.executable, "-c", "pass"])
    finally:
        processes.stop("twice")


def test_bad_name_is_rejected():
    with pytest.raises(ValueError, match="plain file name"):
        processes.start("../evil", [sys.executable, "-c", "pass"])
