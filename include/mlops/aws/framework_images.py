"""SageMaker framework container image URIs, resolved once with sagemaker-core and kept as data.

The requests name the scikit-learn framework images (training and processing jobs run the
training image of ``training.framework_version`` / ``monitoring.framework_version``;
endpoints the inference image of ``serving.framework_version``). Their ECR account differs
per region, so they are never hard-coded in code: ``make images`` asks sagemaker-core (its own
environment, ``envs/sdk``, because it cannot share MWAA's pins) for every region it knows and
writes ``framework_images.json`` next to this module (``mlops_tools.framework_images``). Tasks
only read that table; the MWAA bundle build checks it is current. Neither a worker nor a job
imports the SDK.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

Scope = Literal["training", "inference"]
FRAMEWORK = "sklearn"
TABLE = Path(__file__).with_name("framework_images.json")


class FrameworkImageError(LookupError):
    """No image for that version and region in the table; the message names the fix."""


@cache
def _table() -> dict[str, Any]:
    return json.loads(TABLE.read_text())


def framework_image_uri(version: str, region: str, scope: Scope = "training") -> str:
    """The sklearn framework image of ``version`` in ``region`` (``training`` also serves processing jobs)."""
    try:
        return _table()["images"][scope][version][region]
    except KeyError:
        raise FrameworkImageError(
            f"no {FRAMEWORK} {version} {scope} image for region {region} in {TABLE.name}; set the config's "
            "image_uri, or add the version to the config and run `make images` (sagemaker-core resolves it)"
        ) from None
