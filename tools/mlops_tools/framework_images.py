"""`make images`: resolve the framework image table with sagemaker-core (run in envs/sdk).

    python -m mlops_tools.framework_images --write   # rewrite include/mlops/aws/framework_images.json
    python -m mlops_tools.framework_images --check   # fail if the table is stale (the MWAA bundle build)

sagemaker-core resolves image URIs offline from data it bundles; it lives in its own
environment because it caps ``importlib-metadata`` below MWAA's pin. See
:mod:`mlops.aws.framework_images` for who reads the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

from mlops.aws.framework_images import FRAMEWORK, TABLE, Scope


def configured_versions() -> dict[Scope, list[str]]:
    """The framework versions the pipeline config names, by image scope."""
    from mlops.config import load_config

    config = load_config()
    training = sorted({config.training.framework_version, config.monitoring.framework_version})
    return {"training": training, "inference": [config.serving.framework_version]}


def resolve_with_sdk(versions: dict[Scope, list[str]]) -> dict[str, Any]:
    """The table, from sagemaker-core's bundled image data, for every region it knows."""
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


def render(table: dict[str, Any]) -> str:
    return json.dumps(table, indent=1, sort_keys=True) + "\n"


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help=f"resolve with sagemaker-core and write {TABLE.name}")
    mode.add_argument("--check", action="store_true", help=f"fail unless {TABLE.name} equals sagemaker-core's answer")
    args = parser.parse_args(list(argv) if argv is not None else None)
    fresh = render(resolve_with_sdk(configured_versions()))
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
