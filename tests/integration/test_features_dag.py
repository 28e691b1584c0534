"""mlops_features end to end on the local target, through dag.test().

Generated source -> mlops_ingest (DMS stand-in) -> mlops_features: the Glue script on local
Spark, the DuckDB catalog, the EDA queries and report, and the validation Glue job (GX in the
glue runtime) whose result the gate reads before it emits the validated-features Asset with
counts. Then, on the same lake, a run with the EDA skipped succeeds, and a gate failure fails the run, emits
nothing, and leaves the validated pointer where the good run put it. One test, so the three runs share one ingest.
"""

from __future__ import annotations

import json

import pytest

from mlops.config import load_config
from mlops.eda import EDA_QUERIES
from mlops.lake import Lake, local_path
from mlops.source.db import make_engine
from mlops.source.generator import generate
from mlops_airflow import targets
from mlops_tools.dag_runner import run_dag

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


@pytest.fixture
def ingested(tmp_path, monkeypatch):
    """A fresh MLOPS_HOME whose lake holds the replicated source (one mlops_ingest run)."""
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    monkeypatch.setenv("MLOPS_TARGET", "local")
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    targets.pipeline_config.cache_clear()
    generate(make_engine(None), orders=2000, seed=21)
    log = tmp_path / "dags.log"
    ingest = run_dag("mlops_ingest", log_path=log)
    assert ingest.succeeded, ingest.error
    yield Lake.for_target(load_config(), "local"), log
    targets.pipeline_config.cache_clear()


def test_features_dag_builds_explores_validates_and_emits_then_a_failed_gate_emits_nothing(ingested):
    lake, log = ingested
    results = local_path(lake.athena_results())
    before = set(results.glob("*.csv"))  # ingest's own Athena content checks ran in the fixture
    run = run_dag("mlops_features", log_path=log)
    assert run.succeeded, run.error
    extra = run.asset_extras["mlops_validated_features"]
    built = run.xcoms["build_features"]
    assert extra["rows"] == built["rows"] > 1500 and extra["splits"] == built["splits"]
    assert extra["snapshot_id"] == built["snapshot_id"] and extra["curated_uri"].startswith(lake.curated("features"))
    assert sum(extra["splits"].values()) == extra["rows"]
    validated = local_path(lake.curated("features") + "/_validated.json")
    assert validated.exists()
    assert local_path(extra["data_docs"]).exists()
    assert len(set(results.glob("*.csv")) - before) == len(EDA_QUERIES), "one result per EDA query"
    report = local_path(run.xcoms["eda_report"]["report_uri"])
    assert report.read_text().count("<svg ") == 4
    result = json.loads((local_path(extra["data_docs"]).parents[1] / "validation.json").read_text())
    assert result["success"] and result["snapshot_id"] == extra["snapshot_id"], "the Glue job's result"

    skipped = run_dag("mlops_features", conf={"skip_eda": True}, log_path=log)
    assert skipped.succeeded, skipped.error
    assert skipped.task_states["eda_report"] == "skipped"
    pointer = json.loads(validated.read_text())
    bad = run_dag("mlops_features", conf={"skip_eda": True, "min_rows": 10_000_000}, log_path=log)
    assert bad.state == "failed"
    assert bad.task_states["eda_report"] == "skipped"
    assert bad.task_states["validate_features"] == "failed", "the gate runs after a skipped EDA"
    assert "expect_table_row_count_to_be_between: " in (bad.error or ""), bad.error
    assert "rows, expected 10000000..10000000" in bad.error and "Data Docs: file://" in bad.error
    assert bad.asset_extras == {}, "a failed gate emits no validated-features event"
    assert json.loads(validated.read_text()) == pointer, "the validated pointer did not move"
