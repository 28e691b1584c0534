"""The aws feed of real-time reporting: a new data-capture file, announced by S3 through EventBridge on the
queue, is read by the handler and every predicted row lands in the per-minute aggregates.

The capture files are written by the serving layer's own capture writer functions (SageMaker's format
and key layout), stored in moto's S3 (in process), and read through the handler's boto3 reader.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mlops.reporting.capture_feed import endpoint_and_variant, s3_reader
from mlops.reporting.handler import handler
from mlops.reporting.records import RecordError
from mlops.reporting.store import read_window, sqlite_store
from mlops.serving.capture import CaptureSettings, capture_file_name, capture_key, capture_record

BUCKET = "mlops-lake-dev"
WHEN = datetime(2026, 12, 1, 10, 15, 30, tzinfo=UTC)


def _capture_file(labels: list[list[str]]) -> str:
    """A JSONL capture file with one line per invocation, each predicting ``labels[i]``."""
    settings = CaptureSettings(destination_uri=f"s3://{BUCKET}/capture")
    lines = []
    for index, batch in enumerate(labels):
        response = {"predictions": [{"label": label, "probabilities": {label: 0.9}} for label in batch]}
        line = capture_record(settings, request_body=b'{"instances": []}', request_content_type="application/json",
                              response_body=json.dumps(response).encode(), response_content_type="application/json",
                              when=WHEN.replace(second=index))  # fmt: skip
        lines.append(json.dumps(line))
    return "\n".join(lines) + "\n"


def _object_created(key: str, bucket: str = BUCKET) -> dict:
    """EventBridge's S3 Object Created event, as the rule of reporting.yaml puts it on the queue."""
    return {"version": "0", "id": "e1", "source": "aws.s3", "detail-type": "Object Created", "account": "123456789012",
            "time": "2026-12-01T10:16:00Z", "region": "eu-west-1", "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {"version": "0", "bucket": {"name": bucket}, "object": {"key": key, "size": 100},
                       "reason": "PutObject"}}  # fmt: skip


def _sqs(*bodies: dict) -> dict:
    return {"Records": [{"messageId": f"m{i}", "eventSource": "aws:sqs", "body": json.dumps(body)}
                        for i, body in enumerate(bodies)]}  # fmt: skip


@pytest.fixture
def s3(monkeypatch):
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        import boto3

        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


def test_every_predicted_row_of_a_new_capture_file_is_counted(s3, tmp_path):
    key = f"capture/{capture_key('mlops-orders', 'AllTraffic', WHEN)}/{capture_file_name(WHEN)}"
    s3.put_object(Bucket=BUCKET, Key=key, Body=_capture_file([["delivered", "returned"], ["delivered"]]).encode())
    store = sqlite_store(tmp_path / "reporting.db")
    result = handler(_sqs(_object_created(key)), store=store, read_object=s3_reader())
    assert result["batchItemFailures"] == [] and result["records"] == 2  # two capture lines
    (row,) = read_window(store, ["mlops-orders#AllTraffic"], WHEN, WHEN)
    assert row["minute"] == "2026-12-01T10:15Z"
    assert (row["predictions"], row["label_delivered"], row["label_returned"]) == (3, 2, 1)


def test_an_unreadable_or_misplaced_file_is_retried_and_the_rest_is_counted(s3, tmp_path):
    good = f"capture/{capture_key('mlops-orders', 'Blue', WHEN)}/{capture_file_name(WHEN)}"
    s3.put_object(Bucket=BUCKET, Key=good, Body=_capture_file([["cancelled"]]).encode())
    missing = f"capture/{capture_key('mlops-orders', 'Blue', WHEN)}/gone.jsonl"
    misplaced = "capture/notes.jsonl"
    store = sqlite_store(tmp_path / "reporting.db")
    event = _sqs(_object_created(missing), _object_created(good), _object_created(misplaced))
    result = handler(event, store=store, read_object=s3_reader())
    assert result["batchItemFailures"] == [{"itemIdentifier": "m0"}, {"itemIdentifier": "m2"}]
    (row,) = read_window(store, ["mlops-orders#Blue"], WHEN, WHEN)
    assert row["predictions"] == 1 and row["label_cancelled"] == 1


def test_capture_keys_name_their_endpoint_and_variant():
    key = f"capture/{capture_key('mlops-orders', 'Green', WHEN)}/{capture_file_name(WHEN)}"
    assert endpoint_and_variant(key) == ("mlops-orders", "Green")
    assert endpoint_and_variant(f"deeper/prefix/{key}") == ("mlops-orders", "Green")
    for bad in (
        "capture/mlops-orders/Green/file.jsonl",
        key.replace(".jsonl", ".json"),
        "capture/a/b/yy/mm/dd/hh/x.jsonl",
    ):
        with pytest.raises(RecordError):
            endpoint_and_variant(bad)
