"""The features gate, on the worker: read the validation job's result and mark the snapshot validated.

The Glue validation job (:mod:`mlops.validation.features_job`) runs the suite and writes
``<report>/validation.json``; this module only reads that small JSON and the curated pointer
(standard library; ``s3://`` through the S3 client in :class:`LakeFiles`). It raises
:class:`ValidationFailedError` naming every failed expectation when the suite failed, and writes
``<curated>/_validated.json`` (the pointer + the validation summary) only when it passed, so
consumers that follow the validated pointer or the ``mlops_validated_features`` Asset event never
see data that failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mlops.schema.snapshots import POINTER_NAME, LakeFiles, read_current
from mlops.validation.outcome import FIX_HINT, ValidationFailedError, result_uri, summary_lines

VALIDATED_POINTER = "_validated.json"


class GateError(RuntimeError):
    """The gate cannot decide (no result, or a result about another snapshot); the message says what to do."""


def read_result(report_uri: str, files: LakeFiles) -> dict[str, Any]:
    """The validation job's ``validation.json`` of this run; GateError when the job wrote none."""
    text = files.read_text(result_uri(report_uri))
    if text is None:
        raise GateError(
            f"the validation job wrote no result at {result_uri(report_uri)}; see the job run's log "
            "(Glue console, or this task's log locally) and re-run validate_features"
        )
    return json.loads(text)


def check(result: dict[str, Any], pointer: dict[str, Any] | None, curated_uri: str) -> dict[str, Any]:
    """The pointer, if ``result`` is a passing validation of the snapshot it names; raise otherwise."""
    if pointer is None:
        raise GateError(f"no curated snapshot at {curated_uri}/{POINTER_NAME}; run the features ETL first")
    if result["snapshot_id"] != pointer["snapshot_id"]:
        raise GateError(
            f"the validation result is about snapshot {result['snapshot_id']!r}, but the current one is "
            f"{pointer['snapshot_id']!r} (a features run replaced it meanwhile); re-run validate_features"
        )
    if not result["success"]:
        raise ValidationFailedError(result["failures"], result, hint=FIX_HINT)
    return pointer


def asset_extra(pointer: dict[str, Any], result: dict[str, Any], run_key: str) -> dict[str, Any]:
    """The ``mlops_validated_features`` event's extra: what training and the UI read."""
    return {
        "snapshot_id": pointer["snapshot_id"],
        "curated_uri": pointer["uri"],
        "rows": pointer["rows"],
        "splits": pointer["splits"],
        "labels": pointer["labels"],
        "run_key": run_key,
        "data_docs": result["data_docs"],
        "expectations": result["evaluated"],
    }


def run_gate(
    curated_uri: str, report_uri: str, run_key: str, files: LakeFiles, log: Callable[[str], Any] = print
) -> dict[str, Any]:
    """Gate on the job's result; on success write the validated pointer and return the Asset-event extra."""
    result = read_result(report_uri, files)
    for line in summary_lines(result):
        log(line)
    pointer = check(result, read_current(curated_uri, files), curated_uri)
    validated = {**pointer, "validation": {k: result[k] for k in ("suite", "evaluated", "rows", "data_docs")}}
    files.write_text_atomic(f"{curated_uri.rstrip('/')}/{VALIDATED_POINTER}", json.dumps(validated, indent=2))
    return asset_extra(pointer, result, run_key)
