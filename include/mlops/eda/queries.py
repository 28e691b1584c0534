"""The EDA SQL files: kept in Trino dialect (what Athena runs), rendered with table names, transpiled for DuckDB."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

from mlops.eda import EDA_QUERIES

SQL_DIR = Path(__file__).parent / "sql"


@cache
def query_text(name: str) -> str:
    """The Trino-dialect text of one EDA query, with ``${features}`` / ``${features_previous}`` placeholders."""
    if name not in EDA_QUERIES:
        raise KeyError(f"unknown EDA query {name!r}; known: {', '.join(EDA_QUERIES)}")
    return (SQL_DIR / f"{name}.sql").read_text()


def render_query(name: str, tables: dict[str, str]) -> str:
    """The query with its table placeholders replaced by (quoted, qualified) table names."""
    try:
        return Template(query_text(name)).substitute(tables)
    except KeyError as missing:
        raise KeyError(f"EDA query {name!r} needs table {missing} in {sorted(tables)}") from None


def to_duckdb(trino_sql: str) -> str:
    """Transpile Trino SQL to DuckDB SQL with sqlglot; unsupported constructs raise, never pass silently."""
    import sqlglot
    from sqlglot.errors import ErrorLevel

    statements = sqlglot.transpile(trino_sql, read="trino", write="duckdb", unsupported_level=ErrorLevel.RAISE)
    if len(statements) != 1:
        raise ValueError(f"an EDA query must be one statement, got {len(statements)}")
    return statements[0]
