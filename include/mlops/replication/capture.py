"""Change capture on the source DB: the local stand-in for the WAL that AWS DMS reads.

Triggers on every replicated table write a JSON row image (after-image for I/U, before-image
for D) into ``dms_change_log``; the view ``dms_changes`` adds ``change_seq``, the commit order:

- SQLite allows one writer at a time, so the AUTOINCREMENT ``capture_id`` already is commit
  order and ``change_seq`` equals it. Triggers fire per row.
- PostgreSQL allows concurrent writers, so ids are not commit order: a transaction may commit
  id 11 after id 12 was read. ``change_seq`` is therefore assigned by the reader
  (:func:`assign_change_seqs`, into ``dms_change_order``) to committed rows only, in
  ``capture_id`` order. Rows of the same key are always ordered correctly (row locks serialise
  their writers), and a late commit just gets a later sequence number instead of being skipped.
  Triggers fire per statement and log its rows in one set-based INSERT.

This module is the only place with dialect-specific SQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Boolean, Connection, DateTime, Numeric, Table, text

from mlops.replication.lake_io import CHANGE_SEQ_WIDTH, commit_ts_text
from mlops.replication.values import Rejected, decode_images

CHANGE_LOG = "dms_change_log"
CHANGE_ORDER = "dms_change_order"
CHANGES_VIEW = "dms_changes"
TRIGGER_PREFIX = "dms_capture_"
SUPPORTED_DIALECTS = ("sqlite", "postgresql")
CHANGES_SCHEMA = pa.schema(
    [
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("table", pa.string(), nullable=False),
        pa.field("op", pa.string(), nullable=False),
        pa.field("image", pa.string(), nullable=False),
        pa.field("commit_ts", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def _dialect(conn: Connection) -> str:
    name = conn.dialect.name
    if name not in SUPPORTED_DIALECTS:
        raise ValueError(
            f"change capture supports {', '.join(SUPPORTED_DIALECTS)}, not {name!r}; use SQLite or PostgreSQL"
        )
    return name


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a plain lower-case SQL identifier; capture triggers need one")
    return name


def _pk(table: Table) -> str:
    (column,) = table.primary_key.columns
    return _identifier(column.name)


def _sqlite_json_value(table: Table, column: str, ref: str) -> str:
    """A column of NEW/OLD as a JSON value, as the source holds it.

    Booleans stored as 0/1 become real JSON booleans and numbers in a Numeric column become their
    exact decimal text (SQLite prints 15 significant digits), as PostgreSQL's ``to_jsonb`` gives
    them. Anything else (text in a Numeric or Boolean column, 2 in a Boolean) is carried unchanged,
    so the reader sees the value the source holds and rejects it (:mod:`mlops.replication.values`)
    instead of a coerced ``0.00`` or ``false``.
    """
    value = f"{ref}.{_identifier(column)}"
    sql_type = table.c[column].type
    if isinstance(sql_type, Boolean):
        return (
            f"CASE WHEN typeof({value}) = 'integer' AND {value} = 1 THEN json('true') "
            f"WHEN typeof({value}) = 'integer' AND {value} = 0 THEN json('false') ELSE {value} END"
        )
    if isinstance(sql_type, Numeric) and sql_type.scale is not None:
        return f"CASE WHEN typeof({value}) IN ('integer', 'real') THEN CAST({value} AS TEXT) ELSE {value} END"
    return value


def _sqlite_ddl(table: Table) -> list[str]:
    name, pk = _identifier(table.name), _pk(table)
    ts = "strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'"

    def log(op: str, ref: str) -> str:
        image = ", ".join(f"'{c.name}', {_sqlite_json_value(table, c.name, ref)}" for c in table.columns)
        return (
            f"INSERT INTO {CHANGE_LOG} (table_name, op, pk, row_image, commit_ts) "  # nosec B608  # a constant view name
            f"VALUES ('{name}', '{op}', {ref}.{pk}, json_object({image}), {ts});"
        )

    trigger = f"{TRIGGER_PREFIX}{name}"
    body = {
        "insert": f"AFTER INSERT ON {name} BEGIN {log('I', 'NEW')} END",
        "update": f"AFTER UPDATE ON {name} WHEN OLD.{pk} IS NEW.{pk} BEGIN {log('U', 'NEW')} END",
        "rekey": f"AFTER UPDATE ON {name} WHEN OLD.{pk} IS NOT NEW.{pk} BEGIN {log('D', 'OLD')} {log('I', 'NEW')} END",
        "delete": f"AFTER DELETE ON {name} BEGIN {log('D', 'OLD')} END",
    }
    statements = []
    for suffix, definition in body.items():
        statements.append(f"DROP TRIGGER IF EXISTS {trigger}_{suffix}")
        statements.append(f"CREATE TRIGGER {trigger}_{suffix} {definition}")
    return statements


_VIEW_COLUMNS = "capture_id, table_name, op, pk, row_image, commit_ts"
_SQLITE_LOG_DDL = [
    f"""CREATE TABLE IF NOT EXISTS {CHANGE_LOG} (
        capture_id INTEGER PRIMARY KEY AUTOINCREMENT,
        table_name TEXT NOT NULL, op TEXT NOT NULL, pk TEXT, row_image TEXT NOT NULL, commit_ts TEXT NOT NULL)""",
    f"CREATE VIEW IF NOT EXISTS {CHANGES_VIEW} AS SELECT capture_id AS change_seq, {_VIEW_COLUMNS} FROM {CHANGE_LOG}",  # nosec B608  # a constant view name
]

_PG_LOG_DDL = [
    f"""CREATE TABLE IF NOT EXISTS {CHANGE_LOG} (
        capture_id BIGSERIAL PRIMARY KEY,
        table_name TEXT NOT NULL, op CHAR(1) NOT NULL, pk TEXT, row_image TEXT NOT NULL,
        commit_ts TIMESTAMP NOT NULL)""",
    f"CREATE TABLE IF NOT EXISTS {CHANGE_ORDER} (change_seq BIGINT PRIMARY KEY, capture_id BIGINT NOT NULL UNIQUE)",
    f"""CREATE OR REPLACE VIEW {CHANGES_VIEW} AS
        SELECT o.change_seq, {", ".join(f"l.{c}" for c in _VIEW_COLUMNS.split(", "))}
        FROM {CHANGE_LOG} l LEFT JOIN {CHANGE_ORDER} o ON o.capture_id = l.capture_id""",  # nosec B608  # a constant view name
]
_PG_EVENTS = {
    "insert": "REFERENCING NEW TABLE AS dms_new_rows",
    "update": "REFERENCING OLD TABLE AS dms_old_rows NEW TABLE AS dms_new_rows",
    "delete": "REFERENCING OLD TABLE AS dms_old_rows",
}


def _pg_ddl(table: Table) -> list[str]:
    """Statement-level triggers: one set-based INSERT per statement from its transition tables.

    An UPDATE's rows are matched on the key: a key only in the old rows is a D (before-image),
    only in the new rows an I, in both a U, which is the statement's net effect per key.
    """
    name, pk = _identifier(table.name), _pk(table)
    function = f"{TRIGGER_PREFIX}{name}"
    columns = f"INSERT INTO {CHANGE_LOG} (table_name, op, pk, row_image, commit_ts)"
    ddl = f"""CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $fn$
    DECLARE ts timestamp := now() AT TIME ZONE 'UTC';
    BEGIN
      IF TG_OP = 'INSERT' THEN
        {columns} SELECT '{name}', 'I', n.{pk}::text, to_jsonb(n)::text, ts FROM dms_new_rows n;
      ELSIF TG_OP = 'DELETE' THEN
        {columns} SELECT '{name}', 'D', o.{pk}::text, to_jsonb(o)::text, ts FROM dms_old_rows o;
      ELSE
        {columns}
        SELECT '{name}', CASE WHEN n.{pk} IS NULL THEN 'D' WHEN o.{pk} IS NULL THEN 'I' ELSE 'U' END,
               coalesce(n.{pk}, o.{pk})::text,
               CASE WHEN n.{pk} IS NULL THEN to_jsonb(o)::text ELSE to_jsonb(n)::text END, ts
        FROM dms_new_rows n FULL JOIN dms_old_rows o ON o.{pk} = n.{pk};
      END IF;
      RETURN NULL;
    END
    $fn$"""  # nosec B608  # identifiers checked by _identifier, no value is interpolated
    triggers = [
        f"CREATE OR REPLACE TRIGGER {function}_{event} AFTER {event.upper()} ON {name} {referencing} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        for event, referencing in _PG_EVENTS.items()
    ]
    return [ddl, *triggers]


def _trigger_names(dialect: str, table: str) -> list[str]:
    if dialect == "sqlite":
        return [f"{TRIGGER_PREFIX}{table}_{s}" for s in ("insert", "update", "rekey", "delete")]
    return [f"{TRIGGER_PREFIX}{table}_{event}" for event in _PG_EVENTS]


def install_capture(conn: Connection, tables: Sequence[Table]) -> None:
    """Create the change log and (re)create the capture triggers of ``tables``.

    Idempotent. Runs inside ``conn``'s transaction; commit it before taking the full-load snapshot.
    """
    sqlite = _dialect(conn) == "sqlite"
    statements = list(_SQLITE_LOG_DDL if sqlite else _PG_LOG_DDL)
    for table in tables:
        statements += _sqlite_ddl(table) if sqlite else _pg_ddl(table)
    for statement in statements:
        conn.execute(text(statement))


def missing_capture(conn: Connection, tables: Sequence[str]) -> list[str]:
    """Tables whose capture triggers (or the change log itself) are missing from the source DB."""
    dialect = _dialect(conn)
    if dialect == "sqlite":
        rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type IN ('trigger', 'view')"))
    else:
        rows = conn.execute(
            text(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal UNION ALL SELECT c.relname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema()"
            )
        )
    present = {row[0] for row in rows}
    if CHANGES_VIEW not in present:
        return list(tables)
    return [t for t in tables if not set(_trigger_names(dialect, t)) <= present]


def begin_snapshot(conn: Connection) -> int:
    """Start a consistent read snapshot on ``conn`` and return its change high-water mark.

    Every change with ``change_seq <= high-water`` is reflected in the snapshot and every later
    change is not. On PostgreSQL ``conn`` must use REPEATABLE READ isolation; on SQLite (WAL) a
    deferred read transaction is opened. The caller commits ``conn`` when the snapshot is read.
    """
    if _dialect(conn) == "sqlite":
        if not conn.connection.driver_connection.in_transaction:
            conn.exec_driver_sql("BEGIN")
    else:
        isolation = conn.get_isolation_level()
        if isolation not in ("REPEATABLE READ", "SERIALIZABLE"):
            raise ValueError(
                f"snapshot connection has isolation {isolation}; open it with isolation_level='REPEATABLE READ'"
            )
    assign_change_seqs(conn)
    return high_water(conn)


def assign_change_seqs(conn: Connection) -> int:
    """Give committed, unsequenced changes the next sequence numbers in capture order (PostgreSQL).

    A no-op on SQLite, where the sequence is the capture id. Returns the number of rows sequenced.
    """
    if _dialect(conn) == "sqlite":
        return 0
    result = conn.execute(
        text(
            f"""INSERT INTO {CHANGE_ORDER} (change_seq, capture_id)
            SELECT b.base + row_number() OVER (ORDER BY l.capture_id), l.capture_id
            FROM {CHANGE_LOG} l, (SELECT coalesce(max(change_seq), 0) AS base FROM {CHANGE_ORDER}) b
            WHERE NOT EXISTS (SELECT 1 FROM {CHANGE_ORDER} o WHERE o.capture_id = l.capture_id)"""  # nosec B608  # a constant view name
        )
    )
    return result.rowcount


def high_water(conn: Connection) -> int:
    """The largest assigned change sequence number (0 when nothing was captured)."""
    source = CHANGE_LOG if _dialect(conn) == "sqlite" else CHANGE_ORDER
    column = "capture_id" if source == CHANGE_LOG else "change_seq"
    return int(conn.execute(text(f"SELECT coalesce(max({column}), 0) FROM {source}")).scalar_one())  # nosec B608  # a constant view name


def read_changes(conn: Connection, after: int, *, through: int | None = None, limit: int | None = None) -> pa.Table:
    """Sequenced changes with ``after < change_seq [<= through]``, in order, at most ``limit``.

    Returns a table of :data:`CHANGES_SCHEMA` (commit times as UTC). Rows are fetched as plain
    DBAPI tuples and converted by Arrow in bulk.
    """
    sql = f"SELECT change_seq, table_name, op, row_image, commit_ts FROM {CHANGES_VIEW} WHERE change_seq > {int(after)}"  # nosec B608  # a constant view name
    if through is not None:
        sql += f" AND change_seq <= {int(through)}"
    sql += " ORDER BY change_seq"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(sql)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    stamp_type = pa.string() if _dialect(conn) == "sqlite" else pa.timestamp("us")  # SQLite keeps text
    fetched = pa.struct([*list(CHANGES_SCHEMA)[:4], pa.field("commit_ts", stamp_type)])
    columns = pa.array(rows, type=fetched).flatten()
    columns[4] = columns[4].cast(pa.timestamp("us")).cast(CHANGES_SCHEMA.field("commit_ts").type)
    return pa.Table.from_arrays(columns, schema=CHANGES_SCHEMA)


def purge_applied(conn: Connection, checkpoint: int) -> int:
    """Delete changes below ``checkpoint`` (the checkpoint row stays so sequences never restart)."""
    params = {"c": checkpoint}
    if _dialect(conn) == "sqlite":
        return conn.execute(text(f"DELETE FROM {CHANGE_LOG} WHERE capture_id < :c"), params).rowcount  # nosec B608  # a constant view name
    deleted = conn.execute(
        text(
            f"DELETE FROM {CHANGE_LOG} l USING {CHANGE_ORDER} o WHERE o.capture_id = l.capture_id AND o.change_seq < :c"  # nosec B608  # a constant view name
        ),
        params,
    ).rowcount
    conn.execute(text(f"DELETE FROM {CHANGE_ORDER} WHERE change_seq < :c"), params)  # nosec B608  # a constant view name
    return deleted


def pending_summary(conn: Connection, checkpoint: int) -> tuple[int, datetime | None]:
    """Number of captured changes not yet applied after ``checkpoint``, and the oldest one's commit time."""
    row = conn.execute(
        text(
            f"SELECT count(*) AS n, min(commit_ts) AS oldest FROM {CHANGES_VIEW} "  # nosec B608  # a constant view name
            "WHERE change_seq > :c OR change_seq IS NULL"
        ).columns(oldest=DateTime),
        {"c": checkpoint},
    ).one()
    return int(row.n), row.oldest


