"""Requests the features stage makes to Athena (the EDA queries).

``StartQueryExecution`` is built from the config and the run: the query text is the
Trino-dialect file from :mod:`mlops.eda` with the catalog's database and tables filled in,
the ``ClientRequestToken`` derives from the run (so a retried task does not start a second
query), and results land as ``<athena-results>/<QueryExecutionId>.csv`` (the workgroup
enforces that output location; the request states the same one). The local stand-in
(:mod:`mlops.eda.runner`) executes the same dict with DuckDB.
"""

from __future__ import annotations

import hashlib
from typing import Any

from mlops.aws.glue_requests import FEATURES_TABLE, PREVIOUS_FEATURES_TABLE, stack_names
from mlops.config import PipelineConfig
from mlops.eda.queries import render_query
from mlops.lake import Lake


def query_tables(database: str) -> dict[str, str]:
    """The placeholders of the EDA SQL files -> fully qualified table names."""
    return {
        "features": f'"{database}"."{FEATURES_TABLE}"',
        "features_previous": f'"{database}"."{PREVIOUS_FEATURES_TABLE}"',
    }


def client_request_token(run_key: str, query_name: str) -> str:
    """Idempotency token (32..128 chars) of one query in one run."""
    return hashlib.sha256(f"{run_key}/{query_name}".encode()).hexdigest()[:64]


def start_query_execution_request(
    lake: Lake, config: PipelineConfig, query_name: str, run_key: str, database: str | None = None
) -> dict[str, Any]:
    """Athena StartQueryExecution for one EDA query of one run."""
    names = stack_names(config)
    database = database or names.database
    return {
        "QueryString": render_query(query_name, query_tables(database)),
        "ClientRequestToken": client_request_token(run_key, query_name),
        "QueryExecutionContext": {"Database": database, "Catalog": "AwsDataCatalog"},
        "ResultConfiguration": {"OutputLocation": lake.athena_results() + "/"},
        "WorkGroup": names.workgroup,
    }
