"""The local Glue stand-in: the features script as a subprocess of the glue runtime, Glue-style.

Also the Spark job against its pandas twin on the real replicator's output (source DB -> local
DMS): the job runs through the stand-in in the glue runtime, the twin here (the in-process Spark
tests are in tests/jobs/glue).
"""

from __future__ import annotations

import json
import textwrap
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from test_etl_fixtures import write_fixture, write_replicated

from mlops.etl import build_features as job
from mlops.etl import pandas_features
from mlops.etl.bundle import features_bundle, publish_locally
from mlops.etl.local_glue import GlueJobFailedError, job_run_id, run_job_locally
from mlops.schema import curated

SCRIPT = Path(job.__file__)


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("lake") / "raw" / "dms" / "shop")


def _request(root: Path, raw: Path, run_key: str = "manual__2025-04-01T00:00:00+00:00") -> dict:
    arguments = {
        "--JOB_NAME": "mlops-build-features",
        "--raw_uri": raw.as_uri(),
        "--curated_uri": (root / "curated" / "features").as_uri(),
        "--staging_uri": (root / "_staging" / "curated" / "features").as_uri(),
        "--run_key": run_key,
        "--shuffle_partitions": "2",
        "--extra-py-files": publish_locally(features_bundle(), root / "artifacts"),  # the mlops.schema package
    }
    return {"JobName": "mlops-build-features", "Arguments": arguments}


def test_local_glue_runs_the_script_as_a_subprocess(raw, tmp_path):
    request = _request(tmp_path, raw)
    lines: list[str] = []
    result = run_job_locally(request, SCRIPT, log=lines.append)
    assert result["JobRun"]["JobRunState"] == "SUCCEEDED"
    assert result["JobRun"]["Id"] == job_run_id(request)
    assert result["Result"]["rows"] == 7
    assert any(line.startswith("built 7 rows") for line in lines)


def test_spark_job_matches_the_pandas_twin_on_replicated_data(tmp_path):
    replicated = write_replicated(tmp_path / "replicated")  # the real replicator's output (contract check)
    pointer = run_job_locally(_request(tmp_path / "lake", replicated), SCRIPT, log=lambda _: None)["Result"]
    spark_out = pd.read_parquet(Path(pointer["uri"].removeprefix("file://")))
    spark_out["split"] = spark_out["split"].astype(str)
    spark_out = spark_out.sort_values("order_id").reset_index(drop=True)
    pandas_out = pandas_features.run(replicated)
    assert len(spark_out) == len(pandas_out) == pointer["rows"] > 0
    for column in curated.CURATED_COLUMNS:
        left, right = spark_out[column], pandas_out[column]
        if column == "order_ts":
            assert (left.astype("datetime64[us]") == right.astype("datetime64[us]")).all()
        elif left.dtype.kind in "fi":
            pd.testing.assert_series_equal(left.astype(float), right.astype(float), check_names=False, rtol=1e-9)
        else:
            assert (left.astype(str) == right.astype(str)).all(), column


def test_local_glue_failure_carries_the_log_tail(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text(
        textwrap.dedent("""
        import sys
        print("reading raw tables")
        sys.exit("AnalysisException: Path does not exist: raw/orders")
    """)
    )
    with pytest.raises(GlueJobFailedError, match="Path does not exist"):
        run_job_locally({"JobName": "j", "Arguments": {"--run_key": "r"}}, script, log=lambda _: None)
    assert json.dumps(curated.curated_types())  # the schema contract is serialisable


def test_job_sees_its_extra_py_files_and_nothing_of_the_caller(tmp_path, monkeypatch):
    """As on Glue: the script's folder and --extra-py-files are on the path; the Airflow env's packages are not."""
    bundle = tmp_path / "libs.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("shipped/__init__.py", "VALUE = 'from the bundle'\n")
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent("""
        import importlib.util, os, sys
        import shipped
        print("SHIPPED", shipped.VALUE)
        print("CALLER", [m for m in ("mlops", "mlops_airflow", "airflow", "sqlalchemy") if importlib.util.find_spec(m)])
        print("SCRIPT_DIR_ONLY", os.listdir(os.path.dirname(os.path.abspath(__file__))) == ["job.py"])
    """)
    )
    root = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("PYTHONPATH", f"{root / 'include'}:{root / 'plugins'}")  # the caller's path (Makefile)
    lines: list[str] = []
    run_job_locally({"JobName": "j", "Arguments": {"--extra-py-files": bundle.as_uri()}}, script, log=lines.append)
    assert "SHIPPED from the bundle" in lines
    assert "CALLER []" in lines, "the caller's PYTHONPATH does not leak in; the glue runtime has no Airflow"
    assert "SCRIPT_DIR_ONLY True" in lines, "the script runs from its own job folder"
    with pytest.raises(FileNotFoundError, match="publish the job's code bundle"):
        run_job_locally({"JobName": "j", "Arguments": {"--extra-py-files": (tmp_path / "nope.zip").as_uri()}}, script)
