"""The features gate: validate the current curated snapshot and, if it passes, mark it validated.

``<curated>/_current.json`` names the latest snapshot the Glue job built; the gate writes
``<curated>/_validated.json`` (same content + the validation summary) only when the suite
passes, so consumers that follow the validated pointer or the ``mlops_validated_features``
Asset event never see data that failed. Data Docs are published under the reports prefix
whether the suite passes or fails.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mlops.etl.build_features import CURATED_COLUMNS, POINTER_NAME, SPLIT, LakeFiles, read_current
from mlops.lake import local_path
from mlops.validation.features_suite import SuiteBounds
from mlops.validation.runner import ValidationFailedError, summary_lines, validate_features

VALIDATED_POINTER = "_validated.json"


def read_snapshot_frame(snapshot_uri: str) -> Any:
    """The curated snapshot as a pandas DataFrame, columns in contract order, ``split`` as strings."""
    import pandas as pd

    source = str(local_path(snapshot_uri)) if snapshot_uri.startswith("file://") else snapshot_uri
    frame = pd.read_parquet(source)
    frame[SPLIT] = frame[SPLIT].astype(str)
    ordered = [c for c in CURATED_COLUMNS if c in frame.columns]
    return frame[ordered + [c for c in frame.columns if c not in ordered]]


def publish_folder(local_dir: Path, target_uri: str) -> None:
    """Copy a local folder to a ``file://`` or ``s3://`` prefix (replacing a local one)."""
    if target_uri.startswith("file://"):
        target = local_path(target_uri)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(local_dir, target)
        return
    import fsspec

    fs, _, (path,) = fsspec.get_fs_token_paths(target_uri)
    fs.put(str(local_dir), path, recursive=True)


def run_gate(
    curated_uri: str,
    docs_uri: str,
    run_key: str,
    bounds: SuiteBounds | None = None,
    log: Any = print,
    files: LakeFiles | None = None,
) -> dict[str, Any]:
    """Validate the current snapshot; publish Data Docs to ``docs_uri``; on success write the validated pointer.

    Returns the Asset-event ``extra``; raises ValidationFailedError (after publishing the docs) on failure.
    """
    files = files or LakeFiles()
    pointer = read_current(curated_uri, files)
    if pointer is None:
        raise FileNotFoundError(f"no curated snapshot at {curated_uri}/{POINTER_NAME}; run the features ETL first")
    frame = read_snapshot_frame(pointer["uri"])
    with tempfile.TemporaryDirectory(prefix="gx-docs-") as tmp:
        try:
            summary = validate_features(frame, bounds, docs_dir=Path(tmp), run_name=run_key)
        except ValidationFailedError as failed:
            publish_folder(Path(tmp), docs_uri)
            failed.summary["data_docs"] = f"{docs_uri.rstrip('/')}/index.html"
            for line in summary_lines(failed.summary):
                log(line)
            raise
        publish_folder(Path(tmp), docs_uri)
    summary["data_docs"] = f"{docs_uri.rstrip('/')}/index.html"
    for line in summary_lines(summary):
        log(line)
    extra = {
        "snapshot_id": pointer["snapshot_id"],
        "curated_uri": pointer["uri"],
        "rows": pointer["rows"],
        "splits": pointer["splits"],
        "labels": pointer["labels"],
        "run_key": run_key,
        "data_docs": summary["data_docs"],
        "expectations": summary["evaluated"],
    }
    validated = {**pointer, "validation": {k: summary[k] for k in ("suite", "evaluated", "rows", "data_docs")}}
    files.write_text_atomic(f"{curated_uri.rstrip('/')}/{VALIDATED_POINTER}", json.dumps(validated, indent=2))
    return extra
