"""Source values into the lake's Arrow types, faithfully, or the row rejected with its table, key and column.

DMS carries each column value as the source holds it. A source that does not enforce its
declared types (SQLite keeps ``'abc'`` or ``'12,50'`` in a ``NUMERIC(8, 2)`` column as text, ``2``
in a BOOLEAN, ``12.345`` in a column of scale 2) holds values the lake's column type cannot
carry. Those rows are never coerced (no ``0.00`` for ``'abc'``, no ``12.35`` for ``12.345``): they
are *rejected* with a :class:`Rejected` naming the table, the key, the column and the value, and
the caller sends them to the quarantine (:mod:`mlops.replication.quarantine`) while the other
rows go on. Two readers use this:

- :func:`driver_arrays`: rows fetched from the source DB (full load, validation), converted in
  bulk by Arrow; only a chunk that fails is converted again column by column and value by value.
- :func:`decode_images`: CDC row images (JSON) decoded in bulk by Arrow's JSON reader; a batch
  that fails is bisected down to the bad images, and each bad image's bad columns are named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

#: Two floats that agree to 14 significant digits are the same source value (SQLite prints 15).
_FLOAT_TOLERANCE = 1e-14


@dataclass(frozen=True)
class Rejected:
    """A source row (or change) whose ``column`` holds ``value``, which the lake's column type cannot carry."""

    table: str
    key: str
    column: str
    value: str
    reason: str
    op: str = "I"
    change_seq: int | None = None
    image: str = ""

    def describe(self, primary_key: str) -> str:
        """E.g. ``orders order_id=5: shipping_fee holds 'abc', which is not a decimal128(8, 2)``."""
        change = f" (change {self.change_seq})" if self.change_seq is not None else ""
        return f"{self.table} {primary_key}={self.key}: {self.column} holds {self.value}, {self.reason}{change}"


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _lossless_mask(converted: pa.Array, fetched: pa.Array) -> np.ndarray:
    """True where converting ``fetched`` (the driver's values) to ``converted`` lost nothing.

    Catches what Arrow's casts accept silently: floats rounded to a decimal's scale, and integers
    other than 0/1 taken as booleans.
    """
    ok = np.ones(len(fetched), dtype=bool)
    if pa.types.is_decimal(converted.type) and pa.types.is_floating(fetched.type):
        original = fetched.to_numpy(zero_copy_only=False)
        back = pc.cast(converted, pa.float64()).to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            ok = np.isnan(original) | (np.abs(back - original) <= np.abs(original) * _FLOAT_TOLERANCE)
    elif pa.types.is_boolean(converted.type) and pa.types.is_integer(fetched.type):
        ok = pc.fill_null(pc.is_in(fetched, value_set=pa.array([0, 1], fetched.type)), True).to_numpy(
            zero_copy_only=False
        )
    return ok


def _reason(target: pa.DataType, error: str | None = None) -> str:
    if pa.types.is_decimal(target):
        return f"which is not a {target} (a number with at most {target.scale} decimal places)"
    if pa.types.is_boolean(target):
        return "which is not a boolean (true/false, 0/1)"
    return f"which is not a {target}" + (f" ({error})" if error else "")


def _convert_column(values: list, fetched: pa.DataType, target: pa.DataType) -> tuple[pa.Array | None, list[int]]:
    """One column's values as ``target``, or (None, positions of the values that do not fit)."""
    try:
        raw = pa.array(values, type=fetched)
        converted = raw if raw.type == target else raw.cast(target)
        bad = np.flatnonzero(~_lossless_mask(converted, raw)).tolist()
        return (converted, []) if not bad else (None, bad)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        pass
    bad = []
    for position, value in enumerate(values):
        try:
            single = pa.array([value], type=fetched)
            converted = single if single.type == target else single.cast(target)
            if not _lossless_mask(converted, single)[0]:
                bad.append(position)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
            bad.append(position)
    return None, bad


def driver_arrays(
    rows: list[tuple], fetched: pa.StructType, columns: pa.Schema, table: str, key_index: int
) -> tuple[list[pa.Array], list[Rejected]]:
    """Driver rows as one Arrow array per column of ``columns``, and the rows that do not fit.

    ``fetched`` holds the types the driver returns (:func:`mlops.replication.snapshot.driver_type`).
    Rows with any value that does not fit are left out of the arrays and returned as rejections
    (one per bad value).
    """
    try:
        values = pa.array(rows, type=fetched).flatten()
        arrays = [v if v.type == f.type else v.cast(f.type) for v, f in zip(values, columns, strict=True)]
        if all(_lossless_mask(a, v).all() for a, v in zip(arrays, values, strict=True)):
            return arrays, []
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        pass
    rejected: list[Rejected] = []
    bad_rows: set[int] = set()
    for index, (source_type, field) in enumerate(zip(fetched, columns, strict=True)):
        column = [row[index] for row in rows]
        _, bad = _convert_column(column, source_type.type, field.type)
        for position in bad:
            bad_rows.add(position)
            rejected.append(
                Rejected(
                    table, str(rows[position][key_index]), field.name, _show(column[position]), _reason(field.type)
                )
            )
    good = [row for position, row in enumerate(rows) if position not in bad_rows]
    values = pa.array(good, type=fetched).flatten()
    arrays = [v if v.type == f.type else v.cast(f.type) for v, f in zip(values, columns, strict=True)]
    return arrays, rejected


