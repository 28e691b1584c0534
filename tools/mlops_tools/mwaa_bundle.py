"""Build the Amazon MWAA bundle: ``dags/``, ``plugins.zip``, ``requirements.txt``, ``startup.sh``.

    python -m mlops_tools.mwaa_bundle --out .mlops/mwaa            # make mwaa-bundle
    python -m mlops_tools.mwaa_bundle --out .mlops/mwaa --upload s3://<artifacts-bucket>/mwaa
    python -m mlops_tools.mwaa_bundle --out .mlops/mwaa --online   # MWAA with internet: pip from PyPI

The project reaches MWAA the way MWAA documents for custom packages: as a wheel.

- ``plugins.zip`` holds ``pipeline.yaml`` and a wheelhouse folder, ``wheels/``: the project's
  wheel (``mlops`` and ``mlops_airflow``, built from ``pyproject.toml``) and, in the offline
  variant (the default), the wheels for CPython 3.12 / manylinux x86_64 of every package the
  requirements need beyond Airflow's own closure (which MWAA's image holds), plus MWAA's
  constraints file. No ``.py`` file anywhere, so Airflow's plugin manager (which imports every
  ``.py`` of the plugins folder as a top-level module named by its file stem) has nothing to
  shadow other modules with. MWAA unpacks it into ``/usr/local/airflow/plugins``.
- ``requirements.txt`` names the project wheel and what the worker-side code imports: the
  ``dependencies`` of ``pyproject.toml``, each pinned exactly to MWAA's pin. Offline (default;
  ``infra/cfn/network.yaml`` has no NAT, so MWAA's start-up pip cannot reach PyPI) it installs
  from the wheelhouse only: ``--constraint`` names the shipped constraints file,
  ``--find-links /usr/local/airflow/plugins/wheels`` and ``--no-index`` (MWAA's documented way
  for private environments). ``--online`` builds the PyPI variant instead (constraints URL,
  only the project wheel shipped) for a network with a route to the internet.
  Nothing heavy: reading tables, datasets and capture windows happens in Glue and SageMaker jobs.
- ``startup.sh`` (``infra/mwaa/startup.sh``) maps the environment's ``mlops.*`` options to the
  project's ``MLOPS__SECTION__KEY`` overrides and points ``MLOPS_CONFIG`` at the bundled
  ``pipeline.yaml``.
- ``manifest.json``: versions, each file's sha256, the requirements; for review, not uploaded.

The framework image table the requests read (``mlops/aws/framework_images.json``, inside the
wheel) is checked against sagemaker-core (``envs/sdk``) before anything is written, so image
URIs are resolved when the bundle is built, never on a worker. Wheels are fetched when the
bundle is built (``uv pip compile`` to resolve, ``pip download`` to fetch), never at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_tools.mwaa_constraints import (
    MWAA_DIR,
    PROJECT_ROOT,
    MwaaVersions,
    canonical,
    mwaa_pins,
    parse_pins,
    read_versions,
)

MWAA_PLUGINS_DIR = "/usr/local/airflow/plugins"
WHEELHOUSE = "wheels"  # folder inside plugins.zip: /usr/local/airflow/plugins/wheels on MWAA
MWAA_PLATFORM = "x86_64-manylinux_2_28"  # uv's --python-platform for MWAA's Fargate containers (x86_64)
PIP_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64")
#: MWAA documents no hard limit but recommends a plugins.zip under 1 GB: its containers must unpack it
#: and install the requirements within ten minutes of starting.
PLUGINS_ZIP_LIMIT = 1_000_000_000
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01: reproducible wheel timestamps
UPLOADED = ("plugins.zip", "requirements.txt", "startup.sh")


class BundleError(ValueError):
    """The bundle cannot be built as asked; the message names the fix."""


@dataclass(frozen=True)
class BundleFile:
    """One file of the bundle, by its path under ``--out`` (and under the S3 prefix)."""

    name: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def project_metadata(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """``[project]`` of pyproject.toml: the distribution's name, version and worker dependencies."""
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]


