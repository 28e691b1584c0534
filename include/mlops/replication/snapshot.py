"""The full-load snapshot: one consistent read of the source tables, streamed as Arrow batches."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pyarrow as pa
from sqlalchemy import Connection, Engine, Table, func, select

from mlops.replication.capture import begin_snapshot
from mlops.replication.lake_io import COMMIT_TS_TYPE, FULL_LOAD_CHANGE_SEQ


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
    conn: Connection, table: Table, schema: pa.Schema, load_ts: datetime, chunk_rows: int
) -> Iterator[pa.RecordBatch]:
    """Stream ``table`` in primary-key order as record batches of the DMS file ``schema``.

    Rows carry Op 'I', the load time as commit timestamp and the all-zero change sequence.
    """
    load_scalar = pa.scalar(load_ts, type=COMMIT_TS_TYPE)
    for columns in stream_columns(conn, table, pa.schema(list(schema)[3:]), chunk_rows):
        n = len(columns[0])
        meta = [pa.repeat("I", n), pa.repeat(load_scalar, n), pa.repeat(FULL_LOAD_CHANGE_SEQ, n)]
        yield pa.RecordBatch.from_arrays(meta + columns, schema=schema)


def stream_columns(
    conn: Connection, table: Table, columns: pa.Schema, chunk_rows: int, key_range: tuple[int, int] | None = None
) -> Iterator[list[pa.Array]]:
    """Stream the ``columns`` of ``table`` in primary-key order, ``chunk_rows`` rows at a time, as Arrow arrays.

    With ``key_range`` (lo, hi) only rows with ``lo <= key < hi`` (single-column keys). Plain DBAPI
    tuples are converted by Arrow in bulk (no per-value Python work); PostgreSQL reads through a
    server-side cursor, so memory stays bounded. Runs inside ``conn``'s transaction.
    """
    statement = select(*(table.c[name] for name in columns.names)).order_by(*table.primary_key.columns)
    if key_range is not None:
        (key,) = table.primary_key.columns
        statement = statement.where(key >= int(key_range[0]), key < int(key_range[1]))
    fetched = pa.struct([pa.field(f.name, driver_type(f.type, conn.dialect.name)) for f in columns])
    dbapi = conn.connection.dbapi_connection
    cursor = dbapi.cursor(name=f"dms_read_{table.name}") if conn.dialect.name == "postgresql" else dbapi.cursor()
    try:
        # the only bound values are the integer key bounds, so rendering them literally is safe
        cursor.execute(str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})))
        while rows := cursor.fetchmany(chunk_rows):
            yield _arrays(rows, fetched, columns, table.name)
    finally:
        cursor.close()


def _arrays(rows: list[tuple], fetched: pa.StructType, columns: pa.Schema, table: str) -> list[pa.Array]:
    """Driver rows as one Arrow array per column."""
    try:
        values = pa.array(rows, type=fetched).flatten()
        return [v if v.type == f.type else v.cast(f.type) for v, f in zip(values, columns, strict=True)]
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(
            f"table {table} holds values that do not fit its declared column types ({exc}); "
            "fix those rows in the source DB"
        ) from None


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
