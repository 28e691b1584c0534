"""Package the project for Amazon MWAA: ``dags/``, ``plugins.zip``, ``requirements.txt``, ``startup.sh``.

    python -m mlops.deploy.mwaa_package --out dist/mwaa --dry-run
    python -m mlops.deploy.mwaa_package --out dist/mwaa
    python -m mlops.deploy.mwaa_package --out dist/mwaa --upload s3://<artifacts-bucket>/mwaa

What goes where (the keys the MWAA environment in ``infra/cfn/mwaa.yaml`` reads):

- ``dags/``: the DAG files, as they are (thin wiring only, DESIGN.md §2).
- ``plugins.zip``: the contents of ``plugins/`` (``mlops_airflow``) **and** ``include/mlops`` as
  the top-level package ``mlops``, plus ``pipeline.yaml``. MWAA unpacks the zip into
  ``$AIRFLOW_HOME/plugins``, which is on ``sys.path``, so ``import mlops`` and
  ``import mlops_airflow`` work there as they do locally. ``startup.sh`` points
  ``MLOPS_CONFIG`` at the bundled ``pipeline.yaml``. Entries are sorted and time-stamped
  1980-01-01, so the same sources give byte-identical zips and S3 object versions only
  change when the content does.
- ``requirements.txt``: MWAA's ``--constraint`` line for the environment's Airflow and
  Python versions (a text line; nothing is downloaded here), then the runtime packages of
  the DAG tasks, derived from the project's ``requirements.txt`` (see :data:`EXCLUDED`
  and :data:`DEFER_TO_CONSTRAINTS` for what is left out or left unpinned, and why).
- ``startup.sh``: maps the environment's ``mlops.*`` configuration options to the
  project's ``MLOPS_TARGET`` / ``MLOPS__SECTION__KEY`` variables.

The functions are plain and typed; only :func:`write_package` and :func:`upload_package`
touch the outside world, and a dry run calls neither.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

PROJECT_ROOT = Path(__file__).resolve().parents[3]
STARTUP_SCRIPT = Path(__file__).with_name("startup.sh")

#: The Airflow version of the MWAA environment (infra/cfn/mwaa.yaml, parameter AirflowVersion).
DEFAULT_AIRFLOW_VERSION = "3.0.6"

#: The Python version MWAA runs for each Airflow version it offers (MWAA's "Apache Airflow
#: versions" table). The constraints file must match it: MWAA's Airflow 3.0.6 image runs
#: Python 3.12, the 2.x images Python 3.11.
MWAA_PYTHON_VERSIONS: dict[str, str] = {
    "3.0.6": "3.12",
    "2.11.0": "3.11",
    "2.10.3": "3.11",
    "2.10.1": "3.11",
    "2.9.2": "3.11",
    "2.8.1": "3.11",
    "2.7.2": "3.11",
}

#: Packages of requirements.txt that MWAA does not get, with the reason. Keys are
#: canonical names (PEP 503).
EXCLUDED: dict[str, str] = {
    "apache-airflow": "MWAA provides Airflow itself; installing it again would fight the image",
    "pyspark": "the ETL script runs on AWS Glue 5.0 (its own Spark); local Spark is the stand-in",
    "duckdb": "local Glue Data Catalog + Athena stand-in; Athena runs the queries on aws",
    "duckdb-ext-httpfs": "offline httpfs for the local DuckDB stand-in",
    "sqlglot": "transpiles the Trino SQL for DuckDB locally; Athena runs Trino SQL as written",
    "fastapi": "the local SageMaker-compatible endpoint server; SageMaker hosts the endpoint on aws",
    "uvicorn": "ASGI server of the local endpoint stand-in",
    "typer": "the `mlops` command line is a local tool, not a DAG task",
    "moto": "in-memory AWS for the wiring tests",
    "pytest": "test runner",
    "pytest-timeout": "test runner plugin",
    "ruff": "linter",
}

#: Packages listed by name only, without the project's version specifier, so that MWAA's
#: constraints file picks the version. The project pins them for its local Airflow 3.3.2
#: stack; those pins would conflict with the constraints of MWAA's older Airflow
#: (constraints pin every provider and Airflow's own SQLAlchemy), and pip refuses a
#: requirement that contradicts a constraint. Any ``apache-airflow-providers-*`` package is
#: treated the same way; to run a newer provider, ship a modified constraints file as
#: MWAA's documentation describes and pass it with ``--constraint-url``.
DEFER_TO_CONSTRAINTS: dict[str, str] = {
    "sqlalchemy": "Airflow pins SQLAlchemy in its constraints; the project's 2.x pin is for Airflow 3.3",
}
PROVIDER_PREFIX = "apache-airflow-providers-"

#: Files never packaged.
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class PackagingError(ValueError):
    """The project cannot be packaged as asked; the message names the fix."""


@dataclass(frozen=True)
class PackageFile:
    """One file of the MWAA package: its path under ``--out`` and under the S3 prefix."""

    name: str
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)


def python_version_for(airflow_version: str) -> str:
    """The Python version MWAA runs with ``airflow_version``; unknown versions raise."""
    try:
        return MWAA_PYTHON_VERSIONS[airflow_version]
    except KeyError:
        known = ", ".join(sorted(MWAA_PYTHON_VERSIONS))
        raise PackagingError(
            f"MWAA Airflow version {airflow_version!r} is not in MWAA_PYTHON_VERSIONS ({known}); "
            "add it with the Python version from MWAA's 'Apache Airflow versions' page"
        ) from None


def constraints_url(airflow_version: str, python_version: str | None = None) -> str:
    """Apache Airflow's constraints file URL for an MWAA environment (nothing is fetched)."""
    python = python_version or python_version_for(airflow_version)
    return f"https://raw.githubusercontent.com/apache/airflow/constraints-{airflow_version}/constraints-{python}.txt"


