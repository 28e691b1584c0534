"""The full-load snapshot: one consistent read of the source tables, streamed as Arrow batches."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pyarrow as pa
from sqlalchemy import Connection, Engine, Table, func, select

from mlops.replication.capture import begin_snapshot
from mlops.replication.lake_io import FULL_LOAD_CHANGE_SEQ, commit_ts_text
from mlops.replication.values import Rejected, driver_arrays


@contextmanager
def snapshot(engine: Engine) -> Iterator[tuple[Connection, int]]:
    """A connection reading one consistent snapshot, and the change high-water mark it reflects.

    Changes with a sequence number above the mark were committed after the snapshot and are
    left to CDC. The snapshot's transaction is committed on exit (and rolled back on error).
    """
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect() as conn:
        conn = conn.execution_options(**options)
        try:
            mark = begin_snapshot(conn)
            yield conn, mark
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def count_rows(conn: Connection, table: Table) -> int:
    """Rows of ``table`` visible in the snapshot."""
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def full_load_batches(
    conn: Connection, table: Table, schema: pa.Schema, load_ts: datetime, chunk_rows: int, rejected: list[Rejected]
) -> Iterator[pa.RecordBatch]:
    """Stream ``table`` in primary-key order as record batches of the DMS file ``schema``.

    Rows carry Op 'I', the load time as commit timestamp (DMS's text form) and the all-zero change sequence. Rows
    with a value the lake's column cannot carry are left out and appended to ``rejected``.
    """
    load_scalar = commit_ts_text(pa.array([load_ts], pa.timestamp("us", tz="UTC")))[0]
    for columns in stream_columns(conn, table, pa.schema(list(schema)[3:]), chunk_rows, rejected=rejected):
        n = len(columns[0])
        meta = [pa.repeat("I", n), pa.repeat(load_scalar, n), pa.repeat(FULL_LOAD_CHANGE_SEQ, n)]
        yield pa.RecordBatch.from_arrays(meta + columns, schema=schema)


def stream_columns(
    conn: Connection,
    table: Table,
    columns: pa.Schema,
    chunk_rows: int,
    key_range: tuple[int, int] | None = None,
    *,
    rejected: list[Rejected],
) -> Iterator[list[pa.Array]]:
    """Stream the ``columns`` of ``table`` in primary-key order, ``chunk_rows`` rows at a time, as Arrow arrays.

    With ``key_range`` (lo, hi) only rows with ``lo <= key < hi`` (single-column keys). Plain DBAPI
    tuples are converted by Arrow in bulk (no per-value Python work); PostgreSQL reads through a
    server-side cursor, so memory stays bounded. Runs inside ``conn``'s transaction. Rows holding
    a value that does not fit ``columns`` are left out and appended to ``rejected``
    (:func:`mlops.replication.values.driver_arrays`).
    """
    statement = select(*(table.c[name] for name in columns.names)).order_by(*table.primary_key.columns)
    if key_range is not None:
        (key_column,) = table.primary_key.columns
        statement = statement.where(key_column >= int(key_range[0]), key_column < int(key_range[1]))
    fetched = pa.struct([pa.field(f.name, driver_type(f.type, conn.dialect.name)) for f in columns])
    (key,) = [c.name for c in table.primary_key.columns]
    key_index = columns.names.index(key)
    dbapi = conn.connection.dbapi_connection
    cursor = dbapi.cursor(name=f"dms_read_{table.name}") if conn.dialect.name == "postgresql" else dbapi.cursor()
    try:
        # the only bound values are the integer key bounds, so rendering them literally is safe
        cursor.execute(str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})))
        while rows := cursor.fetchmany(chunk_rows):
            arrays, bad = driver_arrays(rows, fetched, columns, table.name, key_index)
            rejected += bad
            if len(arrays[0]):
                yield arrays
    finally:
        cursor.close()


def driver_type(arrow_type: pa.DataType, dialect: str) -> pa.DataType:
    """The Arrow type of the values the DB driver returns for a column stored as ``arrow_type``.

    SQLite keeps numerics as REAL/INTEGER, booleans as 0/1 and timestamps as text; psycopg returns
    Decimal, bool and datetime, which Arrow takes as they are.
    """
    if dialect != "sqlite":
        return arrow_type
    if pa.types.is_decimal(arrow_type):
        return pa.float64()  # rounded to the scale by the cast, as SQLAlchemy does on SQLite
    if pa.types.is_boolean(arrow_type) or pa.types.is_integer(arrow_type):
        return pa.int64()
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return pa.string()
    return arrow_type
