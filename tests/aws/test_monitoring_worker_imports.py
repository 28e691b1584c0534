"""The monitoring stage's worker side on the aws target imports nothing heavy.

MWAA workers only orchestrate: the mlops_monitor and mlops_model_quality task bodies and the ``mlops``
modules they call on the aws path may use the standard library, Airflow, the provider, boto3,
pydantic and yaml, never pandas, numpy, pyarrow, fsspec/s3fs, matplotlib, sklearn, duckdb,
sqlalchemy, great_expectations or pyspark: training data and capture content are read by the
processing jobs. A fresh interpreter (:mod:`tests.aws.monitoring_worker_steps`) runs every
worker-side step on an ``s3://`` lake (moto in-process) and reports the heavy modules the steps
added to ``sys.modules`` (Airflow itself loads fsspec and sqlalchemy; those were there before).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = "pandas,numpy,pyarrow,fsspec,s3fs,matplotlib,sklearn,scipy,duckdb,sqlalchemy,great_expectations,pyspark"


@pytest.mark.slow
def test_worker_side_steps_on_aws_import_nothing_heavy(tmp_path, fake_aws_credentials):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("include", "plugins", ".")),
        "MLOPS_HOME": str(tmp_path),
        "MLOPS_TARGET": "aws",
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.aws.monitoring_worker_steps", HEAVY],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # the steps really ran: training data from the validated pointer, the baseline swapped in, then cached
    assert report["source"] == "s3://lake/curated/features/snapshots/s1"
    assert report["baseline_created"] is True and report["cached_plan"] is None
    assert report["folders"] == ["AllTraffic/2026/03/01/10"] and report["sensor_found"]
    assert report["status"] == "drifted"
    assert report["quality_fire"] is True and report["quality_refused_unregistered"] is True  # mlops_model_quality
    assert [(row["pk"], row["minute"], row["predictions"]) for row in report["aggregates"]] == [
        ("orders#AllTraffic", "2026-03-01T10:10Z", 3.0)
    ]  # the window's real-time aggregates, queried from DynamoDB
    assert report["heavy"] == [], f"worker-side monitoring steps imported {report['heavy']}"
