"""Fetch the wheels the SageMaker jobs and the endpoint install, at build time: ``make sagemaker-wheels``.

    python -m mlops_tools.sagemaker_wheels --out .mlops/sagemaker-wheels
    python -m mlops_tools.sagemaker_wheels --out .mlops/sagemaker-wheels --upload s3://<artifacts>/sagemaker/wheelhouse

On aws the training and processing jobs run in ``aws.subnet_ids`` and the endpoint in the same
private network: ``infra/cfn/network.yaml`` has no NAT, so a container's start-up ``pip install``
cannot reach PyPI, and neither can the MWAA worker that publishes the code. So the wheels are
fetched here (CodeBuild has internet), with the machinery of the MWAA bundle
(:mod:`mlops_tools.mwaa_bundle`: ``uv pip compile`` to resolve for the image's Python on manylinux
x86_64, ``pip download`` to fetch), into a folder holding the wheels and ``wheelhouse.json``
(requirements, pins, which wheels serve training and which the endpoint, each wheel's sha256).

``training.wheelhouse_uri`` names the uploaded folder; :func:`mlops.training.steps.publish_source`
then ships the wheels inside ``sourcedir.tar.gz`` (``wheels/``, requirements.txt with
``--no-index --find-links wheels``) and ``train.py`` copies the endpoint's into the model package
(``code/wheels``, ``code/requirements.txt`` with ``--find-links /opt/ml/model/code/wheels``).
Locally nothing is fetched: the jobs run in ``.mlops/venvs/sagemaker``, which has every package.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.training.model_package import (
    INFERENCE_REQUIREMENTS,
    SOURCE_REQUIREMENTS,
    WHEELHOUSE_INDEX,
    check_wheelhouse_index,
    requirement_lines,
)
from mlops_tools.mwaa_bundle import MWAA_PLATFORM, BundleError, compile_pins, fetch_wheels
from mlops_tools.mwaa_constraints import canonical

IMAGE_PLATFORM = MWAA_PLATFORM  # the sklearn images are x86_64 Linux too (Ubuntu 20.04, glibc 2.31 >= 2.28)


@dataclass(frozen=True)
class Image:
    """A framework image's Python and what it already has installed (kept, never shipped)."""

    python: str
    packages: dict[str, str] = field(default_factory=dict)  # name -> exact version installed in the image
    constraints: tuple[str, ...] = ()  # further limits of the image's binaries, e.g. numpy<2


#: sklearn framework images, from aws/sagemaker-scikit-learn-container: docker/1.2-1/base/Dockerfile.cpu sets
#: PYTHON_VERSION=3.9, installs pyarrow 14.0.1 (conda) and scikit-learn 1.2.1 (pip), both built against numpy 1.x.
#: An image not listed needs --training-python / --inference-python (its `python3 --version`).
IMAGES = {
    "1.2-1": Image(python="3.9", packages={"scikit-learn": "1.2.1", "pyarrow": "14.0.1"}, constraints=("numpy<2",)),
}


def image_for(framework_version: str, python: str | None) -> Image:
    """The image table's entry of ``framework_version``; ``python`` names the Python of an unlisted image."""
    if python:
        known = IMAGES.get(framework_version)
        return Image(python, known.packages, known.constraints) if known and known.python == python else Image(python)
    if framework_version not in IMAGES:
        raise BundleError(f"the Python of the sklearn {framework_version} image is not in IMAGES; pass its "
                          f"`python3 --version` (SAGEMAKER_TRAINING_PYTHON=3.11 make sagemaker-wheels)")  # fmt: skip
    return IMAGES[framework_version]


def pins_to_ship(uv: str, requirements: Sequence[str], image: Image, work: Path) -> dict[str, str]:
    """Resolve ``requirements`` for ``image`` (its packages pinned as installed); all but those packages ship."""
    constraints = work / "image-constraints.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in image.packages.items()) + "".join(
        f"{c}\n" for c in image.constraints))  # fmt: skip
    resolved = compile_pins(uv, requirements, work, image.python, IMAGE_PLATFORM, [constraints])
    installed = {canonical(name) for name in image.packages}
    return {name: version for name, version in resolved.items() if name not in installed}