def worker_requirements(dependencies: Sequence[str], pins: dict[str, str]) -> list[str]:
    """``name==version`` for each worker dependency, at MWAA's pin; a dependency MWAA does not pin is an error."""
    lines = []
    for dependency in dependencies:
        name = canonical(dependency.split(";")[0].split("[")[0].strip())
        if name not in pins:
            raise BundleError(
                f"{name} is a worker dependency (pyproject.toml) but MWAA's constraints do not pin it; "
                "pin it there or move the code that needs it into a job"
            )
        lines.append(f"{name}=={pins[name]}")
    return sorted(lines)


def requirements_txt(
    versions: MwaaVersions, wheel: str, dependencies: list[str], wheelhouse: str, offline: bool
) -> str:
    """MWAA's requirements.txt: from the wheelhouse alone (``offline``) or from PyPI plus the project wheel."""
    name, version = wheel.split("-")[:2]
    if offline:
        sources = [f"--constraint {wheelhouse}/{versions.constraints_file.name}", f"--find-links {wheelhouse}",
                   "--no-index"]  # fmt: skip
        how = "installed offline from the wheels in plugins.zip (network.yaml has no NAT)"
    else:
        sources = [f'--constraint "{versions.constraints_url}"', f"--find-links {wheelhouse}"]
        how = "fetched from PyPI (needs a route to the internet)"
    return (
        "\n".join(
            [
                f"# Amazon MWAA {versions.airflow} (Python {versions.python}); generated by `make mwaa-bundle`.",
                "# The project is the wheel in plugins.zip; the rest is what its worker-side code imports,",
                f"# pinned to MWAA's constraints and {how}.",
                "# Built by tools/mlops_tools/mwaa_bundle.py.",
                *sources,
                f"{canonical(name)}=={version}",
                *dependencies,
            ]
        )
        + "\n"
    )


