"""Read SageMaker data capture: JSONL records -> columns of the model's input features.

Capture layout (see :mod:`mlops.serving.capture`): ``<endpoint>/<variant>/yyyy/mm/dd/hh/`` folders
of ``<MM>-<SS>-<mmm>-<uuid>.jsonl`` files. Each line's ``captureData.endpointInput`` holds the
request: JSON (``{"instances": [...]}``, a list of records or one record; records are objects or
lists in feature order) or CSV (rows in feature order, optional header). Every request row
becomes one row of the frame; ``endpointOutput`` predictions give the predicted labels.

Built for a million records a window (job code, pandas/numpy): files are read in chunks
(:mod:`mlops.monitoring.capture_lines`), each line parsed once with a fast JSON parser, and only
``eventMetadata.inferenceTime``, the request's feature values and the response's labels are
kept. Rows are turned into columns every :data:`BLOCK_ROWS` rows: numeric features into float64
arrays (raw objects only where a value is not a number, so a value's type is still judged one by
one), categorical features into category codes, request fields that are not features (at most
:data:`MAX_EXTRA_COLUMNS`) like numeric ones. Memory is the columns plus one block.

A line that cannot be read (not UTF-8, not JSON, not a capture record, a request or response that
cannot be parsed, a row that is neither an object nor a list) is quarantined with its reason and
skipped; it never fails the window. Which files belong to a window is told from their keys
alone by :mod:`mlops.monitoring.capture_keys`, on the worker.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops.monitoring import capture_lines
from mlops.monitoring.capture_lines import Malformed, Quarantine

MISSING_CATEGORY = "__missing__"
UTC = timezone.utc  # noqa: UP017 - datetime.UTC is Python 3.11+; the processing image may run an older Python
BLOCK_ROWS = 16384
MAX_EXTRA_COLUMNS = 50
_NUMBERS = frozenset({int, float, bool, type(None)})  # bool: 1/0, as a boolean training column
_TEXT = frozenset({str, type(None)})
_SCALARS = (int, float, str, bool)


@dataclass
class CaptureWindow:
    """The rows of a window: features (raw values, as sent), predicted label counts, and counts."""

    frame: pd.DataFrame
    label_counts: Counter[str] = field(default_factory=Counter)
    records: int = 0  # capture lines in the window that were read
    skipped_records: int = 0  # capture lines outside the window
    quarantine: Quarantine = field(default_factory=Quarantine)
    variants: dict[str, int] = field(default_factory=dict)  # records per variant folder
    extra_columns_dropped: int = 0  # request fields beyond MAX_EXTRA_COLUMNS, not kept
    inference_ids: set[str] = field(default_factory=set)  # distinct eventMetadata.inferenceId of the window
    # Records per request source: the inferenceId when the record has one, else the hash of its request
    # payload (endpointInput.data), so identical requests without ids count as one source.
    sources: Counter[str | int | None] = field(default_factory=Counter)

    @property
    def top_source_share(self) -> float:
        """The share of the window's records sent by its most frequent source (0 for an empty window)."""
        return max(self.sources.values()) / self.records if self.records and self.sources else 0.0

    @property
    def malformed(self) -> int:
        """Lines quarantined (unreadable or malformed)."""
        return self.quarantine.total

    @property
    def predicted_labels(self) -> int:
        return sum(self.label_counts.values())


# ---- one capture line -> rows and labels ----------------------------------------------------------


def _text(channel: Any, name: str) -> tuple[str, str]:
    """(text, kind "csv"/"json") of a captured request or response."""
    if type(channel) is dict and channel.get("encoding") == "JSON" and type(channel.get("data")) is str:
        return channel["data"], "json"  # what the endpoint captures for JSON traffic: no decoding to do
    if not isinstance(channel, dict) or not isinstance(channel.get("data", ""), str):
        raise Malformed(f"{name} malformed", "not an object with a string 'data'")
    data, encoding = channel.get("data", ""), channel.get("encoding")
    content_type = str(channel.get("observedContentType", "")).split(";")[0].strip().lower()
    kind = "csv" if encoding == "CSV" or content_type == "text/csv" else "json"
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise Malformed(f"{name} undecodable", f"BASE64 data that is not UTF-8 text: {exc}") from None
    return data, kind


