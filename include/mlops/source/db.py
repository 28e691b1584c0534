"""Connections to the source database (SQLite by default, PostgreSQL supported) and small helpers.

`make_engine` validates the URL and checks the database answers, so a typo or a server that is
down fails at once with the URL (password hidden) and what to do. Bulk inserts go straight to the
DBAPI driver (``executemany`` on SQLite, ``COPY`` on PostgreSQL) inside the caller's transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    Numeric,
    create_engine,
    event,
    func,
    inspect,
    select,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from mlops.config import mlops_home
from mlops.source.schema import TABLES, metadata

_PG_DRIVER = "postgresql+psycopg"
_PG_ALIASES = ("postgres", "postgresql", "postgresql+psycopg")
_CONNECT_TIMEOUT_SECONDS = 5


def default_source_url() -> str:
    """The default source DB: ``sqlite:///<MLOPS_HOME>/source.db``."""
    return f"sqlite:///{mlops_home() / 'source.db'}"


def _redact(text: str) -> str:
    """Hide whatever sits between ``scheme://`` and ``@`` (user and password) in a raw URL string."""
    return re.sub(r"(://)[^@/]*@", r"\1***@", text)


def safe_url(url: URL | str) -> str:
    """The URL as a string with its password masked, fit for logs and error messages."""
    parsed = url if isinstance(url, URL) else make_url(url)
    return parsed.render_as_string(hide_password=True)


def parse_source_url(url: str) -> URL:
    """Parse and normalise a source URL; PostgreSQL URLs are pinned to the psycopg 3 driver.

    Raises ValueError for anything that is not ``sqlite:///...`` or ``postgresql[+psycopg]://...``.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError(
            f"source URL {_redact(url)!r} is not a SQLAlchemy URL; use sqlite:///path/to/source.db "
            "or postgresql+psycopg://user@host:5432/dbname"
        ) from None
    if parsed.drivername in _PG_ALIASES:
        return parsed.set(drivername=_PG_DRIVER)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return parsed
    raise ValueError(
        f"source URL {safe_url(parsed)} uses the unsupported driver {parsed.drivername!r}; "
        "the source DB must be sqlite:///... or postgresql+psycopg://..."
    )


#: SQLite's page cache per connection, in KiB (allocated as pages are touched). The 2 MiB default thrashes once
#: the indexes outgrow it: bulk inserts into a million-order source (each row also writes its change-log row)
#: spend their time re-reading index pages (BENCHMARKS.md "Source writers: SQLite page cache").
SQLITE_CACHE_KIB = 262_144


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection SQLite settings: WAL for concurrent readers, enforced foreign keys, a page cache that
    holds the indexes of a large source."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


def make_engine(url: str | None = None) -> Engine:
    """An engine for the source DB at ``url`` (default: :func:`default_source_url`), checked to answer.

    SQLite gets WAL and foreign-key pragmas on every connection and its folder is created.
    Raises ValueError naming the URL (password hidden) when it is malformed or unreachable.
    """
    parsed = parse_source_url(url or default_source_url())
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).expanduser().resolve().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ValueError(
                    f"cannot create the folder {folder} of the source DB {safe_url(parsed)}: {exc.strerror}; "
                    "point source.url (or MLOPS_HOME) at a writable place"
                ) from None
        engine = create_engine(parsed)
        event.listen(engine, "connect", _set_sqlite_pragmas)
    else:
        engine = create_engine(parsed, connect_args={"connect_timeout": _CONNECT_TIMEOUT_SECONDS})
    check_connection(engine)
    return engine


def check_connection(engine: Engine) -> None:
    """Run ``SELECT 1``; raise ValueError with the URL (password hidden) and a fix when it fails."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        hint = (
            "check the path and that its folder is writable"
            if engine.dialect.name == "sqlite"
            else "check host, port, user and database name, and that the server is running and accepts connections"
        )
        raise ValueError(f"cannot connect to the source DB {safe_url(engine.url)}: {reason}; {hint}") from None


def create_schema(engine: Engine) -> None:
    """Create the source tables and indexes that do not exist yet (safe to call repeatedly)."""
    metadata.create_all(engine, checkfirst=True)


def reset_schema(engine: Engine) -> None:
    """Drop and recreate the source tables: every row is lost."""
    metadata.drop_all(engine, checkfirst=True)
    metadata.create_all(engine)


def missing_tables(engine: Engine) -> list[str]:
    """Source tables that do not exist in the database."""
    existing = set(inspect(engine).get_table_names())
    return [name for name in TABLES if name not in existing]


def table_counts(engine: Engine) -> dict[str, int]:
    """Row count of every source table; raises ValueError if the schema was not created."""
    missing = missing_tables(engine)
    if missing:
        raise ValueError(
            f"source DB {safe_url(engine.url)} lacks tables {missing}; create them with create_schema(engine)"
        )
    with engine.connect() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(table)).scalar_one() for name, table in TABLES.items()
        }


def bulk_insert(conn: Connection, table_name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert ``rows`` (tuples in ``columns`` order) into a source table inside ``conn``'s transaction.

    Values must already be driver-ready: timestamps as :func:`epoch_to_sql` strings, numerics
    rounded to the column scale, None for NULL. Uses COPY on PostgreSQL, executemany elsewhere.
    Returns the number of rows inserted.
    """
    column_list = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        count = 0
        with conn.connection.dbapi_connection.cursor() as cursor:
            with cursor.copy(f"COPY {table_name} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        return count
    batch = rows if isinstance(rows, list) else list(rows)
    if not batch:
        return 0
    placeholders = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table_name} ({column_list}) VALUES ({placeholders})", batch)  # nosec B608  # identifiers from the project's own schema constants, values bound as parameters
    return len(batch)


def epoch_to_sql(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds (naive UTC) as ``YYYY-MM-DD HH:MM:SS.ffffff`` strings.

    That is SQLAlchemy's storage format for DateTime on SQLite (so rows written here and rows
    written through SQLAlchemy compare and sort alike), and PostgreSQL's COPY parses it.
    """
    iso = np.datetime_as_string(np.asarray(seconds, dtype=np.int64).astype("datetime64[s]"), unit="us")
    return np.strings.replace(iso, "T", " ")


def _driver_values(column: Column[Any], values: np.ndarray) -> list[Any]:
    """One column's numpy values as driver-ready Python values (NaN or None becomes NULL)."""
    if isinstance(column.type, DateTime):
        return epoch_to_sql(values).tolist()
    if isinstance(column.type, Boolean):
        return values.astype(bool).tolist()
    if values.dtype.kind == "f" and isinstance(column.type, Numeric | Integer):
        missing = np.isnan(values)
        if isinstance(column.type, Numeric):
            out = np.round(values, column.type.scale or 0).astype(object)
        else:
            out = np.where(missing, 0, values).astype(np.int64).astype(object)
        out[missing] = None
        return out.tolist()
    return values.tolist()


def insert_columns(conn: Connection, table_name: str, columns: Mapping[str, np.ndarray]) -> int:
    """Insert a batch given as one numpy array per column (timestamps as epoch seconds, NaN as NULL).

    Numerics are rounded to their column scale; strings come as object arrays with None for NULL.
    Returns the number of rows inserted.
    """
    table = TABLES[table_name]
    names = list(columns)
    unknown = [name for name in names if name not in table.c]
    if unknown:
        raise ValueError(f"table {table_name} has no columns {unknown}")
    values = [_driver_values(table.c[name], np.asarray(columns[name])) for name in names]
    return bulk_insert(conn, table_name, names, list(zip(*values, strict=True)))