def compile_pins(
    uv: str, requirements: Sequence[str], work: Path, python: str, platform: str, constraints: Sequence[Path]
) -> dict[str, str]:
    """Resolve ``requirements`` for ``python`` on ``platform`` (uv's ``--python-platform``) under ``constraints``."""
    source, resolved = work / "resolve.in", work / "resolve.txt"
    source.write_text("\n".join(requirements) + "\n")
    result = subprocess.run(
        [uv, "pip", "compile", "--quiet", "--python-version", python, "--python-platform", platform,
         *(arg for c in constraints for arg in ("-c", str(c))), "--no-header", "--no-annotate",
         "-o", str(resolved), str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise BundleError(f"resolving {', '.join(requirements)} for Python {python} failed:\n{result.stderr.strip()}")
    return parse_pins(resolved.read_text())


def resolve_pins(uv: str, requirements: Sequence[str], work: Path, versions: MwaaVersions) -> dict[str, str]:
    """Resolve ``requirements`` for MWAA's Python on x86_64 Linux under MWAA's constraint files (build time)."""
    constraints = [versions.constraints_file, versions.essential_file]
    return compile_pins(uv, requirements, work, versions.python, MWAA_PLATFORM, constraints)


def wheels_to_ship(resolved: dict[str, str], base_image: dict[str, str]) -> dict[str, str]:
    """What the requirements resolve to beyond MWAA's image (Airflow's closure); a changed base pin raises."""
    moved = sorted(f"{n}=={v} (image: {base_image[n]})" for n, v in resolved.items() if base_image.get(n, v) != v)
    if moved:
        raise BundleError(f"the requirements would change packages of MWAA's image: {', '.join(moved)}")
    return {name: version for name, version in sorted(resolved.items()) if name not in base_image}


def wheel_pin(filename: str) -> tuple[str, str]:
    """``(canonical name, version)`` from a wheel's file name (PEP 427)."""
    name, version = filename.split("-")[:2]
    return canonical(name), version


def fetch_wheels(uv: str, pins: dict[str, str], dest: Path, python: str) -> dict[str, bytes]:
    """Fetch one CPython-``python`` manylinux-x86_64 (or pure) wheel per pin with ``pip download`` (build time only)."""
    platforms = [arg for platform in PIP_PLATFORMS for arg in ("--platform", platform)]
    abi = "cp" + python.replace(".", "")
    result = subprocess.run(
        [uv, "tool", "run", "--quiet", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--only-binary=:all:", "--python-version", python, "--implementation", "cp", "--abi", abi,
         *platforms, "-d", str(dest), *(f"{n}=={v}" for n, v in pins.items())],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise BundleError(f"downloading the wheels failed (a package without a {abi} x86_64 wheel?):\n"
                          f"{result.stderr.strip()[-3000:]}")  # fmt: skip
    wheels = {path.name: path.read_bytes() for path in sorted(dest.glob("*.whl"))}
    check_wheelhouse(pins, list(wheels))
    return wheels


def download_wheels(uv: str, pins: dict[str, str], dest: Path, versions: MwaaVersions) -> dict[str, bytes]:
    """Fetch one wheel per pin for MWAA's CPython on manylinux x86_64 (build time only)."""
    return fetch_wheels(uv, pins, dest, versions.python)


def check_wheelhouse(pins: dict[str, str], filenames: Sequence[str]) -> None:
    """Exactly one wheel per pin, at the pinned version; anything else raises naming it."""
    found = [wheel_pin(name) for name in filenames]
    missing = sorted(f"{n}=={v}" for n, v in pins.items() if (n, v) not in found)
    extra = sorted(name for name, pin in zip(filenames, found, strict=True) if pins.get(pin[0]) != pin[1])
    if missing or extra or len(found) != len(set(found)):
        raise BundleError(f"the wheelhouse does not match the pins: missing {missing}, unexpected {extra}; "
                          "rerun `make mwaa-bundle`")  # fmt: skip


def dependency_wheels(uv: str, dependencies: list[str], versions: MwaaVersions) -> dict[str, bytes]:
    """The wheels MWAA's image lacks for ``dependencies``: resolve with and without them, fetch the difference."""
    with tempfile.TemporaryDirectory(prefix="mlops-wheelhouse-") as tmp:
        work = Path(tmp)
        airflow = f"apache-airflow=={versions.airflow}"
        base_image = resolve_pins(uv, [airflow], work, versions)
        needed = wheels_to_ship(resolve_pins(uv, [airflow, *dependencies], work, versions), base_image)
        (work / "wheels").mkdir()
        return download_wheels(uv, needed, work / "wheels", versions) if needed else {}


def plugins_zip(wheels: dict[str, bytes], pipeline_yaml: bytes, constraints: Path | None) -> bytes:
    """``plugins.zip``: ``pipeline.yaml`` and ``wheels/`` (the wheels and, offline, MWAA's constraints file)."""
    entries = {f"{WHEELHOUSE}/{name}": content for name, content in wheels.items()}
    if constraints is not None:
        entries[f"{WHEELHOUSE}/{constraints.name}"] = constraints.read_bytes()
    entries["pipeline.yaml"] = pipeline_yaml
    modules = sorted(name for name in entries if name.endswith(".py"))
    if modules:
        raise BundleError(f"plugins.zip would carry {modules}: Airflow imports every .py there as a top-level module")
    content = deterministic_zip(entries)
    if len(content) > PLUGINS_ZIP_LIMIT:
        raise BundleError(f"plugins.zip is {len(content)} bytes, over the {PLUGINS_ZIP_LIMIT} MWAA recommends; "
                          "move dependencies into jobs")  # fmt: skip
    return content


def build_wheel(root: Path = PROJECT_ROOT, uv: str = "uv") -> tuple[str, bytes]:
    """Build the project's wheel from pyproject.toml (reproducible timestamps); return (file name, bytes).

    The build runs on a copy of the sources, so setuptools' ``build/`` and ``*.egg-info`` never
    land in the working tree.
    """
    with tempfile.TemporaryDirectory(prefix="mlops-wheel-") as tmp:
        source, out = Path(tmp) / "src", Path(tmp) / "dist"
        skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        for folder in ("include", "plugins"):
            shutil.copytree(root / folder, source / folder, ignore=skip)
        shutil.copy2(root / "pyproject.toml", source / "pyproject.toml")
        env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
        result = subprocess.run(
            [uv, "build", "--wheel", "--quiet", "--out-dir", str(out), str(source)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if result.returncode != 0:
            raise BundleError(f"building the project wheel failed:\n{result.stderr.strip()}")
        wheels = sorted(Path(out).glob("*.whl"))
        if len(wheels) != 1:
            raise BundleError(f"expected one wheel from `uv build`, got {[w.name for w in wheels]}")
        return wheels[0].name, wheels[0].read_bytes()


def check_wheel(name: str, content: bytes) -> None:
    """The wheel carries both packages and the image table, and no tooling or tests."""
    names = set(zipfile.ZipFile(io.BytesIO(content)).namelist())
    for required in ("mlops/__init__.py", "mlops_airflow/__init__.py", "mlops/aws/framework_images.json"):
        if required not in names:
            raise BundleError(f"{name} lacks {required}; check [tool.setuptools] in pyproject.toml")
    stray = sorted(n for n in names if n.split("/")[0] in ("mlops_tools", "tests", "dags"))
    if stray:
        raise BundleError(f"{name} carries tooling or tests that must not ship to MWAA: {stray[:5]}")


def deterministic_zip(entries: dict[str, bytes]) -> bytes:
    """A zip of ``entries`` with sorted names, fixed timestamps and 0644 modes: same input, same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name])
    return buffer.getvalue()


def check_image_table(sdk_python: str | None) -> str:
    """Re-resolve the framework image table with sagemaker-core; raise when it is stale."""
    if not sdk_python:
        return "not checked (--sdk-python not given)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(PROJECT_ROOT / p) for p in ("include", "tools"))}
    result = subprocess.run(
        [sdk_python, "-m", "mlops_tools.framework_images", "--check"], capture_output=True, text=True, env=env,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise BundleError(f"framework image table: {(result.stderr or result.stdout).strip()}")
    return "current (sagemaker-core)"


def dag_files(dags_dir: Path) -> list[BundleFile]:
    """The DAG folder's Python files as ``dags/<name>``; an empty folder raises."""
    files = [BundleFile(f"dags/{p.name}", p.read_bytes()) for p in sorted(dags_dir.glob("*.py"))]
    if not files:
        raise BundleError(f"no DAG files under {dags_dir}; run from the project root")
    return files


def build_bundle(
    root: Path = PROJECT_ROOT, uv: str = "uv", sdk_python: str | None = None, offline: bool = True
) -> list[BundleFile]:
    """Every file of the bundle, in memory, in a stable order (manifest.json last)."""
    versions = read_versions()
    image_table = check_image_table(sdk_python)
    project = project_metadata(root)
    wheel_name, wheel = build_wheel(root, uv)
    check_wheel(wheel_name, wheel)
    dependencies = worker_requirements(project.get("dependencies", []), mwaa_pins(versions))
    wheels = {wheel_name: wheel, **(dependency_wheels(uv, dependencies, versions) if offline else {})}
    wheelhouse = f"{MWAA_PLUGINS_DIR}/{WHEELHOUSE}"
    pipeline_yaml = (root / "include" / "pipeline.yaml").read_bytes()
    files = [
        *dag_files(root / "dags"),
        BundleFile("plugins.zip", plugins_zip(wheels, pipeline_yaml, versions.constraints_file if offline else None)),
        BundleFile(
            "requirements.txt", requirements_txt(versions, wheel_name, dependencies, wheelhouse, offline).encode()
        ),
        BundleFile("startup.sh", (MWAA_DIR / "startup.sh").read_bytes()),
    ]
    manifest = {
        "mwaa_airflow_version": versions.airflow,
        "mwaa_python_version": versions.python,
        "wheel": wheel_name,
        "offline": offline,
        "wheelhouse": sorted(wheels),
        "worker_requirements": dependencies,
        "framework_image_table": image_table,
        "files": {f.name: {"sha256": f.sha256, "bytes": len(f.content)} for f in files},
    }
    return [*files, BundleFile("manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())]


def write_bundle(files: Sequence[BundleFile], out: Path) -> None:
    """Write the bundle under ``out``; its ``dags/`` is replaced, so removed DAGs disappear."""
    dags = out / "dags"
    if dags.exists():
        for stale in dags.iterdir():
            stale.unlink()
    for bundle_file in files:
        path = out / bundle_file.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bundle_file.content)


def upload_bundle(files: Sequence[BundleFile], s3_uri: str, s3_client: Any | None = None) -> dict[str, str]:
    """Upload to ``s3://bucket/prefix``; delete DAG objects no longer in the bundle. Returns key -> VersionId."""
    if not s3_uri.startswith("s3://") or not s3_uri[5:].split("/")[0]:
        raise BundleError(f"--upload needs s3://bucket/prefix, got {s3_uri!r}")
    bucket, _, prefix = s3_uri[5:].partition("/")
    prefix = prefix.strip("/")
    if s3_client is None:
        import boto3  # a deploy-time dependency only

        s3_client = boto3.client("s3")
    key = lambda name: f"{prefix}/{name}" if prefix else name  # noqa: E731
    versions = {}
    for bundle_file in files:
        if bundle_file.name in UPLOADED or bundle_file.name.startswith("dags/"):
            response = s3_client.put_object(Bucket=bucket, Key=key(bundle_file.name), Body=bundle_file.content)
            versions[key(bundle_file.name)] = response.get("VersionId", "")
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=key("dags/")):
        for item in page.get("Contents", []):
            if item["Key"] not in versions:
                s3_client.delete_object(Bucket=bucket, Key=item["Key"])
    return versions


def update_environment_command(versions: dict[str, str], environment: str) -> str:
    """The `aws mwaa update-environment` call that pins the uploaded object versions."""
    flags = {"plugins.zip": "--plugins-s3-object-version", "requirements.txt": "--requirements-s3-object-version",
             "startup.sh": "--startup-script-s3-object-version"}  # fmt: skip
    args = [f"{flag} {v}" for name, flag in flags.items() for k, v in versions.items() if k.endswith(name) and v]
    return " ".join([f"aws mwaa update-environment --name {environment}", *args])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_tools.mwaa_bundle", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the bundle into")
    parser.add_argument("--upload", metavar="S3_URI", help="also upload to s3://bucket/prefix")
    parser.add_argument("--environment-name", default="<mwaa-environment>", help="for the printed update command")
    parser.add_argument("--uv", default=os.environ.get("UV", "uv"), help="the uv executable that builds the wheel")
    parser.add_argument("--sdk-python", help="envs/sdk's Python, to check the framework image table")
    online = "MWAA with internet: requirements from PyPI, only the project wheel in plugins.zip"
    parser.add_argument("--online", action="store_true", help=online)
    args = parser.parse_args(argv)
    try:
        files = build_bundle(uv=args.uv, sdk_python=args.sdk_python, offline=not args.online)
        write_bundle(files, args.out)
        for bundle_file in files:
            print(f"  {bundle_file.name:<40} {len(bundle_file.content):>10} bytes  sha256 {bundle_file.sha256[:12]}")
        print(f"MWAA bundle for Airflow {read_versions().airflow} written to {args.out}")
        if args.upload:
            versions = upload_bundle(files, args.upload)
            print(update_environment_command(versions, args.environment_name))
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