def pending_by_table(conn: Connection, checkpoint: int) -> dict[str, dict[str, int]]:
    """Captured changes not yet applied after ``checkpoint``, counted per table and op (``I``/``U``/``D``)."""
    rows = conn.execute(
        text(
            f"SELECT table_name, op, count(*) AS n FROM {CHANGES_VIEW} "  # nosec B608  # a constant view name
            "WHERE change_seq > :c OR change_seq IS NULL GROUP BY table_name, op"
        ),
        {"c": checkpoint},
    )
    counts: dict[str, dict[str, int]] = {}
    for table, op, n in rows:
        counts.setdefault(table, {})[str(op).strip()] = int(n)
    return counts


def pending_keys(conn: Connection, table: str, checkpoint: int) -> list[str]:
    """Primary keys (as text) of ``table`` with captured changes not yet applied after ``checkpoint``."""
    rows = conn.execute(
        text(
            f"SELECT DISTINCT pk FROM {CHANGES_VIEW} WHERE table_name = :t AND (change_seq > :c OR change_seq IS NULL)"  # nosec B608  # a constant view name
        ),
        {"t": table, "c": checkpoint},
    )
    return [row[0] for row in rows if row[0] is not None]


def complete_images(conn: Connection, table: Table, changes: pa.Table, added: Sequence[str], through: int) -> pa.Table:
    """Give images captured before the ``added`` columns reached the trigger those columns' current values.

    A SQLite trigger lists its columns, so a column added to the table is captured only once the
    replicator reinstalls the trigger (at the next batch). Changes captured until then (change
    sequence up to ``through``) lack the column; its value is looked up in the source row now, as
    DMS looks up LOB columns in limited LOB mode, so the lake's latest state matches the source.
    PostgreSQL images (``to_jsonb``) always carry every column and pass unchanged.
    """
    images = changes["image"]
    lacking = pc.invert(pc.match_substring(images, f'"{added[0]}":'))
    for name in added[1:]:
        lacking = pc.or_(lacking, pc.invert(pc.match_substring(images, f'"{name}":')))
    stale = pc.and_(pc.and_(pc.less_equal(changes["seq"], through), pc.not_equal(changes["op"], "D")), lacking)
    positions = np.flatnonzero(stale.to_numpy(zero_copy_only=False))
    if not len(positions):
        return changes
    key = _pk(table)
    parsed = [json.loads(images[int(i)].as_py()) for i in positions]
    current = _current_values(conn, table, key, added, {p[key] for p in parsed if p.get(key) is not None})
    for image in parsed:
        for name, value in zip(added, current.get(image.get(key), [None] * len(added)), strict=True):
            image.setdefault(name, value)
    patched = images.to_pylist()
    for position, image in zip(positions, parsed, strict=True):
        patched[int(position)] = json.dumps(image)
    return changes.set_column(changes.schema.get_field_index("image"), "image", pa.array(patched, pa.string()))


