"""Capture object keys and windows: which files of an endpoint's data capture belong to a window.

Names only, no content read and no third-party import: the capture sensor and the drift job's
request builder run this on the Airflow worker. Key layout (see :mod:`mlops.serving.capture`):
``<variant>/yyyy/mm/dd/hh/<MM>-<SS>-<mmm>-<uuid>.jsonl`` under ``<capture>/<endpoint>/``; a file is
named after the time it was written.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

UTC = timezone.utc  # noqa: UP017 - bundled with the processing jobs, which may run an older Python
FLUSH_SLACK = timedelta(minutes=5)


def key_time(key: str) -> datetime | None:
    """The time a capture key encodes: ``.../yyyy/mm/dd/hh/MM-SS-mmm-<uuid>.jsonl`` -> datetime (UTC)."""
    parts = key.strip("/").split("/")
    if len(parts) < 5 or not parts[-1].endswith(".jsonl"):
        return None
    try:
        year, month, day, hour = (int(p) for p in parts[-5:-1])
        minute, second, millis = (int(p) for p in parts[-1].split("-")[:3])
        return datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=UTC)
    except ValueError:
        return None


def hour_folders(start: datetime, end: datetime) -> list[str]:
    """``yyyy/mm/dd/hh`` of every hour overlapping ``[start, end]`` (an object's folder is its request's hour)."""
    hour = start.replace(minute=0, second=0, microsecond=0)
    out = []
    while hour <= end:
        out.append(f"{hour:%Y/%m/%d/%H}")
        hour += timedelta(hours=1)
    return out


def keys_in_window(keys: Iterable[str], start: datetime, end: datetime, slack: timedelta = FLUSH_SLACK) -> list[str]:
    """Capture keys (relative to the endpoint's capture prefix) written during ``[start, end + slack)``.

    A file is named after the time it was written, which is at or shortly after its requests; the
    slack keeps a window's last requests whose file was flushed after the window ended.
    """
    selected = []
    for key in keys:
        when = key_time(key)
        if when is not None and start <= when < end + slack:
            selected.append(key)
    return selected
