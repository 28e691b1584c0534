"""Captured predictions with their inference ids: the model-quality job's half of the join (job code).

A capture record joins ground truth when it carries ``eventMetadata.inferenceId`` and its response
holds exactly one prediction with class probabilities (``{"predictions": [{"label": ...,
"probabilities": {class: p}}]}``, what :mod:`mlops.training.inference` answers). Records in the
window without an id, or with a batch of predictions under one id, are counted, not joined; lines
that cannot be read are quarantined as in the drift job.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops.monitoring import capture_lines, capture_reader
from mlops.monitoring.capture_lines import Malformed, Quarantine


@dataclass
class CapturedPredictions:
    """The window's predictions by inference id (the last record wins for an id sent twice)."""

    probabilities: dict[str, dict[str, float]] = field(default_factory=dict)
    records: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> records not joinable
    quarantine: Quarantine = field(default_factory=Quarantine)


def single_prediction(channel: Any) -> dict[str, float] | None:
    """Class probabilities of a response with exactly one prediction; None for a batch or no probabilities."""
    text, _kind = capture_reader._text(channel, "response")
    try:
        payload = capture_lines.loads(text)
    except ValueError as exc:
        raise Malformed("response not JSON", str(exc)) from None
    predictions = payload.get("predictions") if isinstance(payload, dict) else payload
    if not isinstance(predictions, list) or len(predictions) != 1 or not isinstance(predictions[0], dict):
        return None
    probabilities = predictions[0].get("probabilities")
    if not isinstance(probabilities, dict) or not probabilities:
        return None
    return {str(k): float(v) for k, v in probabilities.items()}


def _add(found: CapturedPredictions, record: Any) -> None:
    meta = record.get("eventMetadata") or {}
    inference_id = meta.get("inferenceId") if isinstance(meta, dict) else None
    if not inference_id:
        found.skipped["no inference id"] += 1
        return
    capture = record.get("captureData")
    if not isinstance(capture, dict):
        raise Malformed("not a capture record", "no captureData")
    probabilities = single_prediction(capture.get("endpointOutput"))
    if probabilities is None:
        found.skipped["not one prediction with probabilities"] += 1
        return
    found.probabilities[str(inference_id)] = probabilities


def read_predictions(
    root: Path, start: datetime | None, end: datetime | None, quarantine: Quarantine | None = None
) -> CapturedPredictions:
    """Every joinable prediction whose ``inferenceTime`` is in ``[start, end)`` under ``root``."""
    found = CapturedPredictions(quarantine=quarantine or Quarantine())
    window = capture_reader.TimeWindow(start, end)
    for path in capture_reader.capture_files(root) if root.exists() else []:
        source = path.relative_to(root).as_posix()
        with path.open("rb") as handle:
            for number, offset, line, complete in capture_lines.file_lines(handle):
                try:
                    if not complete:
                        raise Malformed("line too long", "over the line limit")
                    record = capture_lines.loads(line)
                    if not window.contains(record):
                        continue
                    found.records += 1
                    _add(found, record)
                except Malformed as bad:
                    found.quarantine.add(source, number, offset, bad, line)
                except ValueError as exc:
                    found.quarantine.add(source, number, offset, Malformed("not JSON", str(exc)), line)
    return found
