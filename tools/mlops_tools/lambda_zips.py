"""Build the project's AWS Lambda deployment packages (``make lambdas``).

    python -m mlops_tools.lambda_zips --out .mlops/lambda            # both functions
    python -m mlops_tools.lambda_zips --out .mlops/lambda --only runs-api

Each zip holds the function's own modules from ``include/`` and the third-party packages they
import that the Lambda Python runtime lacks (boto3 is in the runtime), installed by uv for the
function's runtime and architecture (``--python-version 3.12 --python-platform
aarch64-manylinux_2_28``, binary wheels only) at the version ``requirements.lock`` pins. Entries
are written in sorted order with a fixed timestamp, so the same sources give the same bytes
(and CloudFormation redeploys only what changed).

- ``runs-api.zip``: ``mlops.runs`` (the run API's handler, ``mlops.runs.handler.handler``) and
  ``jsonschema``, which validates a run's ``conf`` against the DAG's Params.
- ``reporting.zip``: ``mlops.reporting`` (``mlops.reporting.handler.handler``); stdlib and boto3 only.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlops_tools.mwaa_bundle import deterministic_zip

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INCLUDE = PROJECT_ROOT / "include"
LOCK = PROJECT_ROOT / "requirements.lock"
LAMBDA_PYTHON = "3.12"
LAMBDA_PLATFORM = "aarch64-manylinux_2_28"  # Architectures: [arm64] in infra/cfn


class LambdaZipError(ValueError):
    """A package cannot be built as asked; the message names the fix."""


@dataclass(frozen=True)
class LambdaPackage:
    """One function: the ``include/`` files it ships and the locked requirements it installs."""

    name: str
    handler: str
    modules: tuple[str, ...]
    requirements: tuple[str, ...] = ()


PACKAGES = {
    "runs-api": LambdaPackage(
        "runs-api",
        "mlops.runs.handler.handler",
        (
            "mlops/__init__.py",
            "mlops/runs/__init__.py",
            "mlops/runs/handler.py",
            "mlops/runs/params.py",
            "mlops/runs/requests.py",
            "mlops/runs/service.py",
            "mlops/runs/transport.py",
        ),
        ("jsonschema",),
    ),
    "reporting": LambdaPackage(
        "reporting", "mlops.reporting.handler.handler", ("mlops/__init__.py", "mlops/reporting")
    ),
}


def locked_pin(name: str, lock: Path = LOCK) -> str:
    """``name==version`` as ``requirements.lock`` pins it; LambdaZipError when it is not locked."""
    match = re.search(rf"^{re.escape(name)}==(\S+)$", lock.read_text(), re.MULTILINE | re.IGNORECASE)
    if not match:
        raise LambdaZipError(f"{name} is not pinned in {lock.name}; add it to requirements.txt and run `make lock`")
    return f"{name}=={match.group(1)}"


def module_files(package: LambdaPackage, include: Path = INCLUDE) -> dict[str, bytes]:
    """The function's own sources by their path in the zip (folders expand to their ``.py`` files)."""
    files: dict[str, bytes] = {}
    for entry in package.modules:
        path = include / entry
        if not path.exists():
            raise LambdaZipError(f"{package.name}: {path} does not exist; fix PACKAGES in {Path(__file__).name}")
        for source in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            files[source.relative_to(include).as_posix()] = source.read_bytes()
    return files


def installed_files(
    requirements: Sequence[str], uv: str, python_version: str = LAMBDA_PYTHON, platform: str = LAMBDA_PLATFORM
) -> dict[str, bytes]:
    """The locked requirements (and their dependencies) installed for the runtime, by path in the zip."""
    if not requirements:
        return {}
    with tempfile.TemporaryDirectory() as target:
        command = [uv, "pip", "install", "--quiet", "--target", target, "--only-binary", ":all:",
                   "--python-version", python_version, "--python-platform", platform,
                   *[locked_pin(name) for name in requirements]]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LambdaZipError(f"installing {', '.join(requirements)} failed:\n{done.stderr.strip()}")
        root = Path(target)
        return {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith(".pyc")
        }


def build(
    package: LambdaPackage, uv: str, python_version: str = LAMBDA_PYTHON, platform: str = LAMBDA_PLATFORM
) -> bytes:
    """The deployment package's bytes."""
    own = module_files(package)
    third_party = installed_files(package.requirements, uv, python_version, platform)
    clash = sorted(set(own) & set(third_party))
    if clash:
        raise LambdaZipError(f"{package.name}: {clash} would be written twice")
    return deterministic_zip({**third_party, **own})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for <function>.zip")
    parser.add_argument("--only", choices=sorted(PACKAGES), action="append", help="build only this function")
    parser.add_argument("--uv", default=os.environ.get("UV", "uv"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or sorted(PACKAGES):
        package = PACKAGES[name]
        try:
            content = build(package, args.uv)
        except LambdaZipError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        path = args.out / f"{name}.zip"
        path.write_bytes(content)
        print(f"==> {path} ({len(content) // 1024} KiB), handler {package.handler}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
