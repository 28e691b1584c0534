"""Data capture in SageMaker's format and key layout.

Each sampled invocation becomes one JSON line::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "...", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "...", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<optional>", "inferenceTime": "2026-01-01T00:00:00Z"},
     "eventVersion": "0"}

Files land under ``<DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl``.
Like SageMaker, captured records are buffered and written as whole new objects (about once a
second here); each file appears atomically, so a reader never sees half a line.

After every flush (also an empty one) the writer publishes its watermark,
``<DestinationS3Uri>/<endpoint>/_capture_watermark.json`` = ``{"flushed_through": "<ISO time>"}``:
every invocation that completed before that moment is in a capture file. A reader that must not
miss records (``make demo`` before it closes a monitoring window) waits for the watermark to pass
its last request (:func:`read_watermark`). SageMaker publishes no such marker; on aws the
monitoring window's ``monitoring.capture_flush_lag_seconds`` alone covers the delivery delay.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.lake import local_path

DEFAULT_CSV_TYPES = ("text/csv",)
DEFAULT_JSON_TYPES = ("application/json",)
WATERMARK_NAME = "_capture_watermark.json"


@dataclass(frozen=True)
class CaptureSettings:
    """The parts of a ``DataCaptureConfig`` the capture writer executes."""

    destination_uri: str
    sampling_percentage: float = 100.0
    capture_input: bool = True
    capture_output: bool = True
    csv_content_types: tuple[str, ...] = DEFAULT_CSV_TYPES
    json_content_types: tuple[str, ...] = DEFAULT_JSON_TYPES

    @classmethod
    def from_request(cls, config: dict[str, Any] | None) -> CaptureSettings | None:
        """Settings from a CreateEndpointConfig ``DataCaptureConfig``; None when capture is off."""
        if not config or not config.get("EnableCapture", True):
            return None
        modes = {
            o["CaptureMode"]
            for o in config.get("CaptureOptions", [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}])
        }
        headers = config.get("CaptureContentTypeHeader", {})
        return cls(
            destination_uri=config["DestinationS3Uri"],
            sampling_percentage=float(config.get("InitialSamplingPercentage", 100)),
            capture_input="Input" in modes or "InputAndOutput" in modes,
            capture_output="Output" in modes or "InputAndOutput" in modes,
            csv_content_types=tuple(headers.get("CsvContentTypes", DEFAULT_CSV_TYPES)),
            json_content_types=tuple(headers.get("JsonContentTypes", DEFAULT_JSON_TYPES)),
        )


def capture_key(endpoint: str, variant: str, when: datetime) -> str:
    """The folder of a capture file: ``endpoint/variant/yyyy/mm/dd/hh``."""
    return f"{endpoint}/{variant}/{when:%Y/%m/%d/%H}"


def capture_file_name(when: datetime) -> str:
    return f"{when:%M-%S}-{when.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"


def encode(data: bytes, content_type: str, settings: CaptureSettings) -> tuple[str, str]:
    """(data, encoding) as SageMaker records it: CSV and JSON as text, anything else base64."""
    base = content_type.split(";", 1)[0].strip().lower()
    try:
        if base in settings.csv_content_types:
            return data.decode("utf-8"), "CSV"
        if base in settings.json_content_types:
            return data.decode("utf-8"), "JSON"
    except UnicodeDecodeError:
        pass
    return base64.b64encode(data).decode("ascii"), "BASE64"


def capture_record(
    settings: CaptureSettings,
    *,
    request_body: bytes,
    request_content_type: str,
    response_body: bytes,
    response_content_type: str,
    when: datetime,
    inference_id: str | None = None,
) -> dict[str, Any]:
    """One capture line (as a dict) in SageMaker's format."""
    data: dict[str, Any] = {}
    if settings.capture_input:
        text, encoding = encode(request_body, request_content_type, settings)
        data["endpointInput"] = {
            "observedContentType": request_content_type,
            "mode": "INPUT",
            "data": text,
            "encoding": encoding,
        }
    if settings.capture_output:
        text, encoding = encode(response_body, response_content_type, settings)
        data["endpointOutput"] = {
            "observedContentType": response_content_type,
            "mode": "OUTPUT",
            "data": text,
            "encoding": encoding,
        }
    metadata = {
        "eventId": str(uuid.uuid4()),
        "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
    }
    if inference_id:
        metadata["inferenceId"] = inference_id
    return {"captureData": data, "eventMetadata": metadata, "eventVersion": "0"}


@dataclass
class CaptureWriter:
    """Samples invocations and writes them to the capture layout from a background thread."""

    endpoint_name: str
    settings: CaptureSettings
    flush_seconds: float = 1.0
    seed: int | None = None
    _buffer: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _flush_lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 - sampling, not security
        self._root = local_path(self.settings.destination_uri)
        self._thread = threading.Thread(target=self._run, name="data-capture", daemon=True)
        self._thread.start()

    def record(self, request: Any, outcome: Any, started: float) -> None:
        """Sample and buffer one successful invocation (called on the serving event loop; no I/O)."""
        if self._random.random() * 100.0 >= self.settings.sampling_percentage:
            return
        when = datetime.fromtimestamp(started, UTC)
        line = json.dumps(
            capture_record(
                self.settings,
                request_body=request.body,
                request_content_type=request.content_type,
                response_body=outcome.body,
                response_content_type=outcome.content_type,
                when=when,
                inference_id=request.inference_id,
            ),
            separators=(",", ":"),
        )
        with self._lock:
            self._buffer[(outcome.variant, capture_key(self.endpoint_name, outcome.variant, when))].append(line)

    def flush(self) -> list[Path]:
        """Write everything buffered as new files, then the watermark; returns the capture files' paths.

        Flushes are serialised, so a watermark is published only once every earlier record is written.
        """
        with self._flush_lock:
            with self._lock:
                pending, self._buffer = self._buffer, defaultdict(list)
                flushed_through = datetime.now(UTC)  # every record() that finished before this is in ``pending``
            written = []
            for (_variant, key), lines in pending.items():
                folder = self._root / key
                folder.mkdir(parents=True, exist_ok=True)
                target = folder / capture_file_name(flushed_through)
                tmp = folder / f".{target.name}.tmp"
                tmp.write_text("\n".join(lines) + "\n")
                tmp.replace(target)
                written.append(target)
            self._publish_watermark(flushed_through)
        return written

    def _publish_watermark(self, flushed_through: datetime) -> None:
        """Replace the endpoint's watermark file atomically."""
        folder = self._root / self.endpoint_name
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{WATERMARK_NAME}.tmp"
        tmp.write_text(json.dumps({"flushed_through": flushed_through.isoformat()}))
        tmp.replace(folder / WATERMARK_NAME)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()


def read_watermark(root_uri: str, endpoint: str) -> datetime | None:
    """When the endpoint's capture writer last flushed (every invocation finished before it is written); None
    when it never published one."""
    path = local_path(root_uri) / endpoint / WATERMARK_NAME
    try:
        return datetime.fromisoformat(json.loads(path.read_text())["flushed_through"])
    except FileNotFoundError:
        return None


def read_capture(root_uri: str, endpoint: str, variant: str | None = None) -> list[dict[str, Any]]:
    """Every captured record of an endpoint (optionally one variant), oldest file first."""
    base = local_path(root_uri) / endpoint
    pattern = f"{variant}/*/*/*/*/*.jsonl" if variant else "*/*/*/*/*/*.jsonl"
    records = []
    for path in sorted(base.glob(pattern), key=lambda p: (p.parent.as_posix(), p.name)):
        records += [json.loads(line) for line in path.read_text().splitlines() if line]
    return records
