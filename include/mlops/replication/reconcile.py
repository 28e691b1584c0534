"""The latest state of a replicated table, and its reconciliation with the source DB.

Latest state = every file of the table, ordered by ``dms_change_seq`` (full load first), the
last row per primary key, minus keys whose last operation is a delete. Reconciliation compares
row counts, an order-independent checksum of the primary-key set and one of (key, updated_at).
Works on ``file://`` and ``s3://`` lakes; run it when no changes are pending for a exact match.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from sqlalchemy import Engine

from mlops.lake import Lake
from mlops.replication.checks import CheckResult
from mlops.replication.lake_io import CHANGE_SEQ_COLUMN, OP_COLUMN, LakeFS, source_schema
from mlops.replication.snapshot import stream_columns
from mlops.source.schema import TABLES, primary_key

CONTENT_COLUMN = "updated_at"


def _table_files(lake_table_uri: str) -> tuple[LakeFS, list[pafs.FileInfo], pa.Schema]:
    """The replicated files of a table and their common schema (read from the footers only).

    Raises FileNotFoundError when there are none, ValueError when their schemas differ.
    """
    lake_fs = LakeFS.from_uri(lake_table_uri)
    files = lake_fs.data_files(lake_table_uri)
    if not files:
        raise FileNotFoundError(f"no replicated Parquet files under {lake_table_uri}; run the replication first")
    schemas = [pq.read_schema(info.path, filesystem=lake_fs.filesystem) for info in files]
    for info, schema in zip(files, schemas, strict=True):
        if not schema.equals(schemas[0]):
            raise ValueError(
                f"{info.base_name} in {lake_table_uri} has schema {schema} but {files[0].base_name} has "
                f"{schemas[0]}; the source schema changed, reload the table"
            )
    return lake_fs, files, schemas[0]


def latest_state(lake_table_uri: str, primary_key: str, columns: Sequence[str] | None = None) -> pa.Table:
    """The table as of the last applied change, sorted by ``primary_key``.

    Returns the source columns (all, or only ``columns``), without the DMS columns.
    """
    lake_fs, files, schema = _table_files(lake_table_uri)
    names = schema.names
    if len(names) < 4 or names[0] != OP_COLUMN or names[2] != CHANGE_SEQ_COLUMN:
        raise ValueError(
            f"files under {lake_table_uri} have columns {names[:3]}; expected Op, <timestamp column>, "
            f"{CHANGE_SEQ_COLUMN} first (the DMS layout this project writes)"
        )
    wanted = list(names[3:] if columns is None else columns)
    unknown = [c for c in {primary_key, *wanted} if c not in names[3:]]
    if unknown:
        raise ValueError(f"columns {sorted(unknown)} are not in {lake_table_uri}; its columns are {names[3:]}")
    read = [OP_COLUMN, CHANGE_SEQ_COLUMN, *dict.fromkeys([primary_key, *wanted])]
    parts = [pq.read_table(info.path, filesystem=lake_fs.filesystem, columns=read) for info in files]
    changes = pa.concat_tables(parts).combine_chunks()
    if not changes.num_rows:
        return changes.select(wanted)
    keys = pa.table([changes[primary_key], changes[CHANGE_SEQ_COLUMN]], names=["key", "seq"])
    order = pc.sort_indices(keys, sort_keys=[("key", "ascending"), ("seq", "ascending")])
    sorted_keys = keys["key"].take(order).combine_chunks()
    last_of_key = pc.not_equal(sorted_keys[:-1], sorted_keys[1:]).fill_null(True)  # NULL keys never match
    latest = changes.take(order.filter(pa.concat_arrays([last_of_key, pa.array([True])])))
    return latest.filter(pc.not_equal(latest[OP_COLUMN], "D")).select(wanted)


@dataclass(frozen=True)
class TableDigest:
    """Row count and order-independent checksums of a table's keys and (key, updated_at) pairs."""

    rows: int
    key_checksum: int
    content_checksum: int | None


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of each value."""
    z = values.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _as_int64(array: pa.Array | pa.ChunkedArray, what: str) -> np.ndarray:
    if pa.types.is_timestamp(array.type):
        array = array.cast(pa.int64())
    if not pa.types.is_integer(array.type):
        raise ValueError(f"{what} has type {array.type}; checksums need an integer key and a timestamp content column")
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)


class _DigestAccumulator:
    """Sums the per-row hashes of chunks (sums wrap mod 2**64, so chunk order does not matter)."""

    def __init__(self, with_content: bool) -> None:
        self.rows, self.keys, self.content = 0, np.uint64(0), np.uint64(0) if with_content else None

    def add(self, keys: pa.Array | pa.ChunkedArray, content: pa.Array | pa.ChunkedArray | None) -> None:
        key_hash = _mix(_as_int64(keys, "primary key").view(np.uint64))
        with np.errstate(over="ignore"):
            self.rows += len(key_hash)
            self.keys = np.uint64(self.keys + key_hash.sum(dtype=np.uint64))
            if self.content is not None and content is not None:
                stamp = _as_int64(content, CONTENT_COLUMN).view(np.uint64)
                pair = _mix(key_hash ^ _mix(stamp))
                self.content = np.uint64(self.content + pair.sum(dtype=np.uint64))

    def digest(self) -> TableDigest:
        return TableDigest(self.rows, int(self.keys), None if self.content is None else int(self.content))


def lake_digest(table: pa.Table, key: str, content_column: str | None) -> TableDigest:
    """Digest of a latest-state table."""
    acc = _DigestAccumulator(content_column is not None)
    acc.add(table[key], table[content_column] if content_column else None)
    return acc.digest()


def source_digest(engine: Engine, table_name: str, chunk_rows: int = 200_000) -> TableDigest:
    """Digest of a source table, streamed in chunks."""
    table = TABLES[table_name]
    key = primary_key(table_name)
    wanted = [key, CONTENT_COLUMN] if CONTENT_COLUMN in table.c else [key]
    columns = pa.schema([source_schema(table).field(name) for name in wanted])
    acc = _DigestAccumulator(len(wanted) == 2)
    with engine.connect() as conn:
        for arrays in stream_columns(conn, table, columns, chunk_rows):
            acc.add(arrays[0], arrays[1] if len(arrays) == 2 else None)
    return acc.digest()


def reconcile(engine: Engine, lake: Lake, schema: str, tables: Sequence[str]) -> list[CheckResult]:
    """Compare each table's source rows with its latest state in the lake: count, key set, updated_at."""
    results: list[CheckResult] = []
    for name in tables:
        if name not in TABLES:
            raise ValueError(f"cannot reconcile {name!r}: not a source table; use some of {sorted(TABLES)}")
        uri = lake.raw_table(schema, name)
        source = source_digest(engine, name)
        key = primary_key(name)
        content = CONTENT_COLUMN if source.content_checksum is not None else None
        try:
            latest = latest_state(uri, key, [key] if content is None else [key, content])
        except (FileNotFoundError, ValueError) as exc:
            results.append(CheckResult("reconcile_row_count", name, "rows", None, source.rows, False, f"{exc}"))
            continue
        results += _compare(name, source, lake_digest(latest, key, content))
    return results


