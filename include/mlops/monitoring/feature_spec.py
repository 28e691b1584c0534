"""A model's input columns: ``feature_spec.json`` of a model.tar.gz, in either layout.

Standard library only: the baseline job reads it from the model archive it is given, and the
traffic sender from a model package on the lake.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any, Union

SPEC_MEMBER = "feature_spec.json"
Archive = Union[bytes, str, Path]  # noqa: UP007 - bundled with the processing jobs, which may run an older Python


class FeatureSpecError(ValueError):
    """A model package has no usable feature_spec.json."""


def normalise_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """``{"numeric": [...], "categorical": [...], ...}`` from either feature-spec layout
    (the training stage's, or ``{"features": [{"name", "type"}]}``)."""
    if "features" in spec and "numeric" not in spec:
        return {
            **spec,
            "numeric": [f["name"] for f in spec["features"] if f["type"] == "numeric"],
            "categorical": [f["name"] for f in spec["features"] if f["type"] != "numeric"],
        }
    if "numeric" not in spec or "categorical" not in spec:
        raise FeatureSpecError(f"{SPEC_MEMBER} lists no numeric/categorical features (keys: {sorted(spec)})")
    return spec


def read_feature_spec(archive: Archive) -> dict[str, Any]:
    """The normalised ``feature_spec.json`` of a model.tar.gz (its bytes, or a path to it)."""
    opened = tarfile.open(fileobj=io.BytesIO(archive)) if isinstance(archive, bytes) else tarfile.open(archive)
    with opened as tar:
        members = {m.name[2:] if m.name.startswith("./") else m.name: m for m in tar.getmembers()}
        member = members.get(SPEC_MEMBER)
        handle = tar.extractfile(member) if member is not None else None
        if handle is None:
            raise FeatureSpecError(
                f"the model archive has no {SPEC_MEMBER}; it is not a model package of this pipeline "
                "(pass the model_data_url of a model mlops_train registered)"
            )
        return normalise_spec(json.loads(handle.read()))
