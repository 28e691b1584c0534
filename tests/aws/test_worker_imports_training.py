"""On aws the MWAA worker only orchestrates: the training and serving stages' worker paths import no
pandas, numpy, pyarrow, sklearn, ... (the brief's rule; the jobs and the model servers do that work)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_aws_worker_paths_of_training_and_serving_stay_light(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("include", "plugins", "tools", ".")),
        "MLOPS_TARGET": "aws",
        "MLOPS_HOME": str(tmp_path / "mlops-home"),
        "MLOPS__AWS__REGION": "eu-west-1",
        "MLOPS__TRAINING__ROLE_ARN": "arn:aws:iam::123456789012:role/mlops-sagemaker",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.aws.training_worker_paths"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # the paths really ran: bundle published, cache entry found, gate passed, version registered and deployable
    assert result["cache_hit"] is True and result["version"] == 1 and result["map"] == 0.71
    assert result["deployed_version"] == 1 and result["endpoint"]
    assert result["loaded_by_worker_paths"] == [], (
        f"worker-side code of the training/serving stages imported {result['loaded_by_worker_paths']}; "
        "move that import into the job (or the local stand-in's execute)"
    )
