"""
### mlops_features — curated features: Glue ETL, catalog, Athena EDA, validation gate

Runs when `mlops_ingest` emits the `mlops_raw_data` Asset (or by hand, with the Params form).

| task | aws | local |
|---|---|---|
| `build_features` | `GlueJobOperator` (Glue 5.0 / Spark 3.5, deferrable) on the `curate-features` job; at run time the task uploads the script to the job's S3 script location and its code bundle (the `mlops.schema` package) to `glue/libs/`, passed as `--extra-py-files` | the same PySpark script and bundle as a `local[*]` subprocess of the glue runtime, with the same `--KEY value` arguments |
| `register_catalog` | Glue Data Catalog CreateTable / UpdateTable: `raw_<table>` change logs, `features`, `features_previous` (partition projection on `split`) | the same TableInputs as DuckDB views (plus latest-state views of the raw tables) |
| `eda_query` (mapped, one per SQL file) | `AthenaOperator` (deferrable), Trino SQL, CSV at `athena-results/<QueryExecutionId>.csv` | sqlglot transpiles to DuckDB (in the task); the CSV lands at the same key |
| `eda_report` | HTML report (tables + inline SVG charts, drawn from the result CSVs on the worker without pandas) at `reports/features/<run>/eda.html` | same |
| `validate_features` | `GlueJobOperator` (deferrable) on the `validate-features` Glue 5.0 job: the Great Expectations suite runs there (GX from `--additional-python-modules`, the suite as an `--extra-py-files` bundle the task publishes); the job writes `reports/features/<run>/validation.json` and Data Docs under `data_docs/`; the worker reads only that JSON | the same StartJobRun through the local Glue stand-in (GX in the glue runtime, a subprocess) |

The ETL applies DMS CDC in commit order (latest state per key, deletes removed), joins
orders, customers, items and products, builds basket, leak-free customer-history and time
features, the terminal-status `label` and a hash-based `split`. Output is staged, then
swapped in as a new snapshot behind an atomically written pointer: a failed or repeated run
never leaves partial or duplicate data. The curated schema (columns, types, meaning) is
`include/mlops/schema/curated.py`; the lake layout and the aws names, `include/mlops/etl/README.md`.

`validate_features` is the gate: the worker reads the validation job's small result, and a
failed expectation fails the task (no retry) with one line per problem, the Data Docs link and
the fix. The `mlops_validated_features` Asset (extra: snapshot id and URI, row counts, split
sizes, label counts, Data Docs link) is emitted, and `_validated.json` moved, only on success.
Nothing heavy runs in the Airflow task process: Spark and GX run in Glue jobs; the tasks read only
the curated pointer, the EDA result CSVs and `validation.json` (boto3 on `s3://`).

Params: `sample_fraction` (deterministic hash sample of labelled orders), `min_rows` /
`max_rows` (row-count bounds of the suite), `skip_eda`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from mlops.eda import EDA_QUERIES
from mlops_airflow.assets import RAW_DATA
from mlops_airflow.dag_defaults import DEFAULT_ARGS, PIPELINE_RUN_TIMEOUT, USER_DEFINED_MACROS
from mlops_airflow.targets import step_operator

with DAG(
    dag_id="mlops_features",
    description="Raw DMS data -> curated features (Glue), catalog, Athena EDA and the validation gate",
    doc_md=__doc__,
    schedule=[RAW_DATA],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=PIPELINE_RUN_TIMEOUT,
    default_args=DEFAULT_ARGS,
    user_defined_macros=USER_DEFINED_MACROS,
    tags=["mlops", "features", "glue", "athena", "great-expectations"],
    params={
        "sample_fraction": Param(
            1.0, type="number", exclusiveMinimum=0, maximum=1, description="Share of labelled orders to keep"
        ),
        "min_rows": Param(None, type=["null", "integer"], minimum=0, description="Fewest rows; empty = suite default"),
        "max_rows": Param(None, type=["null", "integer"], minimum=1, description="Most rows; empty = suite default"),
        "skip_eda": Param(False, type="boolean", description="Skip the Athena EDA queries and report"),
    },
) as dag:
    build_features = step_operator("build_features")(
        task_id="build_features",
        run_key="{{ run_id }}",
        sample_fraction="{{ params.sample_fraction }}",
    )
    register_catalog = step_operator("register_catalog")(task_id="register_catalog")
    eda_query = (
        step_operator("eda_query")
        .partial(task_id="eda_query", run_key="{{ run_id }}", skip="{{ params.skip_eda }}")
        .expand(query_name=list(EDA_QUERIES))
    )
    eda_report = step_operator("eda_report")(
        task_id="eda_report",
        run_key="{{ run_id }}",
        skip="{{ params.skip_eda }}",
        trigger_rule="none_failed",
    )
    validate_features = step_operator("validate_features")(
        task_id="validate_features",
        run_key="{{ run_id }}",
        min_rows="{{ params.min_rows if params.min_rows is not none else '' }}",
        max_rows="{{ params.max_rows if params.max_rows is not none else '' }}",
        trigger_rule="none_failed",
    )
    build_features >> register_catalog >> eda_query >> eda_report >> validate_features
