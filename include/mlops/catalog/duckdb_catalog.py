"""The local Glue Data Catalog: a DuckDB database whose tables are views over the lake's Parquet.

:func:`apply_table_inputs` executes the same Glue ``TableInput`` dicts the aws target sends
with CreateTable/UpdateTable (:mod:`mlops.aws.glue_requests`), inside a DuckDB schema named
like the Glue database:

- ``raw_<table>``: every full-load and CDC row of a DMS table folder, its ``YYYY/MM/DD/`` CDC
  folders included (as registered in Glue; Athena reads a table location's sub-folders too);
- ``<table>``: its latest state (last change per primary key, deletes removed; local only,
  a convenience for ad-hoc queries);
- ``features`` / ``features_previous``: the current / previous curated snapshot, Hive-partitioned
  by ``split``.

Views re-list their files at query time, so new CDC files show up without re-registering; a
new features snapshot is registered by re-applying its TableInput (what UpdateTable does on
aws). Each applied TableInput is also recorded in ``_catalog.tables`` as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops.config import mlops_home
from mlops.lake import local_path

META_SCHEMA = "_catalog"


def local_catalog_path() -> Path:
    """The DuckDB file that plays the Glue Data Catalog locally (``<MLOPS_HOME>/catalog/glue_catalog.duckdb``)."""
    return mlops_home() / "catalog" / "glue_catalog.duckdb"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_sql(database: str, table_input: dict[str, Any]) -> list[str]:
    """DuckDB statements that create the view(s) of one Glue TableInput."""
    name = table_input["Name"]
    folder = local_path(table_input["StorageDescriptor"]["Location"])
    qualified = f"{_quote(database)}.{_quote(name)}"
    if table_input.get("PartitionKeys"):
        levels = ["*"] * len(table_input["PartitionKeys"])
        source = f"read_parquet({_literal(str(folder.joinpath(*levels, '*.parquet')))}, hive_partitioning = true)"
        return [f"CREATE OR REPLACE VIEW {qualified} AS SELECT * FROM {source}"]  # nosec B608  # identifiers from the project's own schema constants, values bound as parameters
    source = f"read_parquet({_literal(str(folder / '**' / '*.parquet'))}, union_by_name = true)"  # + date folders
    statements = [f"CREATE OR REPLACE VIEW {qualified} AS SELECT * FROM {source}"]  # nosec B608  # identifiers from the project's own schema constants, values bound as parameters
    key = table_input.get("Parameters", {}).get("primary_key")
    if key and name.startswith("raw_"):
        latest = f"{_quote(database)}.{_quote(name.removeprefix('raw_'))}"
        statements.append(
            f"CREATE OR REPLACE VIEW {latest} AS "  # nosec B608  # identifiers from the project's own schema constants, values bound as parameters
            f"SELECT * EXCLUDE (Op, dms_commit_ts, dms_change_seq, _rn) FROM ("
            f"SELECT *, row_number() OVER (PARTITION BY {_quote(key)} "
            f"ORDER BY dms_change_seq DESC, CAST(dms_commit_ts AS TIMESTAMP) DESC) AS _rn FROM {qualified}) "
            f"WHERE _rn = 1 AND Op <> 'D'"
        )
    return statements


def _has_data(table_input: dict[str, Any]) -> bool:
    folder = local_path(table_input["StorageDescriptor"]["Location"])
    if table_input.get("PartitionKeys"):
        return any(folder.glob("/".join(["*"] * len(table_input["PartitionKeys"])) + "/*.parquet"))
    return any(folder.rglob("*.parquet"))


def apply_table_inputs(db_path: Path, database: str, table_inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """Create or replace the views of ``table_inputs`` in ``db_path``; return what was registered and skipped."""
    import duckdb

    db_path.parent.mkdir(parents=True, exist_ok=True)
    registered, skipped = [], []
    with duckdb.connect(str(db_path)) as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(database)}")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {META_SCHEMA}.tables "
            "(database VARCHAR, name VARCHAR, location VARCHAR, table_input JSON, PRIMARY KEY (database, name))"
        )
        for table_input in table_inputs:
            if not _has_data(table_input):
                skipped.append(table_input["Name"])
                continue
            con.execute("BEGIN")
            for statement in view_sql(database, table_input):
                con.execute(statement)
            con.execute(
                f"INSERT OR REPLACE INTO {META_SCHEMA}.tables VALUES (?, ?, ?, ?)",
                [database, table_input["Name"], table_input["StorageDescriptor"]["Location"], json.dumps(table_input)],
            )
            con.execute("COMMIT")
            registered.append(table_input["Name"])
        views = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name", [database]
        ).fetchall()
    return {"database": database, "registered": registered, "skipped": skipped, "views": [v[0] for v in views]}


def table_row_counts(db_path: Path, database: str) -> dict[str, int]:
    """Row count of every view in ``database`` (a smoke check that each resolves)."""
    import duckdb

    with duckdb.connect(str(db_path), read_only=True) as con:
        names = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [database]
            ).fetchall()
        ]
        return {n: con.execute(f"SELECT count(*) FROM {_quote(database)}.{_quote(n)}").fetchone()[0] for n in names}  # nosec B608  # identifiers from the project's own schema constants, values bound as parameters
