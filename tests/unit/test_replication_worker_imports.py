"""Nothing heavy on the MWAA worker: the ingest stage's aws task code imports no data library.

Run in a fresh interpreter: first what Airflow and the provider load themselves, then the ingest
operators on the aws target and the worker-side work of their tasks on small inputs (the
ReloadTables request and Param, the content queries and the evaluation of Athena-shaped answers,
the replication checks). None of it may add pandas, pyarrow, numpy, DuckDB, SQLAlchemy beyond
Airflow's own, fsspec/s3fs, GX, scikit-learn, pyspark or matplotlib.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("pandas", "pyarrow", "numpy", "duckdb", "sqlalchemy", "fsspec", "s3fs", "great_expectations", "sklearn",
         "pyspark", "matplotlib")  # fmt: skip
PROBE = """
import json, sys
heavy = {heavy}
loaded = lambda: {{m.split(".")[0] for m in sys.modules}} & set(heavy)
import airflow.sdk
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.hooks.dms import DmsHook
from airflow.providers.amazon.aws.sensors.dms import DmsTaskBaseSensor
before = loaded()

from mlops_airflow import targets
for step in ("dms_sync", "check_replication"):
    targets.step_operator(step)
from mlops.aws import dms_requests
from mlops.replication import checks, content, fresh_objects

config, lake = targets.pipeline_config(), targets.lake()
tables = checks.reload_tables_param("['orders']", config.replication.tables)
dms_requests.reload_tables_request("arn:aws:dms:eu-west-1:1:task:X", "shop", tables)
requests = content.content_requests(lake, config, {{t: {{"status"}} for t in config.replication.tables}})
content.schema_request(lake, config)
content.evaluate({{"orders": [{{"row_count": "3", "nulls__status": "0", "duplicate_keys": "0", "null_keys": "0"}}],
                   "schema": []}}, ["orders"], lake, config)
checks.check_quarantine(None, ["orders"])
print(json.dumps(sorted(loaded() - before)))
"""


def test_ingest_aws_task_code_loads_no_data_library(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "MLOPS_TARGET": "aws",
        "MLOPS_HOME": str(tmp_path),
        "MLOPS__AWS__DMS_REPLICATION_TASK_ARN": "arn:aws:dms:eu-west-1:123456789012:task:X",
        "PYTHONPATH": os.pathsep.join(str(root / p) for p in ("include", "plugins")),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=list(HEAVY))], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