@dataclass(frozen=True)
class DecodedImages:
    """CDC row images decoded to the lake's columns: the positions kept, their rows, and the rejections."""

    kept: np.ndarray
    rows: pa.Table
    rejected: list[Rejected]


def decode_images(
    images: pa.ChunkedArray | pa.Array,
    schema: pa.Schema,
    table: str,
    *,
    key: str,
    ops: pa.ChunkedArray | None = None,
    seqs: pa.ChunkedArray | None = None,
) -> DecodedImages:
    """JSON row images as a table of ``schema``, exact for decimals, booleans and timestamps.

    A key missing from an image (no before-image, or a column added after the image was taken)
    becomes NULL; unknown keys are ignored. Images whose values do not fit are rejected, except a
    delete's before-image, whose bad values become NULL (the delete needs only the key).
    ``ops``/``seqs`` (per image) label the rejections.
    """
    images = images.combine_chunks() if isinstance(images, pa.ChunkedArray) else images
    good: list[tuple[int, pa.Table]] = []
    bad: list[int] = []
    _decode_range(images, schema, 0, len(images), good, bad)
    rejected: list[Rejected] = []
    for position in bad:
        line = images[position].as_py()
        op = ops[position].as_py() if ops is not None else "I"
        seq = seqs[position].as_py() if seqs is not None else None
        row, problems = _decode_one(line, schema, table, key, op, seq)
        if op == "D" and row is not None:
            good.append((position, row))
        else:
            rejected += problems
    good.sort(key=lambda item: item[0])
    kept = np.concatenate([_positions(item) for item in good]) if good else np.zeros(0, dtype=np.int64)
    rows = pa.concat_tables([item[1] for item in good]) if good else schema.empty_table()
    return DecodedImages(kept, rows.combine_chunks(), rejected)


def _positions(item: tuple[int, pa.Table]) -> np.ndarray:
    start, decoded = item
    return np.arange(start, start + decoded.num_rows, dtype=np.int64)


def _read(images: pa.Array, schema: pa.Schema) -> pa.Table:
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    decoded = pa_json.read_json(pa.BufferReader(_json_lines(images)), parse_options=options)
    return decoded.select(schema.names).cast(schema)


def _decode_range(
    images: pa.Array, schema: pa.Schema, start: int, stop: int, good: list[tuple[int, pa.Table]], bad: list[int]
) -> None:
    """Decode images[start:stop] in one go; on failure bisect, so only bad images end up in ``bad``."""
    if start >= stop:
        return
    try:
        good.append((start, _read(images.slice(start, stop - start), schema)))
        return
    except pa.ArrowInvalid:
        if stop - start == 1:
            bad.append(start)
            return
    middle = (start + stop) // 2
    _decode_range(images, schema, start, middle, good, bad)
    _decode_range(images, schema, middle, stop, good, bad)


def _decode_one(
    line: str, schema: pa.Schema, table: str, key: str, op: str, seq: int | None
) -> tuple[pa.Table | None, list[Rejected]]:
    """One bad image: its rejections (one per bad column), and the row with those columns NULL."""
    try:
        values = json.loads(line)
    except ValueError as exc:
        return None, [Rejected(table, "?", "(row image)", _show(line), f"which is not JSON ({exc})", op, seq, line)]
    problems = []
    for field in schema:
        if field.name not in values:
            continue
        try:
            _read(pa.array([json.dumps({field.name: values[field.name]})]), pa.schema([field]))
        except pa.ArrowInvalid as exc:
            problems.append(
                Rejected(table, str(values.get(key)), field.name, _show(values[field.name]),
                         _reason(field.type, str(exc)), op, seq, line)
            )  # fmt: skip
    cleaned = {name: value for name, value in values.items() if name not in {p.column for p in problems}}
    try:
        return _read(pa.array([json.dumps(cleaned)]), schema), problems
    except pa.ArrowInvalid:
        return None, problems


def _json_lines(images: pa.Array) -> pa.Buffer:
    """The images as one newline-delimited buffer, built by Arrow without Python strings."""
    lines = pc.binary_join_element_wise(images, "", "\n")  # each image followed by a newline
    _, offsets, data = lines.buffers()
    start, end = np.frombuffer(offsets, dtype=np.int32)[[lines.offset, lines.offset + len(lines)]]
    return data.slice(int(start), int(end - start))
