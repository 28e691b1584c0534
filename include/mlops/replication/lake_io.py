"""The DMS S3-target layout on any lake: Arrow schemas, object names and atomic Parquet writes.

Every file of a replicated table has the columns ``Op`` (I/U/D), the commit timestamp column
(DMS ``TimestampColumnName``: a STRING ``yyyy-MM-dd HH:mm:ss.SSSSSS`` in UTC, as DMS documents it
for .csv and .parquet targets; readers cast it), ``dms_change_seq`` (DMS ``$AR_H_CHANGE_SEQ``, zero-padded so
string order is change order) and then the source columns in schema order. Full-load files are
``<table>/LOAD00000001.parquet``…; CDC files are ``<table>/YYYY/MM/DD/YYYYMMDD-HHMMSSfff.parquet``
(batch commit time, UTC), in the date folders the endpoint's ``DatePartitionEnabled`` setting
makes DMS write (:func:`cdc_object_key`). Readers list a table's folder recursively.

Files are written under the lake's staging prefix and then moved into place, so readers never
see a half-written object. URIs may be ``file://`` or ``s3://``; pyarrow.fs does the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Float, Integer, Numeric, SmallInteger, String, Table

from mlops.lake import DMS_FULL_LOAD_PREFIX
from mlops.replication.fresh_objects import is_fresh

OP_COLUMN = "Op"
CHANGE_SEQ_COLUMN = "dms_change_seq"
CHANGE_SEQ_WIDTH = 20
FULL_LOAD_CHANGE_SEQ = "0" * CHANGE_SEQ_WIDTH
PARQUET_SUFFIX = ".parquet"
#: DMS writes the ``TimestampColumnName`` column as text, whatever ``ParquetTimestampInMillisecond`` says.
COMMIT_TS_TYPE = pa.string()
#: Its documented format ``yyyy-MM-dd HH:mm:ss.SSSSSS``; Arrow's ``%S`` prints microseconds of a ``us`` timestamp.
COMMIT_TS_ARROW_FORMAT = "%Y-%m-%d %H:%M:%S"
CDC_NAME_FORMAT = "%Y%m%d-%H%M%S"


def arrow_type(column: Column) -> pa.DataType:
    """The Arrow type DMS writes to Parquet for a source column; ValueError for unsupported types."""
    sql_type = column.type
    if isinstance(sql_type, Boolean):
        return pa.bool_()
    if isinstance(sql_type, SmallInteger):
        return pa.int16()
    if isinstance(sql_type, Integer | BigInteger):
        return pa.int64()
    if isinstance(sql_type, Float):
        return pa.float64()
    if isinstance(sql_type, Numeric):
        if sql_type.precision is None or sql_type.scale is None:
            raise ValueError(
                f"column {column.table.name}.{column.name}: Numeric needs precision and scale, e.g. Numeric(10, 2)"
            )
        return pa.decimal128(sql_type.precision, sql_type.scale)
    if isinstance(sql_type, DateTime):
        return pa.timestamp("us", tz="UTC" if sql_type.timezone else None)
    if isinstance(sql_type, Date):
        return pa.date32()
    if isinstance(sql_type, String):
        return pa.string()
    raise ValueError(
        f"column {column.table.name}.{column.name} has type {sql_type!r}, which the replicator cannot map to Parquet; "
        "use Integer, SmallInteger, BigInteger, Numeric(p, s), Float, Boolean, DateTime, Date or String"
    )


def source_schema(table: Table) -> pa.Schema:
    """The source columns of ``table`` as an Arrow schema, in table order.

    Every column is nullable, as DMS writes them: a delete's before-image may lack columns.
    """
    return pa.schema([pa.field(c.name, arrow_type(c)) for c in table.columns])


def dms_schema(table: Table, timestamp_column: str) -> pa.Schema:
    """The schema of every replicated file of ``table``: Op, commit timestamp, change seq, source columns."""
    reserved = {OP_COLUMN, timestamp_column, CHANGE_SEQ_COLUMN}
    clash = reserved.intersection(c.name for c in table.columns)
    if clash:
        raise ValueError(f"table {table.name} has columns {sorted(clash)} that DMS adds; rename them in the source")
    meta = [
        pa.field(OP_COLUMN, pa.string(), nullable=False),
        pa.field(timestamp_column, COMMIT_TS_TYPE, nullable=False),
        pa.field(CHANGE_SEQ_COLUMN, pa.string(), nullable=False),
    ]
    return pa.schema(meta + list(source_schema(table)))


def commit_ts_text(stamps: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Commit timestamps as DMS writes its timestamp column: ``2026-01-02 03:04:05.123456`` (UTC) text.

    Naive timestamps are taken as UTC; string order equals time order.
    """
    utc = stamps.cast(pa.timestamp("us")) if stamps.type.tz is None else stamps.cast(pa.timestamp("us", tz="UTC"))
    return pc.strftime(utc, format=COMMIT_TS_ARROW_FORMAT)


