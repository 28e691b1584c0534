"""The validation job's code bundle: the modules the Glue script imports, as one zip.

Glue puts the zip named by ``--extra-py-files`` on the job's Python path; the local Glue
stand-in does the same (:mod:`mlops.etl.local_glue`). The bundle holds only job code (standard
library, pandas/pyarrow and GX, which the Glue runtime provides), never the project's Airflow-side
modules. The zip is byte-for-byte deterministic (sorted members, fixed timestamps), so its
SHA-256 names it: a published bundle is never overwritten, and a code change makes a new key.

    mlops/__init__.py
    mlops/etl/__init__.py  mlops/etl/build_features.py     the curated contract, LakeFiles, job args
    mlops/source/__init__.py  mlops/source/vocabulary.py   the categorical value sets
    mlops/validation/__init__.py  features_suite.py  runner.py  outcome.py  features_job.py
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # include/mlops
BUNDLED_MODULES = (
    "__init__.py",
    "etl/__init__.py",
    "etl/build_features.py",
    "source/__init__.py",
    "source/vocabulary.py",
    "validation/__init__.py",
    "validation/features_suite.py",
    "validation/runner.py",
    "validation/outcome.py",
    "validation/features_job.py",
)
SCRIPT = PACKAGE_ROOT / "validation" / "features_job.py"
LIBS_PREFIX = "glue/libs"


def bundle_files() -> dict[str, bytes]:
    """Archive name -> content of every module in the bundle."""
    return {f"mlops/{name}": (PACKAGE_ROOT / name).read_bytes() for name in BUNDLED_MODULES}


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A deterministic zip of ``files``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            archive.writestr(info, files[name])
    return buffer.getvalue()


def code_bundle() -> tuple[bytes, str]:
    """The zip's bytes and its key under a code root (``glue/libs/mlops_validation-<sha16>.zip``)."""
    data = zip_bytes(bundle_files())
    return data, f"{LIBS_PREFIX}/mlops_validation-{hashlib.sha256(data).hexdigest()[:16]}.zip"