def parse_requirements(text: str) -> list[Requirement]:
    """The requirements of a requirements.txt text, ignoring comments, blanks and pip options."""
    requirements = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or line.startswith("-"):
            continue
        try:
            requirements.append(Requirement(line))
        except InvalidRequirement as exc:
            raise PackagingError(f"requirements line {number} ({line!r}) is not a requirement: {exc}") from None
    return requirements


def mwaa_requirement_line(requirement: Requirement) -> str | None:
    """The line MWAA's requirements.txt gets for one project requirement, or None if excluded."""
    name = canonicalize_name(requirement.name)
    if name in EXCLUDED:
        return None
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    marker = f"; {requirement.marker}" if requirement.marker else ""
    if name in DEFER_TO_CONSTRAINTS or name.startswith(PROVIDER_PREFIX):
        return f"{requirement.name}{extras}{marker}"
    return f"{requirement.name}{extras}{requirement.specifier}{marker}"


def mwaa_requirements(requirements_text: str, airflow_version: str, constraint_url: str | None = None) -> str:
    """MWAA's requirements.txt: the constraints line, then the runtime packages of the tasks."""
    url = constraint_url or constraints_url(airflow_version)
    lines = [
        f"# Generated by `python -m mlops.deploy.mwaa_package` from requirements.txt (MWAA Airflow {airflow_version}).",
        "# Left out: Airflow itself, test/dev tools and local-only stand-ins (mlops.deploy.mwaa_package.EXCLUDED).",
        "# Unpinned: providers and SQLAlchemy, whose versions the constraints file decides.",
        f'--constraint "{url}"',
    ]
    for requirement in parse_requirements(requirements_text):
        line = mwaa_requirement_line(requirement)
        if line is not None:
            lines.append(line)
    return "\n".join(lines) + "\n"


def iter_tree(root: Path) -> Iterable[Path]:
    """Files under ``root`` in sorted order, without caches and bytecode."""
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in SKIPPED_DIRS for part in relative.parts) or path.suffix in SKIPPED_SUFFIXES:
            continue
        if path.is_file():
            yield path


def collect_dags(dags_dir: Path) -> list[PackageFile]:
    """The DAG folder's files as ``dags/<relative path>``; an empty folder raises."""
    files = [PackageFile(f"dags/{p.relative_to(dags_dir).as_posix()}", p.read_bytes()) for p in iter_tree(dags_dir)]
    if not any(f.name.endswith(".py") for f in files):
        raise PackagingError(f"no DAG files under {dags_dir}; run from the project root or pass --project-root")
    return files


def plugins_zip_entries(plugins_dir: Path, package_dir: Path, config_file: Path) -> dict[str, bytes]:
    """Zip entry name -> content: plugins/ at the root, include/mlops as ``mlops/``, pipeline.yaml."""
    entries: dict[str, bytes] = {}
    for path in iter_tree(plugins_dir):
        entries[path.relative_to(plugins_dir).as_posix()] = path.read_bytes()
    for path in iter_tree(package_dir):
        entries[f"mlops/{path.relative_to(package_dir).as_posix()}"] = path.read_bytes()
    entries["pipeline.yaml"] = config_file.read_bytes()
    if "mlops/__init__.py" not in entries:
        raise PackagingError(f"{package_dir} has no __init__.py; plugins.zip would not make `mlops` importable")
    return entries


