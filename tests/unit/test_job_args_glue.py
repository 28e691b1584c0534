"""The job scripts' Glue branch: ``parse_job_args`` through a stand-in ``awsglue`` package.

``tests/unit/awsglue_standin`` implements ``awsglue.utils.getResolvedOptions`` as Glue documents
it (reserved arguments, ``--JOB_NAME`` from Glue, unknown arguments ignored, missing ones raise).
With it on ``sys.path`` the scripts take the branch they take on Glue; the same argv must give
the job the same arguments as the local parser does.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.etl import build_features
from mlops.schema.job_args import parse_job_args

STANDIN = Path(__file__).parent / "awsglue_standin"
#: What Glue adds to a run's arguments (StartJobRun sends only the job's own).
GLUE_ADDS = ["--JOB_ID", "j_0123", "--JOB_RUN_ID", "jr_0456", "--job-bookmark-option", "job-bookmark-disable",
             "--TempDir", "s3://aws-glue-assets/temporary/", "--enable-metrics", "true"]  # fmt: skip
RUN = ["--raw_uri", "s3://lake/raw/dms/shop", "--curated_uri", "s3://lake/curated/features",
       "--staging_uri", "s3://lake/_staging", "--run_key", "manual__2026-01-01",
       "--shuffle_partitions", "4"]  # fmt: skip


@pytest.fixture
def on_glue(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The stand-in ``awsglue`` importable, as on a Glue worker; removed afterwards."""
    monkeypatch.syspath_prepend(str(STANDIN))
    for name in [m for m in sys.modules if m == "awsglue" or m.startswith("awsglue.")]:
        monkeypatch.delitem(sys.modules, name)
    yield
    for name in [m for m in sys.modules if m == "awsglue" or m.startswith("awsglue.")]:
        del sys.modules[name]


def test_glue_branch_gives_the_job_what_the_local_parser_gives(on_glue: None) -> None:
    import awsglue.utils

    assert Path(awsglue.utils.__file__).is_relative_to(STANDIN)  # the branch under test is the Glue one
    argv = ["build_features.py", "--JOB_NAME", "mlops-dev-curate-features", *GLUE_ADDS, *RUN]
    on_glue_args = build_features.parse_args(argv)
    assert on_glue_args["job_bookmark_option"] == "job-bookmark-disable"  # argparse's name: the Glue branch ran
    sys.modules.pop("awsglue.utils")
    sys.modules.pop("awsglue")
    sys.path.remove(str(STANDIN))
    local = build_features.parse_args(["build_features.py", "--JOB_NAME", "mlops-dev-curate-features", *RUN])
    assert {k: on_glue_args[k] for k in local} == local
    assert local["sample_fraction"] == "1.0" and local["shuffle_partitions"] == "4"


def test_glue_branch_fills_defaults_for_absent_optional_arguments(on_glue: None) -> None:
    argv = ["job.py", "--JOB_NAME", "j", *GLUE_ADDS, "--a", "1"]
    args = parse_job_args(argv, ("JOB_NAME", "a"), {"b": "default-b", "c": ""})
    assert (args["JOB_NAME"], args["a"], args["b"], args["c"]) == ("j", "1", "default-b", "")


def test_glue_branch_exits_naming_a_missing_argument(on_glue: None) -> None:
    argv = ["job.py", "--JOB_NAME", "j", *GLUE_ADDS, "--raw_uri", "s3://lake/raw"]
    with pytest.raises(SystemExit, match="required: --curated_uri"):
        parse_job_args(argv, ("JOB_NAME", "raw_uri", "curated_uri"))


def test_a_job_asking_for_a_reserved_name_fails_on_glue(on_glue: None) -> None:
    """Glue reserves JOB_RUN_ID and friends; a script requesting one fails before any work."""
    with pytest.raises(RuntimeError, match="reserved"):
        parse_job_args(["job.py", *GLUE_ADDS], ("JOB_RUN_ID",))


@pytest.mark.parametrize("module", ["mlops.etl.build_features", "mlops.validation.features_job"])
def test_job_scripts_ask_glue_for_no_reserved_name(module: str, on_glue: None) -> None:
    import importlib

    from awsglue.utils import RESERVED

    job_args = importlib.import_module(module).JOB_ARGS
    defaults = importlib.import_module(module).JOB_DEFAULTS
    assert not set(job_args) & set(RESERVED) and not set(defaults) & set(RESERVED)
