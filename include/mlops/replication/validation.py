"""DMS data validation, as the local DMS stand-in performs it after each full load or CDC batch.

What DMS does for an S3 target (compare each source row with its copy in the lake, partition by
partition, and report per table in DescribeTableStatistics), done over one consistent read of the
source (:func:`validate_table` runs inside the caller's snapshot):

1. Keys with captured changes that are not in the lake yet are *pending*: they cannot match yet,
   so they are left out on both sides and counted as ``ValidationPendingRecords``.
2. A source row holding a value the lake's column type cannot carry (text in a numeric column,
   say; its change went to the quarantine) cannot match either: it is a failed record that names
   the key, the column and the value, and is left out of the comparison on both sides.
3. Every other row is hashed over all replicated columns on both sides, and the key-range digests
   of source and lake are compared (:mod:`mlops.replication.reconcile`).
4. Each key range whose digests differ is read again from both sides and compared row by row;
   every differing record is a failed record (``ValidationFailedRecords``), described by its key
   and the columns that differ. Once a table has ``FailureMaxCount`` failed records its remaining
   differing ranges are not compared and their rows are suspended
   (``ValidationSuspendedRecords``), as DMS suspends validation.

The table's ``ValidationState`` is ``Mismatched records``, else ``Suspended records``, else
``Pending records``, else ``Validated``; ``Error`` when its lake files cannot be compared.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Table

from mlops.replication.capture import pending_keys
from mlops.replication.lake_io import source_schema
from mlops.replication.reconcile import (
    UNFIT_VALUE,
    RangeDigests,
    RowDiff,
    diff_rows,
    digests_of,
    integer_keys,
    lake_row_hashes,
    latest_state,
    row_hashes,
)
from mlops.replication.snapshot import stream_columns
from mlops.replication.values import Rejected

VALIDATED = "Validated"
PENDING_RECORDS = "Pending records"
MISMATCHED_RECORDS = "Mismatched records"
SUSPENDED_RECORDS = "Suspended records"
VALIDATION_ERROR = "Error"
MAX_REPORTED_FAILURES = 20
DETAIL_EXAMPLES = 3
CHUNK_ROWS = 200_000


@dataclass(frozen=True)
class TableValidation:
    """One table's validation outcome, in the terms of DMS's table statistics."""

    table: str
    state: str
    pending: int = 0
    failed: int = 0
    suspended: int = 0
    details: str = ""
    failures: tuple[str, ...] = ()


def table_key(table: Table) -> str:
    """The single-column primary key of ``table`` (as the source defines it)."""
    (column,) = table.primary_key.columns
    return column.name


def source_digests(
    conn: Connection,
    table: Table,
    partition_size: int,
    skip: np.ndarray,
    rejected: list[Rejected],
    chunk_rows: int = CHUNK_ROWS,
) -> RangeDigests:
    """Key-range digests of the source table over every column, leaving out the keys in ``skip``.

    Rows the lake's types cannot carry are left out too, and appended to ``rejected``.
    """
    columns = source_schema(table)
    key_index = columns.names.index(table_key(table))
    digests = RangeDigests(partition_size)
    for arrays in stream_columns(conn, table, columns, chunk_rows, rejected=rejected):
        keys = integer_keys(arrays[key_index], table.name)
        keep = ~np.isin(keys, skip)
        digests.add(keys[keep], row_hashes(arrays)[keep])
    return digests


def _range_diffs(
    conn: Connection, table: Table, lake_table_uri: str, key_range: tuple[int, int], skip: np.ndarray
) -> list[RowDiff]:
    """The differing records of one key range, read again from the source and the lake."""
    key = table_key(table)
    columns = source_schema(table)
    batches = stream_columns(conn, table, columns, CHUNK_ROWS, key_range, rejected=[])
    chunks = [pa.Table.from_arrays(arrays, schema=columns) for arrays in batches]
    source = pa.concat_tables(chunks) if chunks else columns.empty_table()
    lake = latest_state(lake_table_uri, key, key_range=key_range, schema=columns)
    skipped = pa.array(skip, type=pa.int64())
    source = source.filter(pc.invert(pc.is_in(source[key].cast(pa.int64()), value_set=skipped)))
    lake = lake.filter(pc.invert(pc.is_in(lake[key].cast(pa.int64()), value_set=skipped)))
    return diff_rows(source, lake, key)


def validate_table(
    conn: Connection,
    table: Table,
    lake_table_uri: str,
    *,
    checkpoint: int,
    partition_size: int,
    failure_max_count: int,
) -> TableValidation:
    """Validate ``table``'s latest state in the lake against the source as ``conn``'s snapshot sees it.

    ``checkpoint`` is the last change applied to the lake: later changes make their keys pending.
    """
    key = table_key(table)
    rejected: list[Rejected] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"validate-{table.name}") as lake_reader:
        # the lake's side (Parquet and DuckDB, mostly outside the GIL) runs beside the source's (SQLite)
        lake_rows = lake_reader.submit(lake_row_hashes, lake_table_uri, key, source_schema(table))
        try:
            pending = np.array(sorted({int(k) for k in pending_keys(conn, table.name, checkpoint)}), dtype=np.int64)
            source = source_digests(conn, table, partition_size, pending, rejected)
            unfit = _unfit_records(rejected, pending)
            # rows the source pass could not take are not in its digests: leave their keys out of the lake's too
            skip = np.union1d(pending, np.array(sorted({int(r.key) for r in rejected}), dtype=np.int64))
            lake = digests_of(*lake_rows.result(), partition_size, skip)
        except (FileNotFoundError, ValueError) as exc:
            return TableValidation(table.name, VALIDATION_ERROR, details=str(exc))
    diffs: list[RowDiff] = list(unfit)
    suspended = 0
    for index in source.differing(lake):
        if len(diffs) >= failure_max_count:
            suspended += max(source.rows.get(index, 0), lake.rows.get(index, 0))
            continue
        diffs += _range_diffs(conn, table, lake_table_uri, source.key_range(index), skip)
    return _outcome(table.name, key, len(pending), sorted(diffs, key=lambda d: d.key), suspended, failure_max_count)


def _unfit_records(rejected: list[Rejected], pending: np.ndarray) -> list[RowDiff]:
    """Failed records for source rows holding values the lake cannot carry (pending keys excepted)."""
    by_key: dict[int, list[Rejected]] = {}
    for item in rejected:
        by_key.setdefault(int(item.key), []).append(item)
    waiting = set(pending.tolist())
    return [
        RowDiff(key, UNFIT_VALUE, tuple(r.column for r in items),
                "; ".join(f"{r.column} holds {r.value}, {r.reason}" for r in items))
        for key, items in sorted(by_key.items())
        if key not in waiting
    ]  # fmt: skip


def _outcome(
    table: str, key: str, pending: int, diffs: list[RowDiff], suspended: int, failure_max_count: int
) -> TableValidation:
    """The table's validation state, counters and details from what the comparison found."""
    described = [d.describe(key) for d in diffs]
    details = []
    if diffs:
        more = f"; and {len(diffs) - DETAIL_EXAMPLES} more" if len(diffs) > DETAIL_EXAMPLES else ""
        details.append(f"{len(diffs)} record(s) differ: {'; '.join(described[:DETAIL_EXAMPLES])}{more}")
    if suspended:
        details.append(f"{suspended} record(s) not compared after FailureMaxCount={failure_max_count} failures")
    if diffs:
        state = MISMATCHED_RECORDS
    elif suspended:
        state = SUSPENDED_RECORDS
    else:
        state = PENDING_RECORDS if pending else VALIDATED
    return TableValidation(
        table, state, pending, len(diffs), suspended, "; ".join(details), tuple(described[:MAX_REPORTED_FAILURES])
    )
