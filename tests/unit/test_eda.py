"""The Athena EDA queries (Trino -> DuckDB, Athena CSV) and the report rendered from their CSVs without pandas."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from test_etl_fixtures import build_curated_lake

from mlops.aws.athena_requests import start_query_execution_request
from mlops.aws.glue_requests import catalog_table_inputs, stack_names
from mlops.catalog.duckdb_catalog import apply_table_inputs
from mlops.config import load_config
from mlops.eda import EDA_QUERIES
from mlops.eda.queries import SQL_DIR, query_text, to_duckdb
from mlops.eda.report import TITLES, build_report, cell
from mlops.eda.runner import execute_locally
from mlops.etl.synthetic_raw import write_raw
from mlops.lake import Lake, local_path
from mlops.schema.curated import CURATED_COLUMNS


@pytest.fixture
def fake_s3(fake_aws_credentials_env):
    """An in-process moto S3 with one bucket (no network)."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield s3, "lake"


@pytest.fixture
def fake_aws_credentials_env(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    config = load_config(environ={})
    lake = Lake(root=root.as_uri(), layout=config.lake)
    raw = root / "raw" / "dms" / "shop"
    write_raw(raw, 1500, seed=2)
    build_curated_lake(root, raw, "run1")
    pointer = build_curated_lake(root, raw, "run2")
    db = root.parent / "catalog.duckdb"
    apply_table_inputs(db, stack_names(config).database, catalog_table_inputs(lake, config, pointer))
    return {"config": config, "lake": lake, "db": db, "pointer": pointer}


def test_every_sql_file_is_listed():
    assert sorted(p.stem for p in SQL_DIR.glob("*.sql")) == sorted(EDA_QUERIES)


def test_null_rates_covers_every_curated_column():
    assert all(f"{column}_null_rate" in query_text("null_rates") for column in CURATED_COLUMNS)


@pytest.mark.parametrize("name", EDA_QUERIES)
def test_query_transpiles_runs_and_writes_athena_csv(catalog, name):
    request = start_query_execution_request(catalog["lake"], catalog["config"], name, "scheduled__2025-01-01")
    assert "${" not in request["QueryString"]
    assert to_duckdb(request["QueryString"])
    response = execute_locally(request, catalog["db"])
    execution = response["QueryExecution"]
    assert execution["Status"]["State"] == "SUCCEEDED" and response["RowCount"] > 0
    output = execution["ResultConfiguration"]["OutputLocation"]
    assert output == catalog["lake"].athena_results(f"{execution['QueryExecutionId']}.csv")
    with local_path(output).open() as handle:
        assert handle.readline().startswith('"'), "Athena quotes every CSV field"
    again = execute_locally(request, catalog["db"])
    assert again["QueryExecution"]["QueryExecutionId"] == execution["QueryExecutionId"], "ids derive from the run"


def test_results_are_right_and_report_has_charts(catalog):
    lake, config = catalog["lake"], catalog["config"]
    uris = {}
    for name in EDA_QUERIES:
        request = start_query_execution_request(lake, config, name, "run2")
        uris[name] = execute_locally(request, catalog["db"])["QueryExecution"]["ResultConfiguration"]["OutputLocation"]
    with local_path(uris["class_balance"]).open() as handle:
        rows = list(csv.DictReader(handle))
    assert sum(int(r["row_count"]) for r in rows) == catalog["pointer"]["rows"]
    per_split = {s: sum(int(r["row_count"]) for r in rows if r["split"] == s) for s in ("train", "validation", "test")}
    assert per_split == catalog["pointer"]["splits"]
    with local_path(uris["change_since_previous"]).open() as handle:
        change = {r["metric"]: r for r in csv.DictReader(handle)}
    assert float(change["row_count"]["abs_change"]) == 0.0, "same raw data twice: nothing changed"
    report_uri = lake.reports("features", "run2", "eda.html")
    summary = build_report(uris, report_uri, {"run_key": "run2", "rows": catalog["pointer"]["rows"]})
    text = Path(local_path(report_uri)).read_text()
    charts = re.findall(r"<svg .*?</svg>", text, flags=re.S)
    assert len(charts) == 4, "class balance, null rates, top categories, label rate by segment"
    for chart in charts:
        ElementTree.fromstring(chart)  # each chart is well-formed SVG
    assert "<img" not in text and "<script" not in text, "self-contained: no images, no scripts"
    for split, count in catalog["pointer"]["splits"].items():
        assert f"{split} / " in text, f"the class balance chart has a column for {split}"
        assert sum(int(r["row_count"]) for r in rows if r["split"] == split) == count
    assert all(f"<h2>{title}</h2>" in text for title in TITLES.values()), "one section per query"
    assert summary["queries"]["class_balance"] == len(rows)


def test_report_reads_and_writes_s3_through_the_client_passed_in(fake_s3):
    s3, bucket = fake_s3
    rows = "\n".join(['"split","label","row_count","pct_of_split"', '"train","delivered","8","80.0"',
                      '"train","returned","2","20.0"'])  # fmt: skip
    s3.put_object(Bucket=bucket, Key="athena-results/q1.csv", Body=rows.encode())
    summary = build_report(
        {"class_balance": f"s3://{bucket}/athena-results/q1.csv"},
        f"s3://{bucket}/reports/features/run1/eda.html",
        {"run_key": "run1"},
        s3,
    )
    assert summary == {"report_uri": f"s3://{bucket}/reports/features/run1/eda.html", "queries": {"class_balance": 2}}
    page = s3.get_object(Bucket=bucket, Key="reports/features/run1/eda.html")["Body"].read().decode()
    assert page.count("<svg ") == 1 and "train / returned: 2" in page


def test_cells_keep_integers_and_round_other_numbers():
    assert [cell("1500"), cell("0.123456"), cell("1234567.5"), cell(""), cell("<b>")] == [
        "1500", "0.1235", "1.235e+06", "", "&lt;b&gt;"
    ]  # fmt: skip
