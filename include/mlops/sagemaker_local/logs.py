"""Running the container process, and taking metrics from its log as SageMaker does."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def parse_metrics(
    log_text: str, definitions: Sequence[dict[str, str]], timestamp: datetime | None = None
) -> list[dict[str, Any]]:
    """FinalMetricDataList: the last value each MetricDefinition's regex (group 1) matched in the log."""
    stamp = (timestamp or datetime.now(UTC)).isoformat()
    found = []
    for definition in definitions:
        try:
            pattern = re.compile(definition["Regex"])
        except re.error as exc:
            raise ValueError(f"MetricDefinition {definition['Name']!r} has an invalid Regex: {exc}") from None
        values = [m.group(1) for m in pattern.finditer(log_text)]
        numbers = []
        for value in values:
            try:
                numbers.append(float(value))
            except (TypeError, ValueError):
                continue
        if numbers:
            found.append({"MetricName": definition["Name"], "Value": numbers[-1], "Timestamp": stamp})
    return found


def container_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without PYTHONPATH (the bundle must be self-sufficient), tagged as ours, plus ``extra``."""
    from mlops.processes import owned_env

    env = {k: v for k, v in owned_env().items() if k != "PYTHONPATH" and not k.startswith("SM_")}
    env.update({"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    env.update(extra)
    return env


def run_logged(
    command: Sequence[str], *, cwd: Path, env: dict[str, str], log_file: Path, timeout: float | None
) -> tuple[int, str]:
    """Run ``command`` in the container runtime, teeing its output to ``log_file`` and our stdout.

    ``python``/``python3`` is the sagemaker runtime's interpreter (the container's Python).
    Returns (exit code, log text).
    """
    from mlops.runtimes import runtime_python

    program = runtime_python("sagemaker") if command[0] in ("python", "python3") else command[0]
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [program, *command[1:]],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert process.stdout is not None
        timer = threading.Timer(timeout, process.kill) if timeout else None
        if timer:
            timer.start()
        try:
            for line in process.stdout:
                log.write(line)
                sys.stdout.write(line)
            returncode = process.wait()
        finally:
            if timer:
                timer.cancel()
    return returncode, log_file.read_text()
