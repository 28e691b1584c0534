"""The drift job's capture reader as it was before issue 15.2 (frozen for bench/bench_drift.py's side-by-side run).

Read SageMaker data capture: JSONL records -> a frame of the model's input features.

Capture layout (see :mod:`mlops.serving.capture`): ``<endpoint>/<variant>/yyyy/mm/dd/hh/`` folders
of ``<MM>-<SS>-<mmm>-<uuid>.jsonl`` files. Each line's ``captureData.endpointInput`` holds the
request: JSON (``{"instances": [...]}``, a list of records or one record; records are objects or
lists in feature order) or CSV (rows in feature order, optional header). Every request row
becomes one row of the frame; ``endpointOutput`` predictions give the predicted labels.

Runs inside the drift job (pandas); which files belong to a window is told from their keys alone
by :mod:`mlops.monitoring.capture_keys`, on the worker.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

MISSING_CATEGORY = "__missing__"
UTC = timezone.utc  # noqa: UP017 - datetime.UTC is Python 3.11+; the processing image may run an older Python


@dataclass
class CaptureWindow:
    """The rows of a window: features (raw values, as sent), predicted labels, and counts."""

    frame: pd.DataFrame
    predicted_labels: list[str] = field(default_factory=list)
    records: int = 0  # capture lines in the window
    skipped_records: int = 0  # capture lines outside the window
    malformed: int = 0  # lines or bodies that could not be parsed
    variants: dict[str, int] = field(default_factory=dict)


def _text(channel: dict[str, Any]) -> str:
    data = channel.get("data", "")
    if channel.get("encoding") == "BASE64":
        return base64.b64decode(data).decode("utf-8", errors="replace")
    return data


def _kind(channel: dict[str, Any]) -> str:
    content_type = channel.get("observedContentType", "").split(";")[0].strip().lower()
    if channel.get("encoding") == "CSV" or content_type == "text/csv":
        return "csv"
    return "json"


def request_rows(channel: dict[str, Any], columns: list[str]) -> list[dict[str, Any]]:
    """The rows of one captured request, each a dict column -> raw value (extra CSV/list values as ``_c<i>``)."""
    text = _text(channel)
    if _kind(channel) == "csv":
        rows: list[Any] = [[v if v != "" else None for v in row] for row in csv.reader(io.StringIO(text)) if row]
        if rows and [str(v).strip() for v in rows[0]] == columns:
            rows = rows[1:]
    else:
        payload = json.loads(text)
        rows = payload.get("instances", payload.get("inputs", payload)) if isinstance(payload, dict) else payload
        rows = [rows] if isinstance(rows, dict) else rows
    out = []
    for row in rows:
        if isinstance(row, dict):
            out.append(row)
        else:
            values = list(row)
            names = columns + [f"_c{i}" for i in range(len(columns), len(values))]
            out.append(dict(zip(names, values)))  # noqa: B905 - shorter rows leave features missing
    return out


def response_labels(channel: dict[str, Any]) -> list[str]:
    """Predicted labels of one captured response (JSON ``predictions[].label`` or CSV first field)."""
    text = _text(channel)
    if _kind(channel) == "csv":
        return [row[0] for row in csv.reader(io.StringIO(text)) if row]
    payload = json.loads(text)
    predictions = payload.get("predictions", []) if isinstance(payload, dict) else payload
    return [str(p.get("label")) if isinstance(p, dict) else str(p) for p in predictions]


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def read_window(
    lines: Iterable[str],
    columns: list[str],
    start: datetime | None = None,
    end: datetime | None = None,
) -> CaptureWindow:
    """Parse capture lines; keep records whose ``inferenceTime`` is in ``[start, end)``."""
    rows: list[dict[str, Any]] = []
    labels: list[str] = []
    window = CaptureWindow(frame=pd.DataFrame())
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            when = _parse_time(record["eventMetadata"]["inferenceTime"])
        except (ValueError, KeyError, TypeError):
            window.malformed += 1
            continue
        if (start and when < start) or (end and when >= end):
            window.skipped_records += 1
            continue
        data = record.get("captureData", {})
        try:
            new_rows = request_rows(data["endpointInput"], columns) if "endpointInput" in data else []
            if "endpointOutput" in data:
                labels += response_labels(data["endpointOutput"])
        except (ValueError, KeyError, TypeError, AttributeError):
            window.malformed += 1
            continue
        rows += new_rows
        window.records += 1
    window.frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame(columns=columns)
    window.predicted_labels = labels
    return window


def capture_files(root: Path) -> list[Path]:
    """Every capture file under a folder, oldest folder first."""
    return sorted(root.rglob("*.jsonl"), key=lambda p: (p.parent.as_posix(), p.name))


def read_folder(
    root: Path, columns: list[str], start: datetime | None = None, end: datetime | None = None
) -> CaptureWindow:
    """:func:`read_window` over every ``*.jsonl`` under ``root``; counts records per variant folder."""

    def lines() -> Iterable[str]:
        for path in capture_files(root):
            with path.open() as handle:
                yield from handle

    return read_window(lines(), columns, start, end)