def build_zip(entries: dict[str, bytes]) -> bytes:
    """A deterministic zip (sorted names, fixed timestamps, 0644) of ``entries``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name])
    return buffer.getvalue()


def build_package(
    project_root: Path = PROJECT_ROOT,
    airflow_version: str = DEFAULT_AIRFLOW_VERSION,
    constraint_url: str | None = None,
) -> list[PackageFile]:
    """Every file of the MWAA package, in memory, in a stable order."""
    requirements = (project_root / "requirements.txt").read_text()
    zip_bytes = build_zip(
        plugins_zip_entries(
            project_root / "plugins", project_root / "include" / "mlops", project_root / "include" / "pipeline.yaml"
        )
    )
    return [
        *collect_dags(project_root / "dags"),
        PackageFile("plugins.zip", zip_bytes),
        PackageFile("requirements.txt", mwaa_requirements(requirements, airflow_version, constraint_url).encode()),
        PackageFile("startup.sh", STARTUP_SCRIPT.read_bytes()),
    ]


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix without slashes)."""
    if not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise PackagingError(f"--upload needs s3://bucket/prefix, got {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise PackagingError(f"--upload needs a bucket name, got {uri!r}")
    return bucket, prefix.strip("/")


def s3_key(prefix: str, name: str) -> str:
    """The object key of a package file under ``prefix``."""
    return f"{prefix}/{name}" if prefix else name


def format_plan(files: Sequence[PackageFile], bucket: str, prefix: str) -> str:
    """A table of every file, its size and its target S3 URI."""
    width = max(len(f.name) for f in files)
    lines = [f"{'file':<{width}}  {'bytes':>10}  target"]
    lines += [f"{f.name:<{width}}  {f.size:>10}  s3://{bucket}/{s3_key(prefix, f.name)}" for f in files]
    lines.append(f"{len(files)} files, {sum(f.size for f in files)} bytes")
    return "\n".join(lines)


def write_package(files: Sequence[PackageFile], out_dir: Path) -> list[Path]:
    """Write the package under ``out_dir`` (its dags/ is replaced, so removed DAGs disappear)."""
    dags_dir = out_dir / "dags"
    if dags_dir.exists():
        for stale in sorted(dags_dir.rglob("*"), reverse=True):
            stale.unlink() if stale.is_file() else stale.rmdir()
    written = []
    for package_file in files:
        path = out_dir / package_file.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(package_file.content)
        written.append(path)
    return written


def upload_package(
    files: Sequence[PackageFile], bucket: str, prefix: str, s3_client: Any | None = None
) -> dict[str, str]:
    """Upload the package; delete DAG objects no longer packaged. Returns key -> VersionId."""
    if s3_client is None:
        import boto3  # a deploy-time dependency only

        s3_client = boto3.client("s3")
    versions: dict[str, str] = {}
    for package_file in files:
        key = s3_key(prefix, package_file.name)
        response = s3_client.put_object(Bucket=bucket, Key=key, Body=package_file.content)
        versions[key] = response.get("VersionId", "")
    wanted = {s3_key(prefix, f.name) for f in files}
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=s3_key(prefix, "dags/")):
        for item in page.get("Contents", []):
            if item["Key"] not in wanted:
                s3_client.delete_object(Bucket=bucket, Key=item["Key"])
    return versions


def update_environment_hint(versions: dict[str, str], prefix: str, environment: str = "<mwaa-environment>") -> str:
    """The `aws mwaa update-environment` command that pins the uploaded object versions."""
    options = {
        "--plugins-s3-object-version": versions.get(s3_key(prefix, "plugins.zip")),
        "--requirements-s3-object-version": versions.get(s3_key(prefix, "requirements.txt")),
        "--startup-script-s3-object-version": versions.get(s3_key(prefix, "startup.sh")),
    }
    args = " ".join(f"{flag} {value}" for flag, value in options.items() if value)
    return f"aws mwaa update-environment --name {environment} {args}".rstrip()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlops.deploy.mwaa_package", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write dags/, plugins.zip, ...")
    parser.add_argument("--dry-run", action="store_true", help="print files, sizes and S3 keys; write nothing")
    parser.add_argument("--upload", metavar="S3_URI", help="s3://bucket/prefix to upload to (e.g. .../mwaa)")
    parser.add_argument("--airflow-version", default=DEFAULT_AIRFLOW_VERSION, help="MWAA's Airflow version")
    parser.add_argument("--constraint-url", help="override the constraints file (e.g. a modified copy in dags/)")
    parser.add_argument("--project-root", type=Path, default=PROJECT_ROOT)
    parser.add_argument("--environment-name", default="<mwaa-environment>", help="for the printed update command")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Build the package; print the plan, or write it (and upload it when asked)."""
    args = parse_args(argv)
    try:
        files = build_package(args.project_root, args.airflow_version, args.constraint_url)
        bucket, prefix = split_s3_uri(args.upload) if args.upload else ("<artifacts-bucket>", "mwaa")
    except PackagingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_plan(files, bucket, prefix))
    if args.dry_run:
        print("dry run: nothing written or uploaded")
        return 0
    write_package(files, args.out)
    print(f"wrote {len(files)} files under {args.out}")
    if args.upload:
        versions = upload_package(files, bucket, prefix)
        print(f"uploaded {len(versions)} objects to s3://{bucket}/{prefix}")
        print(update_environment_hint(versions, prefix, args.environment_name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
