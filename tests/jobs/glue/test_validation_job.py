"""The validation Glue job in the glue runtime: what it writes for a passing and a failing suite, the
staged swap of the report, its arguments, and that its code bundle imports on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.etl.synthetic_raw import write_raw
from mlops.schema.snapshots import LakeFiles
from mlops.validation import features_job
from mlops.validation.bundle import code_bundle
from tests.unit.test_etl_fixtures import build_curated_lake

RUN = "scheduled__2026-01-01T00-00-00-00-00"


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    """A lake whose curated features are the pandas twin's output on synthetic raw data, swapped in."""
    root = tmp_path_factory.mktemp("lake")
    write_raw(root / "raw" / "dms" / "shop", 800, seed=11)
    build_curated_lake(root, root / "raw" / "dms" / "shop", "snap1")
    return root


def _args(root: Path, run_key: str = RUN, **bounds: str) -> dict[str, str]:
    return {
        "JOB_NAME": "mlops-dev-validate-features",
        "curated_uri": (root / "curated" / "features").as_uri(),
        "report_uri": (root / "reports" / "features" / run_key).as_uri(),
        "staging_uri": (root / "_staging" / "reports" / "features").as_uri(),
        "run_key": run_key,
        "min_rows": bounds.get("min_rows", ""),
        "max_rows": bounds.get("max_rows", ""),
    }


def test_passing_suite_writes_the_result_and_data_docs(lake):
    result = features_job.run_validation(_args(lake))
    report = lake / "reports" / "features" / RUN
    assert json.loads((report / "validation.json").read_text()) == result
    assert result["success"] and result["failed"] == 0 and result["failures"] == []
    assert result["snapshot_id"] == "snap1" and result["snapshot_uri"].endswith("/snapshots/snap1")
    assert result["counts"]["rows"] == result["rows"] == sum(result["counts"]["splits"].values())
    assert sum(result["counts"]["labels"].values()) == result["rows"]
    assert len(result["expectations"]) == result["evaluated"] > 50
    assert result["data_docs"] == (report / "data_docs" / "index.html").as_uri()
    assert (report / "data_docs" / "index.html").exists()
    assert list((report / "data_docs" / "validations").rglob("*.html")), "the validation result page is rendered"
    assert not (lake / "_staging" / "reports" / "features" / RUN).exists(), "staging is emptied after the swap"


def test_failing_suite_is_a_result_not_a_job_failure(lake, capsys):
    run_key = "bad"
    assert features_job.main(["validate_features.py", *_cli(_args(lake, run_key, min_rows="1000000"))]) == 0
    result = json.loads((lake / "reports" / "features" / run_key / "validation.json").read_text())
    assert not result["success"] and result["failed"] == len(result["failures"]) == 1
    assert result["failures"][0].startswith("expect_table_row_count_to_be_between: ")
    assert "rows, expected 1000000..10000000" in result["failures"][0]
    failed = [e for e in result["expectations"] if not e["success"]]
    assert [(e["expectation"], e["column"]) for e in failed] == [("expect_table_row_count_to_be_between", None)]
    assert (lake / "reports" / "features" / run_key / "data_docs" / "index.html").exists(), "docs for a failure too"
    assert "suite curated_features FAILED" in capsys.readouterr().out


def test_a_rerun_replaces_the_report_and_leaves_no_staging(lake):
    report = lake / "reports" / "features" / "rerun"
    features_job.run_validation(_args(lake, "rerun", min_rows="1000000"))
    stale = report / "data_docs" / "stale.html"
    stale.write_text("from an earlier attempt")
    result = features_job.run_validation(_args(lake, "rerun"))
    assert result["success"] and json.loads((report / "validation.json").read_text())["success"]
    assert not stale.exists(), "the Data Docs folder is swapped as a whole"
    assert not list((lake / "_staging").rglob("*.html"))


def test_no_snapshot_fails_the_job_with_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the features ETL"):
        features_job.run_validation(_args(tmp_path))
    assert LakeFiles().read_text((tmp_path / "reports" / "features" / RUN / "validation.json").as_uri()) is None


def test_row_bounds_come_from_the_arguments():
    assert features_job.suite_bounds({"min_rows": "", "max_rows": ""}) == features_job.SuiteBounds()
    bounds = features_job.suite_bounds({"min_rows": "5", "max_rows": "70"})
    assert (bounds.min_rows, bounds.max_rows) == (5, 70)


def _cli(args: dict[str, str]) -> list[str]:
    return [part for key, value in args.items() if value for part in (f"--{key}", value)]


def test_code_bundle_runs_the_job_on_its_own(lake, tmp_path):
    """The zip alone (no include/ on the path) imports the job: no pydantic, SQLAlchemy or Airflow needed."""
    data, key = code_bundle()
    assert key.startswith("glue/libs/mlops_validation-") and code_bundle() == (data, key), "deterministic"
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(data)
    script = tmp_path / "job" / "validate_features.py"
    script.parent.mkdir()
    script.write_bytes(Path(features_job.__file__).read_bytes())
    env = {**os.environ, "PYTHONPATH": str(bundle)}
    command = [sys.executable, str(script), *_cli(_args(lake, "bundled"))]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=script.parent, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "suite curated_features PASSED" in done.stdout
    probe = "import mlops.validation.runner as r, sys; print(r.__file__); print('pydantic' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.stdout.split() == [f"{bundle}/mlops/validation/runner.py", "False"], done.stderr
