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
    partitioned = {
        s: lake_io.join(curated_uri, f"split={s}") for s in SPLITS if any(k.startswith(f"split={s}/") for k in keys)
    }
    return partitioned if len(partitioned) == len(SPLITS) else dict.fromkeys(SPLITS, curated_uri)


POINTERS = ("_validated.json", "_current.json")  # written by the validation gate / the features ETL


def resolve_snapshot(curated_uri: str, s3: Any = None) -> str:
    """The data location behind a curated table URI: the validated snapshot, else the current one
    (both are pointer objects with a ``uri`` key), else the URI itself (already a snapshot)."""
    import json

    for name in POINTERS:
        pointer = lake_io.join(curated_uri, name)
        if lake_io.exists(pointer, s3) and lake_io.list_objects(pointer, s3)[0].key == "":
            uri = json.loads(lake_io.read_bytes(pointer, s3)).get("uri")
            if uri:
                return str(uri)
    return curated_uri
