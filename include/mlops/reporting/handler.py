"""The real-time reporting handler (AWS Lambda ``mlops.reporting.handler.handle``; the same code locally).

``handler(event, context)`` accepts:

- an SQS event ``{"Records": [{"messageId": ..., "body": "<record JSON or a JSON list of records>"}]}``
  (the production wiring: queue -> Lambda with ``ReportBatchItemFailures``);
- ``{"records": [...]}`` or a list of records, or one record (direct invocation, local use).

A message body may also be EventBridge's S3 ``Object Created`` event of a data-capture file (the aws
feed, :mod:`mlops.reporting.capture_feed`): the file is read and each line becomes a ``capture`` record.

Records (see :mod:`mlops.reporting.records`) are summed per (pk, minute) first, then written with
one UpdateItem ``ADD`` per item, so a batch of 100 predictions in one minute is one write.
Malformed SQS messages are returned as ``batchItemFailures`` (retried, then dead-lettered);
well-formed ones are written. Delivery is at least once: a batch retried after a failed write
can count twice.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from mlops.reporting.capture_feed import ReadObject, is_capture_object_event, records_of_object_event, s3_reader
from mlops.reporting.records import RecordError, aggregate, counters
from mlops.reporting.store import Store, store_from_env

log = logging.getLogger(__name__)
_STORE: Store | None = None
_READ_OBJECT: ReadObject | None = None


def _read_object() -> ReadObject:
    global _READ_OBJECT
    if _READ_OBJECT is None:
        _READ_OBJECT = s3_reader()
    return _READ_OBJECT


def _store() -> Store:
    global _STORE
    if _STORE is None:
        _STORE = store_from_env()
    return _STORE


def _messages(event: Any) -> list[tuple[str | None, Any]]:
    """(SQS message id or None, parsed body) pairs of an event."""
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        out = []
        for message in event["Records"]:
            try:
                out.append((message.get("messageId"), json.loads(message["body"])))
            except (KeyError, TypeError, ValueError):
                out.append((message.get("messageId"), RecordError("message body is not JSON")))
        return out
    if isinstance(event, dict) and isinstance(event.get("records"), list):
        return [(None, r) for r in event["records"]]
    return [(None, r) for r in (event if isinstance(event, list) else [event])]


def handler(
    event: Any, context: Any = None, store: Store | None = None, read_object: ReadObject | None = None
) -> dict[str, Any]:
    """Aggregate the event's records per minute into the store; return counts and SQS batch failures."""
    good: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    rejected = 0
    for message_id, body in _messages(event):
        try:
            if isinstance(body, Exception):
                raise body
            if is_capture_object_event(body):
                body = records_of_object_event(body, read_object or _read_object())
            records = body if isinstance(body, list) else [body]
            for record in records:
                counters(record)  # validate before anything is written
        except RecordError as exc:
            rejected += 1
            log.warning("rejected record(s) %s: %s", message_id or "", exc)
            if message_id:
                failures.append({"itemIdentifier": message_id})
            continue
        good += records
    totals = aggregate(good)
    target = store or _store()
    for (pk, minute), values in sorted(totals.items()):
        target.add(pk, minute, values)
    return {"records": len(good), "rejected": rejected, "items_updated": len(totals), "batchItemFailures": failures}


handle = handler  # the handler path in infra/cfn/reporting.yaml
