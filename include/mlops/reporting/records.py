"""Prediction and event records, and how they aggregate per minute.

Record shapes (JSON)::

    {"type": "prediction", "endpoint": "mlops-orders", "variant": "AllTraffic",
     "time": "2026-11-24T17:05:02Z", "label": "delivered", "latency_ms": 12.5, "model_version": "3"}
    {"type": "event", "endpoint": "mlops-orders", "name": "order_returned", "time": "...", "value": 1}
    {"type": "capture", "endpoint": "mlops-orders", "variant": "AllTraffic", "capture": <one data-capture line>}

A capture record yields one prediction per predicted row (its ``inferenceTime``). Aggregates are
keyed by ``pk`` (``<endpoint>#<variant>`` for predictions, ``<endpoint>#events`` for events) and
``minute`` (``yyyy-mm-ddThh:mmZ``); counters: ``predictions``, ``label_<label>``,
``latency_ms_sum`` / ``latency_count``, ``event_<name>`` and ``event_<name>_value``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

_SAFE = re.compile(r"[^A-Za-z0-9_]")


class RecordError(ValueError):
    """A record cannot be aggregated; the message says which field is wrong."""


def minute_of(value: str) -> str:
    """``2026-11-24T17:05:02.123Z`` -> ``2026-11-24T17:05Z`` (UTC)."""
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise RecordError(f"time {value!r} is not ISO 8601") from None
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return when.strftime("%Y-%m-%dT%H:%MZ")


def counter_name(*parts: str) -> str:
    return _SAFE.sub("_", "_".join(str(p) for p in parts if p != ""))[:200]


def _predictions_of_capture(record: dict[str, Any]) -> list[dict[str, Any]]:
    capture = record["capture"]
    capture = json.loads(capture) if isinstance(capture, str) else capture
    when = capture["eventMetadata"]["inferenceTime"]
    output = capture.get("captureData", {}).get("endpointOutput")
    if not output:
        return [
            {
                "type": "prediction",
                "endpoint": record.get("endpoint"),
                "variant": record.get("variant"),
                "time": when,
                "label": None,
            }
        ]
    text = output["data"]
    if output.get("encoding") == "CSV":
        labels = [line.split(",", 1)[0] for line in text.splitlines() if line]
    else:
        payload = json.loads(text)
        labels = [str(p.get("label")) for p in payload.get("predictions", [])]
    return [
        {
            "type": "prediction",
            "endpoint": record.get("endpoint"),
            "variant": record.get("variant"),
            "time": when,
            "label": label,
        }
        for label in labels
    ]


def counters(record: dict[str, Any]) -> list[tuple[str, str, dict[str, float]]]:
    """(pk, minute, counters) contributions of one record; raises RecordError when it is malformed."""
    if not isinstance(record, dict):
        raise RecordError(f"a record must be a JSON object, got {type(record).__name__}")
    kind = record.get("type", "prediction")
    try:
        if kind == "capture":
            return [c for p in _predictions_of_capture(record) for c in counters(p)]
        endpoint = record.get("endpoint") or "unknown"
        minute = minute_of(record["time"])
        if kind == "prediction":
            values = {"predictions": 1.0}
            if record.get("label") is not None:
                values[counter_name("label", record["label"])] = 1.0
            if record.get("latency_ms") is not None:
                values.update(latency_ms_sum=float(record["latency_ms"]), latency_count=1.0)
            return [(f"{endpoint}#{record.get('variant') or 'AllTraffic'}", minute, values)]
        if kind == "event":
            name = record["name"]
            values = {counter_name("event", name): 1.0}
            if record.get("value") is not None:
                values[counter_name("event", name, "value")] = float(record["value"])
            return [(f"{endpoint}#events", minute, values)]
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, RecordError):
            raise
        raise RecordError(f"{kind} record is malformed ({type(exc).__name__}: {exc})") from None
    raise RecordError(f"record type {kind!r} is not prediction, event or capture")


def aggregate(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    """Sum the counters of many records per (pk, minute)."""
    totals: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for record in records:
        for pk, minute, values in counters(record):
            for name, value in values.items():
                totals[(pk, minute)][name] += value
    return {key: dict(values) for key, values in totals.items()}
