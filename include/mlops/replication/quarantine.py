"""The quarantine (dead-letter table) of changes and rows the lake cannot take, and its open entries.

A row of the full load or a CDC change whose value the lake's column type cannot carry
(:class:`mlops.replication.values.Rejected`) is not written to the table's files. Replication
goes on without it, and the row goes to the quarantine, modelled on DMS's
``awsdms_apply_exceptions`` control table (DMS's ``DataErrorPolicy: LOG_ERROR`` logs such
records and continues): Parquet files under ``<raw prefix>/awsdms_control/awsdms_apply_exceptions/``,
one per batch, outside the schema folder so no reader of a replicated table sees them.

While a quarantined change is *open* (no later change of the same key was applied, and the
table was not reloaded since) the lake misses it, and the ingest check fails naming it. Fixing
the row in the source makes a new change that supersedes it; a reload clears the table's entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import pyarrow as pa

from mlops.replication.lake_io import LakeFS
from mlops.replication.values import Rejected

CONTROL_SCHEMA = "awsdms_control"
QUARANTINE_TABLE = "awsdms_apply_exceptions"
#: Open entries kept per table with their description; more are only counted (a reload clears them).
MAX_OPEN_ENTRIES = 1000
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("TASK_NAME", pa.string()),
        pa.field("TABLE_OWNER", pa.string()),
        pa.field("TABLE_NAME", pa.string()),
        pa.field("ERROR_TIME", pa.timestamp("us", tz="UTC")),
        pa.field("PHASE", pa.string()),
        pa.field("OP", pa.string()),
        pa.field("CHANGE_SEQ", pa.int64()),
        pa.field("KEY", pa.string()),
        pa.field("COLUMN_NAME", pa.string()),
        pa.field("VALUE", pa.string()),
        pa.field("ERROR", pa.string()),
        pa.field("STATEMENT", pa.string()),
    ]
)


def quarantine_rows(
    rejected: Sequence[Rejected], *, task: str, schema: str, phase: str, at: datetime, keys: Mapping[str, str]
) -> pa.Table:
    """The rejections as rows of the quarantine table (``keys`` maps each table to its primary key)."""
    columns = {
        "TASK_NAME": [task] * len(rejected),
        "TABLE_OWNER": [schema] * len(rejected),
        "TABLE_NAME": [r.table for r in rejected],
        "ERROR_TIME": [at] * len(rejected),
        "PHASE": [phase] * len(rejected),
        "OP": [r.op for r in rejected],
        "CHANGE_SEQ": [r.change_seq for r in rejected],
        "KEY": [r.key for r in rejected],
        "COLUMN_NAME": [r.column for r in rejected],
        "VALUE": [r.value for r in rejected],
        "ERROR": [r.describe(keys.get(r.table, "key")) for r in rejected],
        "STATEMENT": [r.image for r in rejected],
    }
    return pa.table(columns, schema=QUARANTINE_SCHEMA)


def write_quarantine(lake_fs: LakeFS, final_uri: str, staging_uri: str, rows: pa.Table) -> str:
    """Write the batch's quarantine file (staged, then moved; a redone batch overwrites it); return its URI."""
    lake_fs.write_atomically(staging_uri, final_uri, QUARANTINE_SCHEMA, rows.to_batches())
    return final_uri


def add_open(
    open_entries: dict[str, str], overflow: int, rejected: Iterable[Rejected], primary_key: str
) -> tuple[dict[str, str], int]:
    """Record rejections as open entries ``{key: "<seq>|<description>"}``; beyond the cap only count them."""
    entries = dict(open_entries)
    for item in rejected:
        if item.key in entries or len(entries) < MAX_OPEN_ENTRIES:
            entries[item.key] = f"{item.change_seq if item.change_seq is not None else 0}|{item.describe(primary_key)}"
        else:
            overflow += 1
    return entries, overflow


def resolve_open(open_entries: dict[str, str], applied: Mapping[str, int]) -> dict[str, str]:
    """Open entries left after changes were applied (``applied``: key -> its last applied change seq)."""
    return {
        key: entry
        for key, entry in open_entries.items()
        if key not in applied or applied[key] <= int(entry.split("|", 1)[0])
    }


def describe_open(open_entries: Mapping[str, str]) -> list[str]:
    """The descriptions of open entries, in key order."""
    return [entry.split("|", 1)[1] for _, entry in sorted(open_entries.items())]