def _current_values(
    conn: Connection, table: Table, key: str, columns: Sequence[str], keys: set[Any]
) -> dict[Any, list[Any]]:
    """The source's current ``columns`` of the rows with ``keys``, as JSON values like the trigger writes them."""
    names, pk, source = ", ".join(_identifier(c) for c in columns), _identifier(key), _identifier(table.name)
    found: dict[Any, list[Any]] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        marks = ", ".join(f":k{i}" for i in range(len(chunk)))
        rows = conn.execute(
            text(f"SELECT {pk}, {names} FROM {source} WHERE {pk} IN ({marks})"),  # nosec B608  # a constant view name
            {f"k{i}": k for i, k in enumerate(chunk)},
        )
        for row in rows:
            found[row[0]] = [_json_value(table.c[c].type, v) for c, v in zip(columns, row[1:], strict=True)]
    return found


def _json_value(sql_type: Any, value: Any) -> Any:
    """A raw SQLite value as the capture trigger puts it into a row image."""
    if isinstance(sql_type, Boolean) and isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(sql_type, Numeric) and isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, ".15g")
    return value


def changes_table(changes: pa.Table, schema: pa.Schema, table: str, key: str) -> tuple[pa.Table, list[Rejected]]:
    """One table's changes as a table of the DMS file ``schema`` (Op, commit ts, change seq, columns).

    Changes whose row image holds a value the lake's column cannot carry are left out and
    returned as rejections (:func:`mlops.replication.values.decode_images`).
    """
    source = pa.schema(list(schema)[3:])
    decoded = decode_images(changes["image"], source, table, key=key, ops=changes["op"], seqs=changes["seq"])
    kept = changes.take(pa.array(decoded.kept, type=pa.int64())) if decoded.rejected else changes
    seq = pc.utf8_lpad(kept["seq"].cast(pa.string()), width=CHANGE_SEQ_WIDTH, padding="0")
    arrays = [kept["op"], commit_ts_text(kept["commit_ts"]), seq, *decoded.rows.columns]
    return pa.Table.from_arrays(arrays, schema=schema), decoded.rejected
