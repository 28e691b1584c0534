"""Real-time reporting: the Lambda-style handler aggregates per minute through the same UpdateItem
requests on DynamoDB (stubbed client) and SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.reporting import handler as handler_module
from mlops.reporting.handler import handle, handler
from mlops.reporting.records import RecordError, aggregate, counters, minute_of
from mlops.reporting.requests import expires_at, update_item_request
from mlops.reporting.store import SqliteTable, Store, read_window, sqlite_store, store_from_env

ROOT = Path(__file__).resolve().parents[2]


def prediction(second: int, label: str = "delivered", variant: str = "AllTraffic", minute: int = 5) -> dict:
    return {
        "type": "prediction",
        "endpoint": "orders",
        "variant": variant,
        "label": label,
        "latency_ms": 10.0,
        "time": f"2026-11-24T17:{minute:02d}:{second:02d}Z",
    }


def sqs(*bodies, ids=None) -> dict:
    return {
        "Records": [
            {
                "messageId": (ids or [f"m{i}" for i in range(len(bodies))])[i],
                "eventSource": "aws:sqs",
                "body": body if isinstance(body, str) else json.dumps(body),
            }
            for i, body in enumerate(bodies)
        ]
    }


class RecordingDynamo:
    """Records UpdateItem calls, and executes them with the SQLite stand-in to answer queries."""

    def __init__(self, path):
        self.calls = []
        self.table = SqliteTable(path)

    def update_item(self, **request):
        self.calls.append(request)
        return self.table.update_item(**request)

    def query(self, **request):
        return self.table.query(**request)


def test_records_aggregate_per_minute():
    totals = aggregate(
        [
            prediction(1),
            prediction(30, "returned"),
            prediction(2, minute=6),
            {
                "type": "event",
                "endpoint": "orders",
                "name": "order returned",
                "value": 25.5,
                "time": "2026-11-24T17:05:40+00:00",
            },
        ]
    )
    assert totals[("orders#AllTraffic", "2026-11-24T17:05Z")] == {
        "predictions": 2.0,
        "label_delivered": 1.0,
        "label_returned": 1.0,
        "latency_ms_sum": 20.0,
        "latency_count": 2.0,
    }
    assert totals[("orders#events", "2026-11-24T17:05Z")] == {
        "event_order_returned": 1.0,
        "event_order_returned_value": 25.5,
    }
    assert minute_of("2026-11-24T18:05:02.123+01:00") == "2026-11-24T17:05Z"


def test_capture_lines_become_predictions():
    line = {
        "captureData": {
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "encoding": "JSON",
                "data": json.dumps({"predictions": [{"label": "a"}, {"label": "b"}]}),
            }
        },
        "eventMetadata": {"eventId": "e", "inferenceTime": "2026-11-24T17:05:01.000Z"},
        "eventVersion": "0",
    }
    found = counters({"type": "capture", "endpoint": "orders", "variant": "B", "capture": json.dumps(line)})
    assert [(pk, minute, c.get("label_a", 0) + c.get("label_b", 0)) for pk, minute, c in found] == [
        ("orders#B", "2026-11-24T17:05Z", 1.0),
        ("orders#B", "2026-11-24T17:05Z", 1.0),
    ]


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "prediction"},
        {"type": "event", "time": "2026-11-24T17:00:00Z"},
        {"type": "nope", "time": "2026-11-24T17:00:00Z"},
        ["list"],
        {"type": "prediction", "time": "yesterday"},
    ],
)
def test_malformed_records_are_named(bad):
    with pytest.raises(RecordError):
        counters(bad)


def test_sqs_batch_on_sqlite_with_partial_failures(tmp_path):
    store = sqlite_store(tmp_path / "rt.sqlite")
    result = handler(
        sqs(prediction(1), [prediction(2), prediction(3, "returned")], "{not json", {"type": "nope"}), None, store
    )
    assert result == {
        "records": 3,
        "rejected": 2,
        "items_updated": 1,
        "batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}],
    }
    handler({"records": [prediction(9)]}, None, store)
    handler(prediction(10, variant="B"), None, store)
    rows = {
        (r["pk"], r["minute"]): r for r in store.items("orders#AllTraffic", "2026-11-24T17:00Z", "2026-11-24T17:59Z")
    }
    row = rows[("orders#AllTraffic", "2026-11-24T17:05Z")]
    assert row["predictions"] == 4.0 and row["label_returned"] == 1.0 and row["latency_count"] == 4.0
    assert row["expires_at"] == expires_at("2026-11-24T17:05Z", 30)


def test_same_requests_on_dynamodb_and_sqlite(tmp_path):
    dynamo = RecordingDynamo(tmp_path / "dynamo.sqlite")
    event = sqs([prediction(1), prediction(2, "returned"), prediction(3, minute=7)])
    handler(event, None, Store(dynamo, "mlops-dev-realtime-metrics", 7))
    local = sqlite_store(tmp_path / "local.sqlite", 7)
    handler(event, None, local)
    assert [c["TableName"] for c in dynamo.calls] == ["mlops-dev-realtime-metrics"] * 2
    first = dynamo.calls[0]
    assert first["Key"] == {"pk": {"S": "orders#AllTraffic"}, "minute": {"S": "2026-11-24T17:05Z"}}
    assert first["UpdateExpression"].startswith("SET #ttl = :ttl ADD ")
    from datetime import UTC, datetime

    span = (datetime(2026, 11, 24, 17, 0, tzinfo=UTC), datetime(2026, 11, 24, 17, 59, tzinfo=UTC))
    assert read_window(Store(dynamo, "t"), ["orders#AllTraffic"], *span) == read_window(
        local, ["orders#AllTraffic"], *span
    )


def test_store_selection_from_environment(tmp_path, monkeypatch):
    import sys as _sys
    from unittest import mock

    assert isinstance(store_from_env({"MLOPS_REPORTING_DB": str(tmp_path / "x.sqlite")}).client, SqliteTable)
    fake_boto3 = mock.MagicMock()
    with mock.patch.dict(_sys.modules, {"boto3": fake_boto3}):
        store = store_from_env({"METRICS_TABLE": "mlops-dev-realtime-metrics", "AGGREGATE_TTL_DAYS": "9"})
    fake_boto3.client.assert_called_once_with("dynamodb")
    assert (store.table, store.ttl_days) == ("mlops-dev-realtime-metrics", 9)
    monkeypatch.setenv("MLOPS_REPORTING_DB", str(tmp_path / "lambda.sqlite"))
    monkeypatch.setattr(handler_module, "_STORE", None)
    assert handle(prediction(1))["items_updated"] == 1  # handle = the Lambda's handler path
    assert (tmp_path / "lambda.sqlite").exists()


def test_sqlite_refuses_expressions_it_does_not_implement(tmp_path):
    table = SqliteTable(tmp_path / "t.sqlite")
    request = update_item_request("t", "pk", "2026-11-24T17:05Z", {"a": 1}, 1)
    with pytest.raises(ValueError, match="unsupported"):
        table.update_item(**{**request, "UpdateExpression": "REMOVE #c0"})


def test_handler_package_runs_on_the_stdlib():
    """The Lambda zip holds the mlops package only: the handler must import without pydantic, yaml, pandas."""
    code = (
        "import sys; sys.modules.update({m: None for m in ('pydantic', 'yaml', 'pandas', 'numpy', 'boto3')}); "
        "import mlops.reporting.handler as h, json; "
        "print(json.dumps(h.handler({'type': 'event', 'name': 'x', 'time': '2026-01-01T00:00:00Z'}, None, "
        "h.store_from_env({'MLOPS_REPORTING_DB': sys.argv[1]}))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / ".pytest-reporting.sqlite")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "include")},
        check=False,
    )
    (ROOT / ".pytest-reporting.sqlite").unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        (ROOT / f".pytest-reporting.sqlite{suffix}").unlink(missing_ok=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["items_updated"] == 1