def _csv_rows(text: str, name: str) -> list[list[Any]]:
    try:
        return [[v if v != "" else None for v in row] for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as exc:
        raise Malformed(f"{name} not CSV", str(exc)) from None


def request_rows(channel: Any, columns: list[str]) -> list[Any]:
    """The rows of one captured request: dicts (JSON objects) or lists of values in ``columns`` order."""
    text, kind = _text(channel, "request")
    if kind == "csv":
        rows: Any = _csv_rows(text, "request")
        if rows and [str(v).strip() for v in rows[0]] == columns:
            rows = rows[1:]
        return rows
    try:
        payload = capture_lines.loads(text)
    except ValueError as exc:
        raise Malformed("request not JSON", str(exc)) from None
    rows = payload.get("instances", payload.get("inputs", payload)) if isinstance(payload, dict) else payload
    if isinstance(rows, dict):
        return [rows]
    if not isinstance(rows, list):
        raise Malformed("request shape", f"the body is a {type(rows).__name__}, not records")
    for i, row in enumerate(rows):
        if not isinstance(row, (dict, list)):
            raise Malformed("request shape", f"instances[{i}] is a {type(row).__name__}, not an object or a list")
    return rows


def response_labels(channel: Any) -> list[str]:
    """Predicted labels of one captured response (JSON ``predictions[].label`` or CSV first field)."""
    text, kind = _text(channel, "response")
    if kind == "csv":
        return [str(row[0]) for row in _csv_rows(text, "response")]
    try:
        payload = capture_lines.loads(text)
    except ValueError as exc:
        raise Malformed("response not JSON", str(exc)) from None
    predictions = payload.get("predictions", []) if isinstance(payload, dict) else payload
    if not isinstance(predictions, list):
        raise Malformed("response shape", f"predictions is a {type(predictions).__name__}, not a list")
    return [str(p.get("label")) if isinstance(p, dict) else str(p) for p in predictions]


def event_time(record: Any) -> datetime:
    """``eventMetadata.inferenceTime`` of a capture record, timezone-aware (UTC when it names none)."""
    value = _time_text(record)
    try:
        when = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        raise Malformed("bad inferenceTime", repr(value[:64])) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _time_text(record: Any) -> str:
    meta = record.get("eventMetadata") if type(record) is dict else None
    value = meta.get("inferenceTime") if type(meta) is dict else None
    if type(value) is not str:
        raise Malformed("not a capture record", "no eventMetadata.inferenceTime")
    return value


def canonical_time(when: datetime) -> str:
    """The endpoint's inferenceTime format, ``2026-11-24T17:00:00.000Z`` (UTC, milliseconds)."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class TimeWindow:
    """``[start, end)`` membership of capture records. Times in the endpoint's own format are compared
    as text (their order is time order) once their date and time of day parsed (cached per second);
    any other ISO 8601 form is parsed."""

    def __init__(self, start: datetime | None, end: datetime | None) -> None:
        self.start, self.end = start, end
        self._start_text = canonical_time(start) if start else None
        self._end_text = canonical_time(end) if end else None
        self._valid_seconds: set[str] = set()

    def contains(self, record: Any) -> bool:
        value = _time_text(record)
        if (
            len(value) == 24
            and value[19] == "."
            and value[23] == "Z"
            and value[20:23].isdigit()
            and value[20:23].isascii()
            and (value[:19] in self._valid_seconds or self._valid_second(value[:19]))
        ):
            return (self._start_text is None or value >= self._start_text) and (
                self._end_text is None or value < self._end_text
            )
        when = event_time(record)
        return (self.start is None or when >= self.start) and (self.end is None or when < self.end)

    def _valid_second(self, seconds: str) -> bool:
        """Whether ``seconds`` is ``YYYY-MM-DDTHH:MM:SS`` (ASCII, a real date and time); cached when it is."""
        try:
            valid = seconds.isascii() and seconds[10] == "T" and bool(datetime.fromisoformat(seconds))
        except ValueError:
            return False
        if valid and len(self._valid_seconds) < 1_000_000:
            self._valid_seconds.add(seconds)
        return valid


# ---- rows -> columns ---------------------------------------------------------------------------------


def numeric_block(values: list[Any]) -> np.ndarray:
    """float64 (None = NaN) when every value is a number, else objects (non-scalars as their text)."""
    if _NUMBERS.issuperset(map(type, values)):
        try:
            return np.array(values, dtype=np.float64)
        except OverflowError:  # an integer beyond a double: typed one by one (it is not a finite number)
            pass
    block = np.empty(len(values), dtype=object)
    block[:] = [v if v is None or isinstance(v, _SCALARS) else str(v) for v in values]
    return block


class ColumnBuilder:
    """Turns blocks of request rows into the window's columns (see the module docstring)."""

    def __init__(self, columns: list[str], categorical: Iterable[str] = ()) -> None:
        self.columns = list(columns)
        self.categorical = [c for c in self.columns if c in set(categorical)]
        self.raw = [c for c in self.columns if c not in set(self.categorical)]
        self._features = frozenset(self.columns)
        self._pending: list[dict[str, Any]] = []
        self._blocks: dict[str, list[tuple[int, np.ndarray]]] = {c: [] for c in self.raw}
        self._codes: dict[str, list[np.ndarray]] = {c: [] for c in self.categorical}
        self._categories: dict[str, dict[str, int]] = {c: {} for c in self.categorical}
        self._sizes: list[int] = []
        self.extra_columns: list[str] = []
        self.extra_columns_dropped = 0
        getter = itemgetter(*self.columns) if self.columns else (lambda row: ())
        self._getter = getter if len(self.columns) != 1 else (lambda row: (getter(row),))

    def add(self, rows: list[Any]) -> None:
        """Rows of one request: dicts, or lists in column order (values beyond it named ``_c<i>``)."""
        for row in rows:
            if type(row) is not dict:
                names = self.columns + [f"_c{i}" for i in range(len(self.columns), len(row))]
                row = dict(zip(names, row))  # noqa: B905 - shorter rows leave features missing
            self._pending.append(row)
        if len(self._pending) >= BLOCK_ROWS:
            self.flush()

    def flush(self) -> None:
        """Turn the pending rows into one block of every column."""
        rows, self._pending = self._pending, []
        if not rows:
            return
        index = len(self._sizes)
        self._sizes.append(len(rows))
        try:  # the usual block: every row has every feature; one C call per row
            values = list(zip(*map(self._getter, rows)))  # noqa: B905 - transposes equal-length tuples
            complete = True
        except KeyError:
            values = list(zip(*(tuple(map(row.get, self.columns)) for row in rows)))  # noqa: B905 - the same
            complete = False
        by_name = dict(zip(self.columns, values))  # noqa: B905 - one tuple per column
        for extra in self._extras(rows, complete):
            self._blocks[extra] = []
        for name, blocks in self._blocks.items():
            column = by_name[name] if name in by_name else [row.get(name) for row in rows]
            blocks.append((index, numeric_block(list(column))))
        for name in self.categorical:
            self._codes[name].append(self._encode(name, list(by_name[name])))

    def _extras(self, rows: list[dict[str, Any]], complete: bool) -> list[str]:
        """Request fields of these rows that are not features and not seen before (within the cap)."""
        features = self._features
        if complete and max(map(len, rows)) == len(features):
            return []  # every row has exactly the features
        found: set[str] = set()
        for row in rows:
            if row.keys() != features:
                found.update(row.keys() - features)
        new = sorted(found - set(self._blocks))
        room = MAX_EXTRA_COLUMNS - len(self.extra_columns)
        self.extra_columns_dropped += max(len(new) - room, 0)
        kept = new[: max(room, 0)]
        self.extra_columns += kept
        return kept

    def _encode(self, name: str, values: list[Any]) -> np.ndarray:
        """Category codes of one block (-1 = missing); values are compared as text, as they are typed."""
        if not _TEXT.issuperset(map(type, values)):
            values = [v if v is None or type(v) is str else str(v) for v in values]
        block_codes, uniques = pd.factorize(np.array(values, dtype=object))
        lookup = self._categories[name]
        mapping = np.array([lookup.setdefault(u, len(lookup)) for u in uniques] + [-1], dtype=np.int32)
        return mapping[block_codes]  # block code -1 picks the trailing -1

    def frame(self) -> pd.DataFrame:
        """The window's columns: features in ``columns`` order, then the extra request fields."""
        self.flush()
        total = sum(self._sizes)
        data: dict[str, Any] = {}
        for name in self.columns + self.extra_columns:
            if name in self._codes:
                codes = np.concatenate(self._codes[name]) if self._codes[name] else np.empty(0, dtype=np.int32)
                data[name] = pd.Categorical.from_codes(codes, categories=list(self._categories[name]))
            else:
                data[name] = self._raw_column(name, total)
        return pd.DataFrame(data, index=pd.RangeIndex(total), columns=self.columns + self.extra_columns)

    def _raw_column(self, name: str, total: int) -> np.ndarray:
        present = dict(self._blocks[name])
        blocks = [present.get(i, np.full(size, np.nan)) for i, size in enumerate(self._sizes)]
        if not blocks:
            return np.empty(0, dtype=np.float64)
        if all(b.dtype == np.float64 for b in blocks):
            return np.concatenate(blocks)
        column = np.empty(total, dtype=object)
        column[:] = np.concatenate([b.astype(object) for b in blocks])
        return column


# ---- a window -------------------------------------------------------------------------------------------


class WindowReader:
    """Reads capture lines into a :class:`CaptureWindow`, keeping records in ``[start, end)``."""

    def __init__(
        self,
        columns: list[str],
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        categorical: Iterable[str] = (),
        quarantine: Quarantine | None = None,
    ) -> None:
        self.columns = list(columns)
        self.time_window = TimeWindow(start, end)
        self.builder = ColumnBuilder(columns, categorical)
        self.window = CaptureWindow(frame=pd.DataFrame(), quarantine=quarantine or Quarantine())
        self._labels: list[str] = []

    def line(self, raw: bytes | str, source: str = "", number: int = 0, offset: int = 0) -> None:
        """Read one capture line (a line that cannot be read is quarantined)."""
        try:
            self._record(raw)
        except Malformed as exc:
            self.window.quarantine.add(source, number, offset, exc, raw)

    def _record(self, raw: bytes | str) -> None:
        """One line: parse it, keep it when it is in the window; all or nothing (raises Malformed)."""
        try:
            record = capture_lines.loads(raw)
        except ValueError as exc:
            if not raw.strip():
                return
            raise _unreadable(raw, exc) from None
        if not self.time_window.contains(record):
            self.window.skipped_records += 1
            return
        data = record.get("captureData", {})
        if type(data) is not dict:
            raise Malformed("not a capture record", "captureData is not an object")
        request, response = data.get("endpointInput"), data.get("endpointOutput")
        rows = request_rows(request, self.columns) if request is not None else []
        labels = response_labels(response) if response is not None else []
        inference_id = record["eventMetadata"].get("inferenceId")  # contains() checked eventMetadata is a dict
        if type(inference_id) is str:
            self.window.inference_ids.add(inference_id)
            self.window.sources[inference_id] += 1
        else:
            payload = request.get("data") if type(request) is dict else None
            self.window.sources[hash(payload) if type(payload) is str else None] += 1
        self._labels += labels
        self.builder.add(rows)
        self.window.records += 1
        if len(self._labels) >= BLOCK_ROWS:
            self.window.label_counts.update(self._labels)
            self._labels = []

    def finish(self) -> CaptureWindow:
        self.window.label_counts.update(self._labels)
        self._labels = []
        self.window.frame = self.builder.frame()
        self.window.extra_columns_dropped = self.builder.extra_columns_dropped
        self.window.quarantine.close()
        return self.window


def _unreadable(raw: bytes | str, exc: ValueError) -> Malformed:
    if isinstance(raw, bytes):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return Malformed("not UTF-8", f"byte {raw[bad.start]:#04x} at position {bad.start}")
    return Malformed("not JSON", str(exc))


def read_window(
    lines: Iterable[bytes | str],
    columns: list[str],
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    categorical: Iterable[str] = (),
    quarantine: Quarantine | None = None,
) -> CaptureWindow:
    """Parse capture lines; keep records whose ``inferenceTime`` is in ``[start, end)``."""
    reader = WindowReader(columns, start, end, categorical=categorical, quarantine=quarantine)
    for number, line in enumerate(lines, 1):
        reader.line(line, "<lines>", number)
    return reader.finish()


def capture_files(root: Path) -> list[Path]:
    """Every capture file under a folder, oldest folder first."""
    return sorted(root.rglob("*.jsonl"), key=lambda p: (p.parent.as_posix(), p.name))


def read_folder(
    root: Path,
    columns: list[str],
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    categorical: Iterable[str] = (),
    quarantine: Quarantine | None = None,
    chunk_bytes: int = capture_lines.DEFAULT_CHUNK_BYTES,
    max_line_bytes: int = capture_lines.DEFAULT_MAX_LINE_BYTES,
) -> CaptureWindow:
    """:func:`read_window` over every ``*.jsonl`` under ``root``, ``chunk_bytes`` at a time; counts records
    per variant folder. An unreadable line is quarantined (source = its path under ``root``)."""
    reader = WindowReader(columns, start, end, categorical=categorical, quarantine=quarantine)
    for path in capture_files(root):
        source = path.relative_to(root).as_posix()
        before = reader.window.records
        with path.open("rb") as handle:
            for number, offset, line, complete in capture_lines.file_lines(handle, chunk_bytes, max_line_bytes):
                if complete:
                    reader.line(line, source, number, offset)
                else:
                    too_long = Malformed("line too long", f"over {max_line_bytes} bytes; the first bytes are kept")
                    reader.window.quarantine.add(source, number, offset, too_long, line)
        variant = source.split("/", 1)[0] if "/" in source else ""
        reader.window.variants[variant] = reader.window.variants.get(variant, 0) + reader.window.records - before
    return reader.finish()