def _compare(table: str, source: TableDigest, lake: TableDigest) -> Iterable[CheckResult]:
    fix = "run the replication again to apply pending changes; if it persists, reload the table with full_load()"
    yield CheckResult(
        "reconcile_row_count", table, "rows", lake.rows, source.rows, lake.rows == source.rows,
        f"lake has {lake.rows} rows, source has {source.rows}" + ("" if lake.rows == source.rows else f"; {fix}"),
    )  # fmt: skip
    same_keys = lake.key_checksum == source.key_checksum
    yield CheckResult(
        "reconcile_key_checksum", table, "primary_key_checksum", f"{lake.key_checksum:016x}",
        f"{source.key_checksum:016x}", same_keys,
        "primary-key sets match" if same_keys else f"the lake and source hold different primary keys; {fix}",
    )  # fmt: skip
    if source.content_checksum is not None:
        same = lake.content_checksum == source.content_checksum
        yield CheckResult(
            "reconcile_content_checksum", table, f"{CONTENT_COLUMN}_checksum", f"{lake.content_checksum or 0:016x}",
            f"{source.content_checksum:016x}", same,
            f"{CONTENT_COLUMN} values match" if same
            else f"some rows differ in {CONTENT_COLUMN} (missed updates); {fix}",
        )  # fmt: skip
