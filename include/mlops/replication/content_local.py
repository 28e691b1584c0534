"""The lake content checks run by the local Athena stand-in (DuckDB over the lake's Parquet).

The same StartQueryExecution requests as on aws (:mod:`mlops.replication.content`), executed by
:func:`mlops.eda.runner.execute_locally` against the local Glue catalog, after the raw tables are
registered there (re-registering also brings columns added to the source into the catalog's views).
"""

from __future__ import annotations

from typing import Any

from mlops.aws.glue_requests import raw_table_input, stack_names
from mlops.config import PipelineConfig
from mlops.lake import Lake, local_path
from mlops.replication.checks import CheckResult
from mlops.replication.content import (
    SCHEMA_QUERY,
    checked_tables,
    content_requests,
    evaluate,
    present_columns,
    read_csv,
    schema_request,
)


def run_locally(lake: Lake, config: PipelineConfig) -> list[CheckResult]:
    """Register the raw tables in the local catalog and run the queries with the local Athena stand-in."""
    from mlops.catalog.duckdb_catalog import apply_table_inputs, local_catalog_path
    from mlops.eda.runner import execute_locally

    def run(request: dict[str, Any]) -> list[dict[str, str]] | str:
        try:
            execution = execute_locally(request, local_catalog_path())["QueryExecution"]
        except Exception as exc:  # the query's failure, as Athena reports FAILED with a reason
            return str(exc)
        return read_csv(local_path(execution["ResultConfiguration"]["OutputLocation"]).read_text())

    database, tables = stack_names(config).database, checked_tables(config)
    results: dict[str, list[dict[str, str]] | str] = {}
    for table in tables:
        try:
            apply_table_inputs(local_catalog_path(), database, [raw_table_input(lake, config, table)])
        except Exception as exc:  # DuckDB reads every footer here: a damaged file fails with its path
            results[table] = str(exc)
    results[SCHEMA_QUERY] = run(schema_request(lake, config))
    present = present_columns(results[SCHEMA_QUERY] if isinstance(results[SCHEMA_QUERY], list) else [], tables)
    for table, request in content_requests(lake, config, present).items():
        results.setdefault(table, run(request))
    return evaluate(results, tables, lake, config)
