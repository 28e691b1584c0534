"""The job runtimes: which Python runs each kind of job on the local target.

On AWS a Glue job runs on Glue 5.0 and a SageMaker job in its framework container, never in
the MWAA worker. The local stand-ins keep that boundary: they start the same scripts as
subprocesses with the Python of an environment whose packages match that runtime
(``envs/<name>/requirements.lock``, installed by ``make venv`` into
``<MLOPS_RUNTIMES>/<name>``, default ``<project>/.mlops/venvs``), never the Airflow
environment's own interpreter.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlops.config import PROJECT_ROOT

RUNTIMES_ENV = "MLOPS_RUNTIMES"

#: runtime name -> what runs there (the AWS side it stands for).
RUNTIMES: dict[str, str] = {
    "glue": "AWS Glue 5.0 job scripts (features ETL, features validation)",
    "sagemaker": "SageMaker containers (training, processing jobs and the model servers of local endpoints)",
}


class RuntimeNotInstalled(RuntimeError):
    """A job runtime's environment is missing; the message names the command that installs it."""


def runtimes_root() -> Path:
    """Where the runtime environments live (``MLOPS_RUNTIMES``, default ``<project>/.mlops/venvs``)."""
    return Path(os.environ.get(RUNTIMES_ENV) or PROJECT_ROOT / ".mlops" / "venvs")


def runtime_python(name: str) -> str:
    """The interpreter of runtime ``name``; raises RuntimeNotInstalled naming ``make venv`` when it is missing."""
    if name not in RUNTIMES:
        raise ValueError(f"unknown job runtime {name!r}; known: {', '.join(sorted(RUNTIMES))}")
    python = runtimes_root() / name / "bin" / "python"
    if not python.exists():
        raise RuntimeNotInstalled(
            f"the {name} job runtime ({RUNTIMES[name]}) is not installed: {python} does not exist. "
            f"Run `make venv` (it installs envs/{name}/requirements.lock), or point {RUNTIMES_ENV} at the folder "
            "that holds it"
        )
    return str(python)
