"""Shared fixtures: a throwaway PostgreSQL 15 server for the session, and SQLite source URLs."""

from __future__ import annotations

import os

# Airflow reads its config when first imported: give the test session its own home, never ~/airflow.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("AIRFLOW_HOME", os.path.join(_ROOT, ".mlops", "airflow-test"))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n: each worker process gets its own Airflow home (their SQLite metadata DBs never meet) and
    # its own MLOPS_HOME for the tests that use the default one.
    _worker = os.environ["PYTEST_XDIST_WORKER"]
    os.environ["AIRFLOW_HOME"] = f"{os.environ['AIRFLOW_HOME'].rstrip('/')}-{_worker}"
    _home = os.environ.get("MLOPS_HOME") or os.path.join(_ROOT, ".mlops")
    os.environ["MLOPS_HOME"] = os.path.join(_home, f"test-{_worker}")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", os.path.join(_ROOT, "dags"))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# ruff: noqa: E402 - the environment above must be set before these imports pull in Airflow

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg_server import PostgresServer, PostgresUnavailable, start_server

_DATABASE_NUMBERS = itertools.count(1)

# Job code is tested in its own runtime (tests/jobs/conftest.py), never in the Airflow environment.
collect_ignore = ["jobs"]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """End-to-end tests first: under ``pytest -n`` the long ones start at once and the short ones fill
    in around them, instead of the longest test starting last and running alone."""
    items.sort(key=lambda item: 0 if "/integration/" in f"/{item.nodeid}" else 1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server on 127.0.0.1, started once per session; fails (never skips) when it cannot start."""
    try:
        server = start_server()
    except PostgresUnavailable as exc:
        pytest.fail(f"cannot start the PostgreSQL test server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """``postgresql+psycopg://`` URL of a database created for this session."""
    return postgres_server.create_database("mlops_test")


@pytest.fixture
def postgres_db_url(postgres_server: PostgresServer) -> str:
    """URL of a fresh, empty database for one test."""
    return postgres_server.create_database(f"test_{next(_DATABASE_NUMBERS)}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a SQLite source database file in the test's temporary folder."""
    return f"sqlite:///{tmp_path / 'source.db'}"


@pytest.fixture
def mlops_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``MLOPS_HOME`` at an empty temporary folder for one test."""
    home = tmp_path / "mlops-home"
    home.mkdir()
    monkeypatch.setenv("MLOPS_HOME", str(home))
    return home


# Job-runtime tests (tests/jobs/<runtime>) run with that runtime's Python, never in this env.
collect_ignore = ["jobs"]
