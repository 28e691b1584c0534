"""The train / validation / test channels of the curated feature table."""

from __future__ import annotations

from typing import Any

from mlops.training import lake_io

SPLITS = ("train", "validation", "test")


def split_channels(curated_uri: str, s3: Any = None) -> dict[str, str]:
    """One URI per split: ``<curated>/split=<name>`` when the table is partitioned by split, else the
    whole table for each (the scripts then filter on the ``split`` column)."""
    keys = [o.key for o in lake_io.list_objects(curated_uri, s3)]
    if not keys:
        raise FileNotFoundError(f"no curated features under {curated_uri}; run the ETL and validation stages first")
    partitioned = {s: lake_io.join(curated_uri, f"split={s}") for s in SPLITS if any(k.startswith(f"split={s}/") for k in keys)}
    return partitioned if len(partitioned) == len(SPLITS) else dict.fromkeys(SPLITS, curated_uri)
