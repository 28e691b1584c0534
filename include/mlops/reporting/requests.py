"""DynamoDB requests of the reporting handler, built as data (validated against botocore in tests).

The table (``infra/cfn/reporting.yaml``): partition key ``pk`` (S), sort key ``minute`` (S), TTL
attribute ``expires_at``. ``minute`` is a DynamoDB reserved word, hence ``#m`` placeholders.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

TTL_ATTRIBUTE = "expires_at"


def expires_at(minute: str, ttl_days: int) -> int:
    """Epoch seconds when an aggregate expires: its minute plus ``ttl_days`` (from the data, not the clock)."""
    when = datetime.strptime(minute, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    return int(when.timestamp()) + ttl_days * 86400


def update_item_request(table: str, pk: str, minute: str, counters: dict[str, float], ttl_days: int) -> dict[str, Any]:
    """UpdateItem adding ``counters`` to the (pk, minute) item (created when missing) and setting its TTL."""
    names = {"#ttl": TTL_ATTRIBUTE}
    values: dict[str, Any] = {":ttl": {"N": str(expires_at(minute, ttl_days))}}
    adds = []
    for i, (name, value) in enumerate(sorted(counters.items())):
        names[f"#c{i}"] = name
        values[f":c{i}"] = {"N": repr(float(value)) if value != int(value) else str(int(value))}
        adds.append(f"#c{i} :c{i}")
    return {
        "TableName": table,
        "Key": {"pk": {"S": pk}, "minute": {"S": minute}},
        "UpdateExpression": f"SET #ttl = :ttl ADD {', '.join(adds)}",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def query_request(table: str, pk: str, first_minute: str, last_minute: str) -> dict[str, Any]:
    """Query the items of ``pk`` with ``first_minute <= minute <= last_minute``."""
    return {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND #m BETWEEN :a AND :b",
        "ExpressionAttributeNames": {"#m": "minute"},
        "ExpressionAttributeValues": {":pk": {"S": pk}, ":a": {"S": first_minute}, ":b": {"S": last_minute}},
    }


def send_message_batch_request(queue_url: str, records: list[dict[str, Any]], first_id: int = 0) -> dict[str, Any]:
    """SQS SendMessageBatch of up to 10 records (the reporting queue feeds the Lambda)."""
    import json

    if not 1 <= len(records) <= 10:
        raise ValueError(f"SendMessageBatch takes 1 to 10 messages, got {len(records)}")
    return {
        "QueueUrl": queue_url,
        "Entries": [
            {"Id": str(first_id + i), "MessageBody": json.dumps(r, separators=(",", ":"))}
            for i, r in enumerate(records)
        ],
    }


def item_values(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (typed values) as plain values."""
    out: dict[str, Any] = {}
    for name, typed in item.items():
        kind, value = next(iter(typed.items()))
        out[name] = float(value) if kind == "N" else value
    return out
