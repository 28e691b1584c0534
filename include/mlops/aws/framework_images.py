"""SageMaker framework container image URIs, resolved once with sagemaker-core and kept as data.

The requests name the scikit-learn framework images (training and processing jobs run the
training image of ``training.framework_version`` / ``monitoring.framework_version``;
endpoints the inference image of ``serving.framework_version``). Their ECR account differs
per region, so they are never hard-coded: ``make images`` asks sagemaker-core (its own
environment, ``envs/sdk``: it cannot share MWAA's pins) for every region it knows and writes
``framework_images.json`` next to this module. Tasks only read that table; the MWAA bundle
build checks it is current. Neither a worker nor a job imports the SDK.

    python -m mlops.aws.framework_images --write   # in envs/sdk (make images)
    python -m mlops.aws.framework_images --check   # fails if the table is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
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


def configured_versions() -> dict[Scope, list[str]]:
    """The framework versions the pipeline config names, by image scope."""
    from mlops.config import load_config

    config = load_config()
    training = sorted({config.training.framework_version, config.monitoring.framework_version})
    return {"training": training, "inference": [config.serving.framework_version]}


def resolve_with_sdk(versions: dict[Scope, list[str]]) -> dict[str, Any]:
    """The table, from sagemaker-core's bundled image data (offline; only in envs/sdk)."""
    from sagemaker.core import image_uris  # envs/sdk only

    config = image_uris.config_for_framework(FRAMEWORK)
    images: dict[str, dict[str, dict[str, str]]] = {}
    for scope, scope_versions in versions.items():
        for version in scope_versions:
            regions = sorted(config[scope]["versions"][version]["registries"])
            images.setdefault(scope, {})[version] = {
                region: image_uris.retrieve(FRAMEWORK, region=region, version=version, image_scope=scope)
                for region in regions
            }
    return {"framework": FRAMEWORK, "generated_by": "make images (sagemaker-core, envs/sdk)", "images": images}


def _render(table: dict[str, Any]) -> str:
    return json.dumps(table, indent=1, sort_keys=True) + "\n"


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help=f"resolve with sagemaker-core and write {TABLE.name}")
    mode.add_argument("--check", action="store_true", help=f"fail unless {TABLE.name} equals sagemaker-core's answer")
    args = parser.parse_args(list(argv) if argv is not None else None)
    fresh = _render(resolve_with_sdk(configured_versions()))
    if args.write:
        TABLE.write_text(fresh)
        print(f"wrote {TABLE}")
        return 0
    if not TABLE.exists() or TABLE.read_text() != fresh:
        print(f"{TABLE} is stale for the configured framework versions; run `make images`", file=sys.stderr)
        return 1
    print(f"{TABLE.name} is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