def change_seq_string(seq: int) -> str:
    """A change sequence number as DMS-style zero-padded text (string order == change order)."""
    if seq < 0 or seq >= 10**CHANGE_SEQ_WIDTH:
        raise ValueError(f"change sequence {seq} does not fit {CHANGE_SEQ_WIDTH} digits")
    return f"{seq:0{CHANGE_SEQ_WIDTH}d}"


def load_file_name(index: int) -> str:
    """Name of the ``index``-th (1-based) full-load file: ``LOAD00000001.parquet``."""
    if index < 1:
        raise ValueError(f"full-load file index must start at 1, got {index}")
    return f"{DMS_FULL_LOAD_PREFIX}{index:08d}{PARQUET_SUFFIX}"


def cdc_file_name(commit_ts: datetime) -> str:
    """Name of a CDC file committed at ``commit_ts`` (UTC): ``YYYYMMDD-HHMMSSfff.parquet``."""
    ts = commit_ts.astimezone(UTC) if commit_ts.tzinfo else commit_ts
    return f"{ts.strftime(CDC_NAME_FORMAT)}{ts.microsecond // 1000:03d}{PARQUET_SUFFIX}"


def parse_cdc_file_name(name: str) -> datetime:
    """The UTC time encoded in a CDC file name; ValueError if ``name`` is not one."""
    stem = name.removesuffix(PARQUET_SUFFIX)
    try:
        base = datetime.strptime(stem[:-3], CDC_NAME_FORMAT).replace(tzinfo=UTC)
        return base + timedelta(milliseconds=int(stem[-3:]))
    except ValueError:
        raise ValueError(f"{name!r} is not a CDC file name like 20250101-120000123.parquet") from None


def next_cdc_file_name(batch_commit_ts: datetime, previous: str | None) -> str:
    """The CDC file name for a batch: its commit time, moved 1 ms past ``previous`` if needed.

    Names must strictly increase even when commit times repeat or go backwards (long transactions).
    """
    name = cdc_file_name(batch_commit_ts)
    if previous is not None and name <= previous:
        name = cdc_file_name(parse_cdc_file_name(previous) + timedelta(milliseconds=1))
    return name


_DATE_FIELDS = {"YYYY": "%Y", "MM": "%m", "DD": "%d", "HH": "%H"}
_DATE_DELIMITERS = {"SLASH": "/", "DASH": "-", "UNDERSCORE": "_", "NONE": ""}


def date_partition(commit_ts: datetime, sequence: str, delimiter: str) -> str:
    """The date folder DMS writes a CDC file into (``DatePartitionSequence``/``DatePartitionDelimiter``).

    ``date_partition(t, "YYYYMMDD", "SLASH")`` is ``"2025/01/02"``; times are UTC.
    """
    fields = re.findall("YYYY|MM|DD|HH", sequence)
    if "".join(fields) != sequence or delimiter not in _DATE_DELIMITERS:
        raise ValueError(
            f"date partitioning {sequence!r}/{delimiter!r} is not a DMS setting; use a DatePartitionSequence of "
            f"YYYYMMDD, YYYYMMDDHH, YYYYMM, MMYYYYDD or DDMMYYYY and a delimiter of {', '.join(_DATE_DELIMITERS)}"
        )
    stamp = commit_ts.astimezone(UTC) if commit_ts.tzinfo else commit_ts
    return _DATE_DELIMITERS[delimiter].join(stamp.strftime(_DATE_FIELDS[f]) for f in fields)


