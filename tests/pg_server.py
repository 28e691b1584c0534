"""A throwaway PostgreSQL server for tests: initdb into a temporary folder, listen on loopback only.

Authentication is ``trust``, which is acceptable only because the server listens on 127.0.0.1
alone and opens no Unix socket. As root, ``initdb`` and ``pg_ctl`` run as the
``postgres`` user (``initdb`` refuses root). Stop it with :meth:`PostgresServer.stop`.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = (
    "run `make test` (scripts/ensure_postgres.sh installs the PostgreSQL server) or `apt-get install postgresql`"
)
SERVER_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are missing or the server did not start."""


def find_bindir() -> Path:
    """The folder with ``initdb`` and ``pg_ctl``: ``pg_config --bindir``, /usr/lib/postgresql/*/bin, then PATH."""
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        result = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(versions, key=lambda p: int(Path(p).parent.name), reverse=True)]
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailable(f"PostgreSQL server binaries (initdb, pg_ctl) not found; {INSTALL_HINT}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    """Prefix a command with ``runuser`` when running as root."""
    return ["runuser", "-u", SERVER_USER, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], log: Path) -> None:
    result = subprocess.run(_as_server_user(command), capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise PostgresUnavailable(f"{' '.join(command[:2])} failed:\n{result.stdout}{result.stderr}{tail}")


@dataclass
class PostgresServer:
    """A running throwaway server; ``url(db)`` gives a SQLAlchemy URL for one of its databases."""

    bindir: Path
    root: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its URL."""
        import psycopg

        with psycopg.connect(self.url("postgres").replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        if (self.data_dir / "postmaster.pid").exists():
            _run([str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"], self.log_file)
        shutil.rmtree(self.root, ignore_errors=True)


def start_server(parent: Path | None = None) -> PostgresServer:
    """initdb a new cluster in a temporary folder under ``parent`` and start it on a free loopback port."""
    bindir = find_bindir()
    root = Path(tempfile.mkdtemp(prefix="mlops-pg-", dir=parent))
    root.chmod(0o755)
    server = PostgresServer(bindir=bindir, root=root, port=free_port())
    if os.geteuid() == 0:
        shutil.chown(root, user=SERVER_USER, group=SERVER_USER)
    try:
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(server.data_dir),
                "-U",
                SERVER_USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C.UTF-8",
            ],
            server.log_file,
        )
        options = (
            f"-p {server.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        _run(
            [
                str(bindir / "pg_ctl"),
                "start",
                "-D",
                str(server.data_dir),
                "-l",
                str(server.log_file),
                "-w",
                "-t",
                "60",
                "-o",
                options,
            ],
            server.log_file,
        )
    except (PostgresUnavailable, subprocess.TimeoutExpired):
        server.stop()
        raise
    return server
