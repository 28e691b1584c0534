"""Nothing heavy on the MWAA worker: the features stage's aws task code imports no data library.

Run in a fresh interpreter: first what Airflow and the provider load themselves (Airflow brings
SQLAlchemy and fsspec), then every module the features operators use on the aws target, and the
worker-side work of those tasks (requests, code bundle, pointer and result reads, the gate, the EDA
report) on small ``file://`` inputs. None of it may add pandas, pyarrow, numpy, DuckDB,
fsspec/s3fs, GX, scikit-learn, pyspark or matplotlib.
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
import json, sys, tempfile
from pathlib import Path
heavy = {heavy}
loaded = lambda: {{m.split(".")[0] for m in sys.modules}} & set(heavy)
import airflow.sdk
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.amazon.aws.operators.glue import GlueJobOperator
from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook
before = loaded()

from mlops_airflow import targets
from mlops_airflow.operators import features as ops
for step in ("glue_etl", "catalog_register", "athena_eda", "eda_report", "validate_features"):
    targets.step_operator(step)
from mlops.aws import athena_requests, glue_requests
from mlops.eda.report import build_report
from mlops.etl.build_features import LakeFiles
from mlops.validation.bundle import code_bundle
from mlops.validation.features_gate import run_gate

# what the aws tasks do on the worker, on file:// stand-ins of their small inputs
root = Path(tempfile.mkdtemp())
config, lake = targets.pipeline_config(), targets.lake()
glue_requests.catalog_table_inputs(lake, config, None)
athena_requests.start_query_execution_request(lake, config, "class_balance", "r")
data, key = code_bundle()
glue_requests.start_validation_job_run_request(lake, config, "r", "s3://b/" + key, "5", "")
pointer = {{"snapshot_id": "s", "uri": "s3://b/s", "rows": 1, "splits": {{}}, "labels": {{}}}}
result = {{"suite": "x", "success": True, "evaluated": 1, "failed": 0, "rows": 1, "failures": [],
          "snapshot_id": "s", "data_docs": "d"}}
(root / "curated").mkdir(); (root / "curated" / "_current.json").write_text(json.dumps(pointer))
(root / "report").mkdir(); (root / "report" / "validation.json").write_text(json.dumps(result))
run_gate((root / "curated").as_uri(), (root / "report").as_uri(), "r", LakeFiles(), log=lambda _: None)
(root / "q.csv").write_text('"split","label","row_count"\\n"train","delivered","3"\\n')
build_report({{"class_balance": (root / "q.csv").as_uri()}}, (root / "eda.html").as_uri(), {{}})
print(json.dumps(sorted(loaded() - before)))
"""


def test_features_aws_task_code_imports_no_data_library():
    root = Path(__file__).resolve().parents[2]
    path = os.pathsep.join(str(root / p) for p in ("include", "plugins", "tools"))
    env = {**os.environ, "MLOPS_TARGET": "aws", "PYTHONPATH": path}
    probe = PROBE.format(heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=root, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
