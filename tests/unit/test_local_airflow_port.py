"""`make airflow` serves on AIRFLOW__API__PORT (8080 by default) and refuses a bad or taken port before starting."""

from __future__ import annotations

import re
import socket

import pytest

from mlops_tools import local_airflow


def test_the_port_comes_from_the_environment_and_a_bad_one_is_named():
    assert local_airflow.api_port(None) == 8080
    assert local_airflow.api_port(" 8081 ") == 8081
    for bad in ("", "http", "-1", "0", "65536", "80.5"):
        named = re.escape(f"AIRFLOW__API__PORT={bad!r} is not a TCP port")
        with pytest.raises(ValueError, match=rf"{named} .*make airflow AIRFLOW__API__PORT=8081"):
            local_airflow.api_port(bad)


def test_a_taken_port_stops_start_before_anything_runs(monkeypatch, capsys):
    started = []
    monkeypatch.setattr(local_airflow.processes, "start", lambda *a, **k: started.append(a))
    monkeypatch.delenv("MLOPS_AIRFLOW_UNPAUSE", raising=False)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not local_airflow.processes.bindable(port)
        monkeypatch.setenv("AIRFLOW__API__PORT", str(port))
        assert local_airflow.start() == 2
    assert started == []
    error = capsys.readouterr().err
    assert f"127.0.0.1:{port} is already in use" in error
    assert f"make airflow AIRFLOW__API__PORT={port + 1}" in error
    assert local_airflow.processes.bindable(port)  # free again once the listener is closed


def test_a_bad_port_is_refused_before_anything_starts(monkeypatch, capsys):
    started = []
    monkeypatch.setattr(local_airflow.processes, "start", lambda *a, **k: started.append(a))
    monkeypatch.setenv("AIRFLOW__API__PORT", "eighty")
    assert local_airflow.start() == 2
    assert started == []
    assert "AIRFLOW__API__PORT='eighty' is not a TCP port" in capsys.readouterr().err
