"""Code bundles of the Glue jobs: the project modules a job script imports, as one zip.

Glue puts the zips named by a run's ``--extra-py-files`` on the job's Python path; the local Glue
stand-in (:mod:`mlops.etl.local_glue`) does the same. A bundle holds only job code (standard library
and what the Glue runtime provides), never the project's Airflow-side modules. The zip is
byte-for-byte deterministic (sorted members, fixed timestamps), so its SHA-256 names it: a published
bundle is never overwritten, and a code change makes a new key.

The ETL job's bundle is the ``mlops.schema`` package (the curated contract, snapshots, job
arguments); the validation job's (:mod:`mlops.validation.bundle`) adds its suite and runner.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # include/mlops
LIBS_PREFIX = "glue/libs"
#: The ETL job's script, by path: the worker uploads it and never imports it (it is Spark code).
FEATURES_SCRIPT = PACKAGE_ROOT / "etl" / "build_features.py"
SCHEMA_MODULES = (
    "__init__.py",
    "schema/__init__.py",
    "schema/curated.py",
    "schema/feature_groups.py",
    "schema/online_store.py",
    "schema/job_args.py",
    "schema/snapshots.py",
)


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A deterministic zip of ``files`` (archive name -> content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            archive.writestr(info, files[name])
    return buffer.getvalue()


def code_bundle(name: str, modules: Sequence[str]) -> tuple[bytes, str]:
    """The zip of ``modules`` (paths under ``include/mlops``) and its key ``glue/libs/<name>-<sha16>.zip``."""
    data = zip_bytes({f"mlops/{module}": (PACKAGE_ROOT / module).read_bytes() for module in modules})
    return data, f"{LIBS_PREFIX}/{name}-{hashlib.sha256(data).hexdigest()[:16]}.zip"


def features_bundle() -> tuple[bytes, str]:
    """The ETL job's code bundle: the ``mlops.schema`` package."""
    return code_bundle("mlops_features", SCHEMA_MODULES)


def local_uri(bundle: tuple[bytes, str], artifacts_root: Path) -> str:
    """The ``file://`` URI of a bundle in the local artifacts bucket (published or not)."""
    return (artifacts_root.resolve() / bundle[1]).as_uri()


def publish_locally(bundle: tuple[bytes, str], artifacts_root: Path) -> str:
    """Put a bundle under the local artifacts bucket (once per content hash, atomically); its ``file://`` URI."""
    data, key = bundle
    target = artifacts_root.resolve() / key
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        partial.write_bytes(data)
        os.replace(partial, target)
    return target.as_uri()