def wheelhouse_index(
    images: dict[str, tuple[str, Image]], pins: dict[str, dict[str, str]], wheels: dict[str, dict[str, bytes]]
) -> dict[str, Any]:
    """``wheelhouse.json``: per purpose (training, inference) its image, requirements, pins and wheels."""
    requirements = {"training": SOURCE_REQUIREMENTS, "inference": INFERENCE_REQUIREMENTS}
    every = {name: content for by_name in wheels.values() for name, content in by_name.items()}
    index = {
        "built_by": "make sagemaker-wheels (tools/mlops_tools/sagemaker_wheels.py)",
        "images": {p: {"framework_version": v, "python": image.python} for p, (v, image) in images.items()},
        "requirements": {p: requirement_lines(requirements[p]) for p in images},
        "pins": pins,
        "wheels": {p: sorted(wheels[p]) for p in images},
        "sha256": {name: hashlib.sha256(content).hexdigest() for name, content in sorted(every.items())},
    }
    check_wheelhouse_index(index)
    return index


def build_wheelhouse(uv: str, images: dict[str, tuple[str, Image]]) -> dict[str, bytes]:
    """Every file of the wheelhouse: the wheels of both purposes and ``wheelhouse.json`` (build time only)."""
    requirements = {"training": SOURCE_REQUIREMENTS, "inference": INFERENCE_REQUIREMENTS}
    pins: dict[str, dict[str, str]] = {}
    wheels: dict[str, dict[str, bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="mlops-sagemaker-wheels-") as tmp:
        for purpose, (_, image) in images.items():
            work = Path(tmp) / purpose
            (work / "wheels").mkdir(parents=True)
            pins[purpose] = pins_to_ship(uv, requirement_lines(requirements[purpose]), image, work)
            wheels[purpose] = fetch_wheels(uv, pins[purpose], work / "wheels", image.python) if pins[purpose] else {}
    index = wheelhouse_index(images, pins, wheels)
    files = {name: content for by_name in wheels.values() for name, content in by_name.items()}
    return {**dict(sorted(files.items())), WHEELHOUSE_INDEX: (json.dumps(index, indent=2) + "\n").encode()}


def write_wheelhouse(files: dict[str, bytes], out: Path) -> None:
    """Write the wheelhouse to ``out``, staged beside it and swapped in (no half-written folder)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    for name, content in files.items():
        (staging / name).write_bytes(content)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


def upload_wheelhouse(files: dict[str, bytes], s3_uri: str, s3_client: Any | None = None) -> list[str]:
    """Upload to ``s3://bucket/prefix``: the wheels first, ``wheelhouse.json`` last (readers start from it)."""
    if not s3_uri.startswith("s3://") or not s3_uri[5:].split("/")[0]:
        raise BundleError(f"--upload needs s3://bucket/prefix, got {s3_uri!r}")
    bucket, _, prefix = s3_uri[5:].partition("/")
    if s3_client is None:
        import boto3  # a deploy-time dependency only

        s3_client = boto3.client("s3")
    keys = []
    for name in sorted(files, key=lambda n: n == WHEELHOUSE_INDEX):
        key = f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name
        s3_client.put_object(Bucket=bucket, Key=key, Body=files[name])
        keys.append(key)
    return keys


def main(argv: Sequence[str] | None = None) -> int:
    from mlops.config import load_config

    parser = argparse.ArgumentParser(prog="python -m mlops_tools.sagemaker_wheels", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the wheels and wheelhouse.json to")
    parser.add_argument("--upload", metavar="S3_URI", help="also upload to s3://bucket/prefix")
    parser.add_argument("--training-python", help="Python of the training image, when IMAGES does not list it")
    parser.add_argument("--inference-python", help="Python of the inference image, when IMAGES does not list it")
    parser.add_argument("--uv", default=os.environ.get("UV", "uv"), help="the uv executable")
    args = parser.parse_args(argv)
    config = load_config()
    try:
        images = {
            "training": (config.training.framework_version,
                         image_for(config.training.framework_version, args.training_python)),
            "inference": (config.serving.framework_version,
                          image_for(config.serving.framework_version, args.inference_python)),
        }  # fmt: skip
        files = build_wheelhouse(args.uv, images)
        write_wheelhouse(files, args.out)
        print(f"{len(files) - 1} wheels ({sum(map(len, files.values())) / 1e6:.1f} MB) written to {args.out}")
        if args.upload:
            print(f"uploaded {len(upload_wheelhouse(files, args.upload))} objects to {args.upload}")
    except ValueError as exc:  # BundleError, WheelhouseError: the message names the fix
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