def cdc_object_key(file_name: str, sequence: str, delimiter: str) -> str:
    """Key of a CDC file under its table folder: ``YYYY/MM/DD/<file_name>`` for the file's commit date."""
    return f"{date_partition(parse_cdc_file_name(file_name), sequence, delimiter)}/{file_name}"


def is_data_file(name: str) -> bool:
    """True for a replicated Parquet object name (hidden and temporary names are not)."""
    return name.endswith(PARQUET_SUFFIX) and not name.startswith(("_", "."))


@dataclass(frozen=True)
class LakeFS:
    """A pyarrow filesystem rooted at a URI; maps URIs under the root to filesystem paths."""

    filesystem: pafs.FileSystem
    root_uri: str
    root_path: str

    @classmethod
    def from_uri(cls, root_uri: str) -> LakeFS:
        """Resolve ``file://`` (percent-decoded) or any pyarrow-supported URI such as ``s3://bucket``."""
        root_uri = root_uri.rstrip("/")
        parsed = urlparse(root_uri)
        if parsed.scheme == "file":
            return cls(pafs.LocalFileSystem(), root_uri, unquote(parsed.path))
        if not parsed.scheme:
            raise ValueError(f"lake URI {root_uri!r} has no scheme; use file:///abs/path or s3://bucket/prefix")
        filesystem, path = pafs.FileSystem.from_uri(root_uri)
        return cls(filesystem, root_uri, path.rstrip("/"))

    def path(self, uri: str) -> str:
        """The filesystem path of ``uri``, which must lie under the root."""
        if uri != self.root_uri and not uri.startswith(self.root_uri + "/"):
            raise ValueError(f"{uri!r} is not under the lake root {self.root_uri!r}")
        return self.root_path + unquote(uri[len(self.root_uri) :])

    def uri(self, path: str) -> str:
        """The URI of a filesystem path under the root."""
        return self.root_uri + path[len(self.root_path) :]

    def data_files(self, folder_uri: str) -> list[pafs.FileInfo]:
        """Replicated Parquet files under ``folder_uri`` (date folders included), by path; [] if it is missing."""
        selector = pafs.FileSelector(self.path(folder_uri), recursive=True, allow_not_found=True)
        infos = self.filesystem.get_file_info(selector)
        return sorted(
            (i for i in infos if i.type == pafs.FileType.File and is_data_file(i.base_name)), key=lambda i: i.path
        )

    def write_atomically(
        self, staging_uri: str, final_uri: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch]
    ) -> int:
        """Write ``batches`` as one Parquet file at ``staging_uri``, then move it onto ``final_uri``.

        An existing object at ``final_uri`` is replaced. Returns the number of rows written.
        """
        writer = SplitParquetWriter(self, schema, staging_dir=_parent(staging_uri), final_dir=_parent(final_uri))
        with writer:
            writer.open(_name(final_uri))
            for batch in batches:
                writer.write(batch)
        return writer.rows

    def delete(self, uris: Sequence[str]) -> None:
        """Delete objects (missing ones are ignored)."""
        for uri in uris:
            path = self.path(uri)
            if self.filesystem.get_file_info(path).type == pafs.FileType.File:
                self.filesystem.delete_file(path)

    def exists(self, uri: str) -> bool:
        """True when an object is at ``uri``."""
        return self.filesystem.get_file_info(self.path(uri)).type == pafs.FileType.File

    def move(self, source_uri: str, target_uri: str) -> None:
        """Move an object onto ``target_uri`` (replacing it; an atomic rename on a local lake)."""
        target = self.path(target_uri)
        self.filesystem.create_dir(target.rsplit("/", 1)[0], recursive=True)
        self.filesystem.move(self.path(source_uri), target)


def publish_staged(lake_fs: LakeFS, staged: Sequence[tuple[str, str]], stale: Sequence[str]) -> None:
    """Move staged files into place, then delete the ``stale`` files they replace.

    Idempotent, so a crash midway is finished by calling it again with the same lists: a staged
    file already moved is skipped, a stale file already deleted is ignored, and a stale URI that
    a staged file now occupies is kept.
    """
    for staging_uri, final_uri in staged:
        if lake_fs.exists(staging_uri):
            lake_fs.move(staging_uri, final_uri)
    published = {final for _, final in staged}
    lake_fs.delete([uri for uri in stale if uri not in published])


