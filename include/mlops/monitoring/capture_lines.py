"""Capture files as lines, a strict JSON parser, and the quarantine for lines that cannot be read.

Job code (the drift job's capture reader; numpy/pandas-free). Three pieces:

- :func:`file_lines` reads a capture file in chunks of ``chunk_bytes`` and yields its lines as
  bytes, so memory is bounded by the chunk size whatever the file holds; a line longer than
  ``max_line_bytes`` (no real capture line is: a request is at most 6 MiB) is reported as such
  instead of being held.
- :data:`loads` parses JSON with orjson where it is installed (the SageMaker runtime here), else
  with the standard library configured to agree with orjson on every input: invalid UTF-8, lone
  surrogates, ``NaN``/``Infinity`` and numbers that overflow a double are errors, integers beyond
  64 bits become floats. The processing image on AWS (the sklearn framework image) has no orjson,
  so the job runs there with the fallback, slower but with the same results.
- :class:`Quarantine` counts lines that cannot be read by reason, keeps the first few as
  examples, and writes each one aside (JSONL: source file, line number, byte offset, reason and
  the line itself) so nothing is lost and the window's analysis goes on without them.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_LINE_BYTES = 32 * 1024 * 1024
QUARANTINED_PREFIX_BYTES = 64 * 1024  # of a line too long to hold: the part written aside
EXAMPLES = 20
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1
_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")


class Malformed(ValueError):
    """A line (or the request/response inside it) cannot be read; ``kind`` is the short reason."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is infinity when parsed as a double")
    return value


def _int_or_float(text: str) -> int | float:
    """orjson's rule: integers within int64/uint64 stay ints, larger ones become doubles."""
    if len(text) <= 19 or (len(text) == 20 and (text[0] == "-" or text <= "18446744073709551615")):
        value = int(text)
        if _INT64_MIN <= value <= _UINT64_MAX:
            return value
    return _finite_float(text)


def stdlib_loads(data: bytes | str) -> Any:
    """``json.loads`` held to orjson's rules (see the module docstring); raises ValueError."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_int_or_float)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    raw = text.encode("utf-8", "surrogatepass")
    if _SURROGATE_ESCAPE.search(raw):  # an escaped lone surrogate decodes to a str that is not UTF-8
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # raises UnicodeEncodeError (a ValueError)
    return value


def _orjson_loads() -> Callable[[bytes | str], Any] | None:
    try:
        import orjson
    except ImportError:
        return None
    return orjson.loads


orjson_loads = _orjson_loads()
loads: Callable[[bytes | str], Any] = orjson_loads or stdlib_loads
JSON_LIBRARY = "orjson" if orjson_loads else "json"


class _OpenLine:
    """The line being read across chunks: its pieces, or only its first bytes once it is too long."""

    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self.pieces: list[bytes] = []
        self.size = 0  # bytes of the line so far, the dropped ones included
        self.prefix: bytes | None = None  # set when the line passed max_line_bytes

    def extend(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.prefix is not None:
            if len(self.prefix) < QUARANTINED_PREFIX_BYTES:
                self.prefix += piece[: QUARANTINED_PREFIX_BYTES - len(self.prefix)]
            return
        self.pieces.append(piece)
        if self.size > self.max_line_bytes:
            self.prefix = b"".join(self.pieces)[:QUARANTINED_PREFIX_BYTES]
            self.pieces = []

    def take(self) -> tuple[bytes, bool, int]:
        """(the line or its prefix, complete, its size in bytes), and start the next line."""
        if self.prefix is not None:
            line, complete = self.prefix, False
        else:
            line, complete = (self.pieces[0] if len(self.pieces) == 1 else b"".join(self.pieces)), True
        size = self.size
        self.pieces, self.size, self.prefix = [], 0, None
        return line, complete, size


def file_lines(
    handle: IO[bytes], chunk_bytes: int = DEFAULT_CHUNK_BYTES, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[tuple[int, int, bytes, bool]]:
    """(line number, byte offset, line, complete) per line, reading ``chunk_bytes`` at a time; ``complete``
    is False for a line longer than ``max_line_bytes``, of which only the first
    :data:`QUARANTINED_PREFIX_BYTES` are kept and given."""
    number, offset = 0, 0
    current = _OpenLine(max_line_bytes)
    while chunk := handle.read(chunk_bytes):
        pieces = chunk.split(b"\n")
        tail = pieces.pop()  # the start of a line that goes on in the next chunk (b"" after a final newline)
        if pieces:
            current.extend(pieces[0])
            line, complete, size = current.take()
            number += 1
            yield number, offset, line, complete
            offset += size + 1
            for piece in pieces[1:]:
                number += 1
                if len(piece) <= max_line_bytes:
                    yield number, offset, piece, True
                else:
                    yield number, offset, piece[:QUARANTINED_PREFIX_BYTES], False
                offset += len(piece) + 1
        current.extend(tail)
    if current.size:
        line, complete, _size = current.take()
        yield number + 1, offset, line, complete


class Quarantine:
    """Lines that could not be read: counted by reason, the first :data:`EXAMPLES` kept, all written aside."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.by_reason: Counter[str] = Counter()
        self.examples: list[dict[str, Any]] = []
        self._handle: IO[str] | None = None

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

    def add(self, source: str, line: int, offset: int, error: Malformed, raw: bytes | str) -> None:
        """Count one unreadable line and write it aside (as text when it is UTF-8, else base64)."""
        self.by_reason[error.kind] += 1
        entry = {"source": source, "line": line, "offset": offset, "reason": str(error)[:500]}
        if len(self.examples) < EXAMPLES:
            self.examples.append(entry)
        if self.path is None:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("w", encoding="utf-8")
        data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
        try:
            record = {**entry, "encoding": "UTF-8", "data": data.decode("utf-8")}
        except UnicodeDecodeError:
            record = {**entry, "encoding": "BASE64", "data": base64.b64encode(data).decode("ascii")}
        self._handle.write(json.dumps(record) + "\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def summary(self) -> dict[str, Any]:
        """``{"total", "by_reason", "examples", "file"}`` for drift_summary.json and the report."""
        return {
            "total": self.total,
            "by_reason": dict(sorted(self.by_reason.items())),
            "examples": list(self.examples),
            "file": self.path.name if self.path is not None and self.total else None,
        }
