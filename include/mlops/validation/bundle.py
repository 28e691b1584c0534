"""The validation job's code bundle: the modules its Glue script imports, as one zip.

Built like the ETL job's (:mod:`mlops.etl.bundle`: deterministic, named by its SHA-256, passed as
``--extra-py-files``). It holds only job code (standard library, pandas/pyarrow and GX, which the
Glue runtime provides), never the project's Airflow-side modules:

    mlops/__init__.py  mlops/schema/...                    the curated contract, snapshots, job args
    mlops/source/__init__.py  mlops/source/vocabulary.py   the categorical value sets
    mlops/validation/__init__.py  features_suite.py  runner.py  outcome.py  features_job.py
"""

from __future__ import annotations

from mlops.etl.bundle import PACKAGE_ROOT, SCHEMA_MODULES
from mlops.etl.bundle import code_bundle as build_bundle

BUNDLED_MODULES = (
    *SCHEMA_MODULES,
    "source/__init__.py",
    "source/vocabulary.py",
    "validation/__init__.py",
    "validation/features_suite.py",
    "validation/runner.py",
    "validation/outcome.py",
    "validation/features_job.py",
)
SCRIPT = PACKAGE_ROOT / "validation" / "features_job.py"


def code_bundle() -> tuple[bytes, str]:
    """The zip's bytes and its key under a code root (``glue/libs/mlops_validation-<sha16>.zip``)."""
    return build_bundle("mlops_validation", BUNDLED_MODULES)