class SplitParquetWriter:
    """Writes one table's record batches into a series of Parquet files, each staged then moved.

    Use as a context manager: on error the current staging file is removed and no partial file
    reaches ``final_dir``. ``files`` lists the final URIs of the files moved into place. With
    ``publish=False`` finished files stay staged: ``staged`` lists (staging URI, final URI) pairs
    for the caller to move once every table of a load is written (:func:`publish_staged`).
    """

    def __init__(
        self, lake_fs: LakeFS, schema: pa.Schema, *, staging_dir: str, final_dir: str, publish: bool = True
    ) -> None:
        self._fs = lake_fs
        self._schema = schema
        self._staging_dir = staging_dir
        self._final_dir = final_dir
        self._publish = publish
        self._writer: pq.ParquetWriter | None = None
        self._name: str | None = None
        self.files: list[str] = []
        self.staged: list[tuple[str, str]] = []
        self.rows = 0
        self.file_rows = 0

    def open(self, name: str) -> None:
        """Start the next file, finishing the current one first."""
        self.finish()
        staging = self._fs.path(f"{self._staging_dir}/{name}")
        self._fs.filesystem.create_dir(staging.rsplit("/", 1)[0], recursive=True)
        self._writer = pq.ParquetWriter(staging, self._schema, filesystem=self._fs.filesystem)
        self._name = name
        self.file_rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        """Append a batch (cast to the file schema) to the current file."""
        if self._writer is None:
            raise RuntimeError("SplitParquetWriter.write called before open(name)")
        self._writer.write_batch(batch if batch.schema == self._schema else batch.cast(self._schema))
        self.rows += batch.num_rows
        self.file_rows += batch.num_rows

    def finish(self) -> None:
        """Close the current file and move it from staging into place (atomic rename locally)."""
        if self._writer is None or self._name is None:
            return
        self._writer.close()
        staging_uri, final_uri = f"{self._staging_dir}/{self._name}", f"{self._final_dir}/{self._name}"
        if self._publish:
            self._fs.move(staging_uri, final_uri)
        else:
            self.staged.append((staging_uri, final_uri))
        self.files.append(final_uri)
        self._writer, self._name = None, None

    def abort(self) -> None:
        """Drop the current staging file without publishing it."""
        if self._writer is None or self._name is None:
            return
        self._writer.close()
        self._fs.delete([f"{self._staging_dir}/{self._name}"])
        self._writer, self._name = None, None

    def __enter__(self) -> SplitParquetWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()


def _parent(uri: str) -> str:
    return uri.rsplit("/", 1)[0]


def _name(uri: str) -> str:
    return uri.rsplit("/", 1)[1]


def list_fresh_objects(uri: str, since: datetime | None) -> list[str]:
    """URIs of objects under ``uri`` (recursively) modified after ``since`` (all when None).

    Works on any lake pyarrow reaches (``file://``, ``s3://``); the rule is
    :func:`mlops.replication.fresh_objects.is_fresh`.
    """
    lake_fs = LakeFS.from_uri(uri)
    selector = pafs.FileSelector(lake_fs.root_path, recursive=True, allow_not_found=True)
    infos = lake_fs.filesystem.get_file_info(selector)
    return sorted(
        lake_fs.uri(info.path)
        for info in infos
        if info.type == pafs.FileType.File and is_fresh(info.base_name, info.mtime, since)
    )


def count_fresh_objects(uri: str, since: datetime | None) -> int:
    """How many objects under ``uri`` are newer than ``since`` (see :func:`list_fresh_objects`)."""
    return len(list_fresh_objects(uri, since))


def fresh_objects_by_table(uri: str, since: datetime | None) -> dict[str, int]:
    """Fresh objects under ``uri`` (the raw schema folder) per table folder (the first folder below ``uri``)."""
    root = uri.rstrip("/") + "/"
    counts: dict[str, int] = {}
    for fresh in list_fresh_objects(uri, since):
        table, _, rest = fresh.removeprefix(root).partition("/")
        if rest:
            counts[table] = counts.get(table, 0) + 1
    return counts
