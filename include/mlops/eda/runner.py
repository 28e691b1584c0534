"""The local Athena stand-in: executes a ``StartQueryExecution`` request with DuckDB.

The Trino-dialect ``QueryString`` is transpiled with sqlglot, run against the local catalog
(:mod:`mlops.catalog.duckdb_catalog`) with the request's database as the default schema, and
its result written as Athena writes it: ``<OutputLocation>/<QueryExecutionId>.csv``, every
value quoted, a header row, empty for NULL. The return value is shaped like Athena's
``GetQueryExecution`` response.
"""

from __future__ import annotations

import csv
import time
import uuid
from pathlib import Path
from typing import Any

from mlops.eda.queries import to_duckdb
from mlops.lake import local_path

_NAMESPACE = uuid.UUID("6f1d3c2e-5b7a-4e0f-9a61-2d8c4b9e7f10")


class QueryFailedError(RuntimeError):
    """The query failed; the message carries the query id, DuckDB's error and the transpiled SQL."""


def local_query_execution_id(token: str) -> str:
    """The QueryExecutionId this stand-in assigns: a UUID, deterministic from the request's token."""
    return str(uuid.uuid5(_NAMESPACE, token))


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def execute_locally(request: dict[str, Any], db_path: Path) -> dict[str, Any]:
    """Run one StartQueryExecution request against the DuckDB catalog; write the CSV; return GetQueryExecution."""
    import duckdb

    query_id = local_query_execution_id(request.get("ClientRequestToken") or request["QueryString"])
    output_uri = request["ResultConfiguration"]["OutputLocation"].rstrip("/") + f"/{query_id}.csv"
    database = request["QueryExecutionContext"]["Database"]
    sql = to_duckdb(request["QueryString"])
    started = time.monotonic()
    with duckdb.connect(str(db_path), read_only=True) as con:
        con.execute(f"SET schema = '{database}'")
        try:
            cursor = con.execute(sql)
        except duckdb.Error as error:
            raise QueryFailedError(f"query {query_id} failed: {error}\n-- DuckDB SQL:\n{sql}") from error
        header = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    target = local_path(output_uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([_csv_value(v) for v in row] for row in rows)
    tmp.replace(target)
    elapsed_ms = int(1000 * (time.monotonic() - started))
    return {
        "QueryExecution": {
            "QueryExecutionId": query_id,
            "Query": request["QueryString"],
            "StatementType": "DML",
            "ResultConfiguration": {"OutputLocation": output_uri},
            "QueryExecutionContext": request["QueryExecutionContext"],
            "Status": {"State": "SUCCEEDED"},
            "Statistics": {"EngineExecutionTimeInMillis": elapsed_ms, "TotalExecutionTimeInMillis": elapsed_ms},
            "WorkGroup": request.get("WorkGroup", "primary"),
        },
        "RowCount": len(rows),
    }
