"""For tests in the Airflow environment that need the SageMaker runtime (``.mlops/venvs/sagemaker``).

The Airflow environment has no LightGBM, skl2onnx or onnxruntime, as an MWAA worker has none:
model packages are built there by the training stage's own code
(:mod:`tests.jobs.sagemaker.model_packages`), and model servers run there, as subprocesses, the
way the local endpoint runs them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mlops.runtimes import runtime_python

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    """This environment, with the project's ``include`` and root (for ``tests``) on the path."""
    paths = [str(ROOT / "include"), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def build_model_packages(out_dir: Path, packages: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Build model packages in the SageMaker runtime; returns the manifest (see ``model_packages``)."""
    done = subprocess.run(
        [runtime_python("sagemaker"), "-m", "tests.jobs.sagemaker.model_packages", str(out_dir), json.dumps(packages)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building model packages failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads((out_dir / "manifest.json").read_text())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(port: int, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one request to 127.0.0.1:``port``; HTTP errors are answers too."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def model_server_command(archive: Path | str, model_dir: Path, port: int, *extra: str) -> list[str]:
    """``python -m mlops.serving.server`` in the SageMaker runtime (one inference container)."""
    return [
        runtime_python("sagemaker"),
        "-m",
        "mlops.serving.server",
        "--model-data",
        str(archive),
        "--model-dir",
        str(model_dir),
        "--port",
        str(port),
        *extra,
    ]


def run_model_server(
    archive: Path | str, model_dir: Path, *extra: str, timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run a model server that is expected to exit (a package that cannot load); returns its result."""
    command = model_server_command(archive, model_dir, free_port(), *extra)
    return subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=timeout)


def start_model_server(archive: Path | str, model_dir: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    """Start a model server on a free port (log: ``<model_dir>.log``), wait for ``/ping``; returns (process, port)."""
    port = free_port()
    log_path = model_dir.parent / f"{model_dir.name}.log"
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            model_server_command(archive, model_dir, port, *extra),
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"model server exited with {proc.returncode}: {log_path.read_text()[-3000:]}")
        try:
            if http(port, "/ping")[0] == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.1)
    stop_model_server(proc)
    raise RuntimeError(f"model server did not answer /ping within 60 s: {log_path.read_text()[-3000:]}")


def stop_model_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
