"""The local Glue stand-in: executes a ``StartJobRun`` request the way Glue runs a script.

The job script (the request's job ``Command.ScriptLocation``, resolved to a local file) is
copied into a fresh job folder and run there as a subprocess of the glue runtime's Python (local
Spark) with the request's ``Arguments`` as ``--KEY value`` pairs, never inside the caller's
process. As on Glue, the Python path holds the script's folder and the ``--extra-py-files`` of the
request (``file://`` zips or folders), nothing of the caller's: the job imports only its bundle and
the runtime's packages. Its output is streamed line by line to ``log``; the result is shaped like
Glue's ``GetJobRun`` response.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops.processes import owned_env

RESULT_MARKER = "MLOPS_FEATURES_RESULT "


class GlueJobFailedError(RuntimeError):
    """The local job run ended in FAILED; the message carries the tail of its log."""


def job_run_id(request: dict[str, Any]) -> str:
    """A deterministic JobRunId (``jr_`` + 64 hex, like Glue's) from the request's name and arguments."""
    digest = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
    return f"jr_{digest}"


def python_path(arguments: dict[str, str]) -> str:
    """The job's ``PYTHONPATH``: the local paths of the request's ``--extra-py-files`` (comma-separated URIs)."""
    from mlops.lake import local_path

    uris = [u.strip() for u in arguments.get("--extra-py-files", "").split(",") if u.strip()]
    paths = [str(local_path(u)) for u in uris]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(
            f"--extra-py-files not found: {', '.join(missing)}; publish the job's code bundle first"
        )
    return os.pathsep.join(paths)


def script_command(script: Path, arguments: dict[str, str], job_name: str | None = None) -> list[str]:
    """``python <script> --KEY value ...`` with the glue runtime's Python: the way Glue invokes a script.

    As Glue does, the script gets ``--JOB_NAME <job_name>`` (a request may not set it: it is reserved).
    """
    from mlops.runtimes import runtime_python

    command = [runtime_python("glue"), str(script)]
    if job_name and "--JOB_NAME" not in arguments:
        command += ["--JOB_NAME", job_name]
    for key, value in sorted(arguments.items()):
        command += [key if key.startswith("--") else f"--{key}", str(value)]
    return command


def run_job_locally(
    request: dict[str, Any],
    script: Path,
    log: Callable[[str], None] = print,
    timeout_seconds: float | None = None,
) -> dict[str, Any]:
    """Run the StartJobRun ``request`` with ``script`` on local Spark; return a GetJobRun-shaped dict.

    Raises GlueJobFailedError (with the log tail) if the script exits non-zero.
    """
    arguments = dict(request.get("Arguments", {}))
    env = {**owned_env(), "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": python_path(arguments)}
    started = time.time()
    tail: deque[str] = deque(maxlen=40)
    result: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="glue-job-") as job_dir:
        job_script = Path(shutil.copy(script, job_dir))
        process = subprocess.Popen(
            script_command(job_script, arguments, request.get("JobName")),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=job_dir,
        )
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            if line.startswith(RESULT_MARKER):
                result = json.loads(line[len(RESULT_MARKER) :])
            log(line)
        code = process.wait(timeout=timeout_seconds)
    run = {
        "Id": job_run_id(request),
        "JobName": request["JobName"],
        "JobRunState": "SUCCEEDED" if code == 0 else "FAILED",
        "Arguments": arguments,
        "StartedOn": started,
        "CompletedOn": time.time(),
        "ExecutionTime": int(time.time() - started),
        "GlueVersion": request.get("GlueVersion", "5.0"),
    }
    if code != 0:
        run["ErrorMessage"] = f"script exited with code {code}"
        raise GlueJobFailedError(
            f"Glue job {request['JobName']} failed (exit {code}); last log lines:\n" + "\n".join(tail)
        )
    return {"JobRun": run, "Result": result}
