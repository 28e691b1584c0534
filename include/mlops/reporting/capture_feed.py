"""The AWS feed of the reporting queue: data-capture files, announced by S3 through EventBridge.

On ``aws`` the endpoint's data capture writes JSONL files to
``s3://<lake>/<capture prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``. The lake bucket sends
its events to EventBridge (``storage.yaml``) and a rule of ``reporting.yaml`` puts each ``Object
Created`` event under the capture prefix on the reporting queue. The handler turns such an event into
one ``capture`` record per line of the file (:mod:`mlops.reporting.records` makes a prediction of each
predicted row), so every prediction the endpoint served reaches the per-minute aggregates.

Standard library only (the Lambda zip holds just ``mlops.reporting``); the S3 read is a callable, on
Lambda ``boto3``'s ``get_object`` (boto3 is in the Lambda runtime).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mlops.reporting.records import RecordError

#: Folders after the endpoint and variant in a capture key: yyyy/mm/dd/hh/<file>.
_AFTER_VARIANT = 5

ReadObject = Callable[[str, str], bytes]


def is_capture_object_event(body: Any) -> bool:
    """Whether a queue message body is EventBridge's S3 ``Object Created`` event."""
    return isinstance(body, dict) and body.get("source") == "aws.s3" and body.get("detail-type") == "Object Created"


def endpoint_and_variant(key: str) -> tuple[str, str]:
    """``.../<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl`` -> (endpoint, variant)."""
    parts = key.split("/")
    if not key.endswith(".jsonl") or len(parts) < _AFTER_VARIANT + 2:
        raise RecordError(f"object {key!r} is not a data-capture file (<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl)")
    date = parts[-_AFTER_VARIANT:-1]
    if not all(part.isdigit() for part in date):
        raise RecordError(f"object {key!r} has no yyyy/mm/dd/hh folders after the variant")
    return parts[-_AFTER_VARIANT - 2], parts[-_AFTER_VARIANT - 1]


def capture_records(text: str, endpoint: str, variant: str) -> list[dict[str, Any]]:
    """One ``capture`` record per non-empty JSONL line of a capture file."""
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            capture = json.loads(line)
        except ValueError:
            raise RecordError(f"capture line {number} is not JSON") from None
        records.append({"type": "capture", "endpoint": endpoint, "variant": variant, "capture": capture})
    return records


def records_of_object_event(body: dict[str, Any], read_object: ReadObject) -> list[dict[str, Any]]:
    """The capture records of the file an S3 ``Object Created`` event announces."""
    try:
        bucket, key = body["detail"]["bucket"]["name"], body["detail"]["object"]["key"]
    except (KeyError, TypeError):
        raise RecordError("S3 Object Created event without detail.bucket.name / detail.object.key") from None
    endpoint, variant = endpoint_and_variant(key)
    try:
        text = read_object(bucket, key).decode("utf-8")
    except Exception as exc:  # any read failure: the message is retried, then dead-lettered
        raise RecordError(f"cannot read s3://{bucket}/{key} ({type(exc).__name__}: {exc})") from None
    return capture_records(text, endpoint, variant)


def s3_reader() -> ReadObject:
    """``read_object`` through boto3 (the Lambda runtime's; credentials from the function's role)."""
    import boto3

    client = boto3.client("s3")

    def read_object(bucket: str, key: str) -> bytes:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()

    return read_object
