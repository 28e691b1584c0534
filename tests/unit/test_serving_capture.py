"""Data capture: SageMaker's JSONL record format and key layout, sampling, encodings."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from mlops.serving.app import Outcome, Request
from mlops.serving.capture import (
    CaptureSettings,
    CaptureWriter,
    capture_key,
    capture_record,
    read_capture,
    read_watermark,
)

WHEN = datetime(2026, 11, 24, 9, 5, 7, 123000, tzinfo=UTC)


def _settings(root, **kw) -> CaptureSettings:
    return CaptureSettings(destination_uri=root.as_uri(), **kw)


def test_key_layout():
    assert capture_key("mlops-orders", "AllTraffic", WHEN) == "mlops-orders/AllTraffic/2026/11/24/09"


def test_record_format(tmp_path):
    record = capture_record(
        _settings(tmp_path),
        request_body=b"web,north,1,2,3",
        request_content_type="text/csv",
        response_body=b'{"predictions": []}',
        response_content_type="application/json",
        when=WHEN,
        inference_id="abc",
    )
    assert set(record) == {"captureData", "eventMetadata", "eventVersion"} and record["eventVersion"] == "0"
    assert record["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": "web,north,1,2,3",
        "encoding": "CSV",
    }
    assert record["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert record["captureData"]["endpointOutput"]["mode"] == "OUTPUT"
    assert record["eventMetadata"]["inferenceTime"] == "2026-11-24T09:05:07.123Z"
    assert record["eventMetadata"]["inferenceId"] == "abc" and len(record["eventMetadata"]["eventId"]) == 36


def test_other_content_types_are_base64(tmp_path):
    record = capture_record(
        _settings(tmp_path),
        request_body=b"\x00\x01",
        request_content_type="application/x-npy",
        response_body=b"ok",
        response_content_type="text/plain",
        when=WHEN,
    )
    assert record["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert base64.b64decode(record["captureData"]["endpointInput"]["data"]) == b"\x00\x01"


def test_from_request_reads_the_data_capture_config(tmp_path):
    settings = CaptureSettings.from_request(
        {
            "EnableCapture": True,
            "InitialSamplingPercentage": 30,
            "DestinationS3Uri": tmp_path.as_uri(),
            "CaptureOptions": [{"CaptureMode": "Input"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
        }
    )
    assert settings.sampling_percentage == 30 and settings.capture_input and not settings.capture_output
    assert CaptureSettings.from_request({"EnableCapture": False, "DestinationS3Uri": "x"}) is None


def test_writer_samples_and_writes_files_in_the_layout(tmp_path):
    writer = CaptureWriter("ep", _settings(tmp_path, sampling_percentage=50), flush_seconds=3600, seed=1)
    request = Request(b'{"a": 1}', "application/json", "", None, None, None)
    outcome = Outcome(200, b'{"predictions": []}', "application/json", "B")
    for _ in range(400):
        writer.record(request, outcome, WHEN.timestamp())
    writer.close()
    files = list(tmp_path.rglob("*.jsonl"))
    assert len(files) == 1
    assert files[0].parent.relative_to(tmp_path).as_posix() == "ep/B/2026/11/24/09"
    records = read_capture(tmp_path.as_uri(), "ep")
    assert 150 < len(records) < 250  # ~50 % of 400
    assert all(json.loads(r["captureData"]["endpointInput"]["data"]) == {"a": 1} for r in records)
    assert not list(tmp_path.rglob("*.tmp"))


def test_the_watermark_passes_a_record_only_once_its_file_is_written(tmp_path):
    """Issue 12.6: a reader waiting for the watermark past its last request finds every record in files."""
    writer = CaptureWriter("ep", _settings(tmp_path), flush_seconds=3600, seed=1)
    request = Request(b'{"a": 1}', "application/json", "", None, None, None)
    outcome = Outcome(200, b'{"predictions": []}', "application/json", "B")
    assert read_watermark(tmp_path.as_uri(), "ep") is None, "nothing flushed yet"
    writer.record(request, outcome, WHEN.timestamp())
    recorded = datetime.now(UTC)
    writer.flush()
    first = read_watermark(tmp_path.as_uri(), "ep")
    assert first is not None and first >= recorded
    assert len(read_capture(tmp_path.as_uri(), "ep")) == 1
    writer.close()  # an empty flush still advances the watermark: an idle endpoint has nothing unwritten
    second = read_watermark(tmp_path.as_uri(), "ep")
    assert second is not None and second >= first
    assert not list(tmp_path.rglob("*.tmp"))
