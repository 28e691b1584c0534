"""Lake content checks at ingest: NULL rates, duplicate keys and the schema of the replicated tables.

Decision: the checks are SQL over the catalog's raw tables (``raw_<table>``: every full-load and
CDC row DMS wrote), one Trino text per table (``sql/lake_content.sql``) and one over
``information_schema`` (``sql/lake_schema.sql``). The same StartQueryExecution requests run on
both targets: **Athena** on aws, where the MWAA worker only registers the raw tables when
missing, starts the queries, waits and reads one small CSV per query (:func:`run_on_athena`);
the **local Athena stand-in** (DuckDB over the lake's Parquet, :mod:`mlops.eda.runner`) locally
(:func:`mlops.replication.content_local.run_locally`). Neither the worker nor the check reads a
table. DMS's own validation (the stand-in's locally) cannot see these problems: a source with
60 % NULLs in a column replicates "correctly", and a duplicated file is not a row that differs.

Each table fails, naming the table and the column, when:

- a column's NULL share in the latest state exceeds its bound (NOT NULL source columns allow
  none; nullable ones ``replication.max_null_rates["<table>.<column>"]``, else
  ``replication.max_null_rate``);
- a (key, change sequence) pair occurs more than once, or a change row has no key;
- a column the catalog should expose is missing or has another type (added columns pass);
- its query fails: an unreadable object is named by its key (Athena's ``HIVE_CANNOT_OPEN_SPLIT``
  / ``HIVE_BAD_DATA``, DuckDB's "No magic bytes found" both carry the object's path).

Standard library only: the aws worker imports this module.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from string import Template
from typing import Any

from mlops.aws.glue_requests import DMS_COLUMN_TYPES, RAW_COLUMNS, create_table_request, raw_table_input, stack_names
from mlops.config import PipelineConfig
from mlops.lake import Lake
from mlops.replication.checks import CheckResult, reload_fix
from mlops.schema.curated import RAW_TABLES

SQL_DIR = Path(__file__).parent / "sql"
SCHEMA_QUERY = "schema"
#: Source columns that may hold NULL (the rest are NOT NULL in mlops.source.schema; a test keeps them equal).
NULLABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("birth_year",),
    "products": ("weight_kg",),
    "orders": ("discount_code",),
    "order_items": ("discount_pct",),
}
_OBJECT = re.compile(r"""(s3://[^\s'"]+?\.parquet|/[^\s'"]+?\.parquet)""")
_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def content_query(database: str, table: str, present: Collection[str] | None = None) -> str:
    """The Trino SQL of one table's content row (``sql/lake_content.sql``), over the expected columns ``present``."""
    key = RAW_TABLES[table]
    columns = [c for c, _ in RAW_COLUMNS[table] if present is None or c in present]
    counts = "".join(f"\n  count_if({_quote(c)} IS NULL) AS {_quote('nulls__' + c)}," for c in columns)
    return Template((SQL_DIR / "lake_content.sql").read_text()).substitute(
        null_counts=counts, key=_quote(key), raw_table=f"{_quote(database)}.{_quote('raw_' + table)}"
    )


def schema_query(database: str, tables: Sequence[str]) -> str:
    """The Trino SQL listing the catalog's columns of the raw tables (``sql/lake_schema.sql``)."""
    names = ", ".join(f"'raw_{t}'" for t in tables)
    return Template((SQL_DIR / "lake_schema.sql").read_text()).substitute(database=database, tables=names)


def checked_tables(config: PipelineConfig) -> list[str]:
    """The replicated tables the content checks know the expected columns of."""
    return [t for t in config.replication.tables if t in RAW_COLUMNS]


def _request(lake: Lake, config: PipelineConfig, sql: str) -> dict[str, Any]:
    names = stack_names(config)
    return {
        "QueryString": sql,
        "QueryExecutionContext": {"Database": names.database, "Catalog": "AwsDataCatalog"},
        "ResultConfiguration": {"OutputLocation": lake.athena_results() + "/"},
        "WorkGroup": names.workgroup,
    }


def schema_request(lake: Lake, config: PipelineConfig) -> dict[str, Any]:
    """StartQueryExecution of the schema query; it runs first, so the content queries read only columns there."""
    return _request(lake, config, schema_query(stack_names(config).database, checked_tables(config)))


def content_requests(
    lake: Lake, config: PipelineConfig, present: Mapping[str, Collection[str]] | None = None
) -> dict[str, dict[str, Any]]:
    """StartQueryExecution per replicated table over its expected columns (those ``present``, when given)."""
    database = stack_names(config).database
    return {
        table: _request(lake, config, content_query(database, table, None if present is None else present[table]))
        for table in checked_tables(config)
    }


def present_columns(schema_rows: Sequence[Mapping[str, str]], tables: Sequence[str]) -> dict[str, set[str]]:
    """The expected columns each raw table has, from the schema query's rows."""
    found: dict[str, set[str]] = {table: set() for table in tables}
    for row in schema_rows:
        table = row["table_name"].removeprefix("raw_")
        if table in found:
            found[table].add(row["column_name"].lower())
    return found


def null_bound(config: PipelineConfig, table: str, column: str) -> float:
    """The NULL share allowed in ``table.column``: 0 for NOT NULL columns, else the configured bound."""
    if column not in NULLABLE_COLUMNS.get(table, ()):
        return 0.0
    return config.replication.max_null_rates.get(f"{table}.{column}", config.replication.max_null_rate)


def evaluate_content(table: str, row: Mapping[str, str], config: PipelineConfig) -> list[CheckResult]:
    """The NULL-rate and key checks of one table from its content row."""
    rows = int(row.get("row_count") or 0)
    results = []
    for column, _ in RAW_COLUMNS[table]:
        nulls = int(row.get(f"nulls__{column}") or 0)
        bound = null_bound(config, table, column)
        rate = nulls / rows if rows else 0.0
        ok = rate <= bound
        where = f"table {table} column {column}"
        if ok:
            message = f"{where}: {rate:.1%} NULL (at most {bound:.0%})"
        elif bound == 0:
            message = (
                f"{where}: {nulls:,} NULL value(s) in the lake, but the column is NOT NULL in the source: "
                f"a lake file was damaged or written by something else than DMS; {reload_fix([table])}"
            )
        else:
            message = (f"{where}: {rate:.1%} NULL in the lake ({nulls:,} of {rows:,} rows), more than the {bound:.0%} "
                       f"allowed; find where the source loses the values (raise replication.max_null_rates"
                       f"['{table}.{column}'] only if that share is right)")  # fmt: skip
        results.append(CheckResult("null_rate", table, f"NullRate[{column}]", round(rate, 4), bound, ok, message))
    duplicates, null_keys = int(row.get("duplicate_keys") or 0), int(row.get("null_keys") or 0)
    results.append(
        CheckResult(
            "duplicate_keys", table, "DuplicateKeys", duplicates + null_keys, 0, not (duplicates or null_keys),
            f"table {table}: every change row has its own (key, change sequence)" if not (duplicates or null_keys)
            else f"table {table}: {duplicates:,} (key, change sequence) pair(s) occur more than once and "
            f"{null_keys:,} change row(s) have no key ({RAW_TABLES[table]}): files of two loads are mixed or a "
            f"file was written twice; {reload_fix([table])}",
        )
    )  # fmt: skip
    return results


def normal_type(data_type: str) -> str:
    """A column type as Hive/Glue spells it, whether DuckDB, Athena or Glue reported it."""
    text = data_type.strip().lower().replace(" ", "")
    if text.startswith(("varchar", "char", "string")):
        return "string"
    if text.startswith("timestamp"):
        return "timestamp"
    return {"int": "integer", "int2": "smallint", "int4": "integer", "int8": "bigint", "bool": "boolean"}.get(
        text, text
    )


def evaluate_schema(rows: Sequence[Mapping[str, str]], tables: Sequence[str]) -> list[CheckResult]:
    """Each raw table exposes the DMS columns and the source's columns with their types (extra columns pass)."""
    found: dict[str, dict[str, str]] = {}
    for row in rows:
        found.setdefault(row["table_name"], {})[row["column_name"].lower()] = normal_type(row["data_type"])
    results = []
    for table in tables:
        columns = found.get(f"raw_{table}", {})
        expected = [(name.lower(), kind) for name, kind in DMS_COLUMN_TYPES + RAW_COLUMNS[table]]
        missing = [name for name, _ in expected if name not in columns]
        retyped = [
            f"{n} is {columns[n]}, not {k}" for n, k in expected if n in columns and columns[n] != normal_type(k)
        ]
        added = [name for name in columns if name not in dict(expected)]
        ok = not missing and not retyped
        message = (
            f"table raw_{table} has the expected columns" + (f" (and added ones: {', '.join(added)})" if added else "")
            if ok
            else f"table raw_{table}: " + "; ".join(
                ([f"columns missing: {', '.join(missing)}"] if missing else []) + retyped
            ) + " (the catalog and the features job expect them). If the source changed these columns, the "
            "pipeline's schema must follow (mlops.source.schema, mlops.aws.glue_requests.RAW_COLUMNS); if not, "
            f"the lake's files are damaged: {reload_fix([table])}"
        )  # fmt: skip
        results.append(CheckResult("schema", table, "Columns", len(columns), len(expected), ok, message))
    return results


def failed_query(table: str | None, reason: str, lake_root: str) -> CheckResult:
    """A content query that failed; an unreadable object is named by its key under the lake."""
    match = _OBJECT.search(reason)
    key = _lake_key(match.group(1), lake_root) if match else None
    if key:
        message = (f"lake object {key} is unreadable ({reason.splitlines()[0][:300]}); the file is damaged or not "
                   f"Parquet: delete it, then {reload_fix([table] if table else [])}")  # fmt: skip
    else:
        message = f"the content query of {table or 'the raw tables'} failed: {reason.splitlines()[0][:500]}"
    return CheckResult("content_query", table, "QueryState", "FAILED", "SUCCEEDED", False, message)


def _lake_key(path: str, lake_root: str) -> str:
    """``raw/dms/shop/orders/LOAD00000001.parquet`` for an object path or URI under the lake root."""
    if path.startswith("s3://"):
        return path.removeprefix("s3://").partition("/")[2]
    root = lake_root.removeprefix("file://").rstrip("/") + "/"
    return path.removeprefix(root)


def read_csv(text: str) -> list[dict[str, str]]:
    """Rows of an Athena result CSV (header row, every value quoted)."""
    return list(csv.DictReader(io.StringIO(text)))


def evaluate(results: Mapping[str, list[dict[str, str]] | str], tables: Sequence[str], lake: Lake,
             config: PipelineConfig) -> list[CheckResult]:  # fmt: skip
    """Every content check from the queries' result rows (or their failure reason, as a string)."""
    checks: list[CheckResult] = []
    for table in tables:
        outcome = results.get(table, "the query did not run")
        if isinstance(outcome, str):
            checks.append(failed_query(table, outcome, lake.root))
        elif outcome:
            checks += evaluate_content(table, outcome[0], config)
    schema = results.get(SCHEMA_QUERY, "the query did not run")
    if isinstance(schema, str):
        checks.append(failed_query(None, schema, lake.root))
    else:
        checks += evaluate_schema(schema, tables)
    return checks


def run_on_athena(
    athena: Any, s3: Any, glue: Any, lake: Lake, config: PipelineConfig, *, poll_seconds: float = 2.0,
    timeout_seconds: float = 600.0,
) -> list[CheckResult]:  # fmt: skip
    """Run the content queries on Athena with the boto3 clients given (the MWAA worker's: no table is read here).

    Raw tables missing from the Glue catalog (before the first features run) are created first;
    the schema query runs before the content queries, which then read only the columns there.
    """
    database, tables = stack_names(config).database, checked_tables(config)
    for table in tables:
        try:
            glue.get_table(DatabaseName=database, Name=f"raw_{table}")
        except glue.exceptions.EntityNotFoundException:
            glue.create_table(**create_table_request(database, raw_table_input(lake, config, table)))
    deadline = time.monotonic() + timeout_seconds
    results = _athena_results(athena, s3, {SCHEMA_QUERY: schema_request(lake, config)}, deadline, poll_seconds)
    schema = results[SCHEMA_QUERY]
    present = present_columns(schema if isinstance(schema, list) else [], tables)
    results |= _athena_results(athena, s3, content_requests(lake, config, present), deadline, poll_seconds)
    return evaluate(results, tables, lake, config)


def _athena_results(
    athena: Any, s3: Any, requests: Mapping[str, dict[str, Any]], deadline: float, poll_seconds: float
) -> dict[str, list[dict[str, str]] | str]:
    """Start the queries, wait for each, and read each result CSV (or its failure reason) from S3."""
    started = {name: athena.start_query_execution(**request)["QueryExecutionId"] for name, request in requests.items()}
    results: dict[str, list[dict[str, str]] | str] = {}
    while True:
        for name, query_id in started.items():
            if name in results:
                continue
            execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            state = execution["Status"]["State"]
            if state == "SUCCEEDED":
                bucket, _, key = execution["ResultConfiguration"]["OutputLocation"].removeprefix("s3://").partition("/")
                results[name] = read_csv(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
            elif state in _TERMINAL:
                results[name] = execution["Status"].get("StateChangeReason") or state
        if len(results) == len(started):
            return results
        if time.monotonic() > deadline:
            return {name: results.get(name, "still running at the content checks' deadline") for name in started}
        time.sleep(poll_seconds)
