"""The features gate on the worker side: it reads the validation job's small result and decides.

Pure gate logic on hand-written results, the job's code bundle, and the whole validation job
(GX in the glue runtime, through the local Glue stand-in) on the real replicator's output.
"""

from __future__ import annotations

import ast
import json
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from test_etl_fixtures import build_curated_lake, write_replicated

from mlops.aws.glue_requests import start_validation_job_run_request
from mlops.config import load_config
from mlops.etl.local_glue import run_job_locally
from mlops.lake import Lake
from mlops.schema.snapshots import LakeFiles, read_current
from mlops.validation import bundle
from mlops.validation.features_gate import VALIDATED_POINTER, GateError, run_gate
from mlops.validation.outcome import FIX_HINT, ValidationFailedError, result_uri

EXTRA_KEYS = {"snapshot_id", "curated_uri", "rows", "splits", "labels", "run_key", "data_docs", "expectations"}
FAILURES = [
    "expect_table_row_count_to_be_between: 50 rows, expected 100..10000000",
    "expect_column_values_to_be_between on order_hour: 1 values outside [0, 23], e.g. [27]",
]


def _lake(root: Path, snapshot_id: str = "snap1") -> tuple[str, str]:
    """A curated pointer (no data needed: the gate reads only JSON); returns (curated_uri, report_uri)."""
    curated = root / "curated" / "features"
    pointer = {"snapshot_id": snapshot_id, "uri": (curated / "snapshots" / snapshot_id).as_uri(), "rows": 50,
               "splits": {"train": 40, "validation": 5, "test": 5},
               "labels": {"delivered": 45, "returned": 3, "cancelled": 2}}  # fmt: skip
    LakeFiles().write_text_atomic(f"{curated.as_uri()}/_current.json", json.dumps(pointer))
    return curated.as_uri(), (root / "reports" / "features" / "run1").as_uri()


def _result(report_uri: str, snapshot_id: str = "snap1", failures: list[str] | None = None) -> dict:
    failures = failures or []
    result = {"suite": "curated_features", "success": not failures, "evaluated": 93, "failed": len(failures),
              "rows": 50, "failures": failures, "snapshot_id": snapshot_id,
              "data_docs": f"{report_uri}/data_docs/index.html"}  # fmt: skip
    LakeFiles().write_text_atomic(result_uri(report_uri), json.dumps(result))
    return result


def test_passing_result_writes_the_validated_pointer_and_returns_the_extra(tmp_path):
    curated, report = _lake(tmp_path)
    _result(report)
    lines: list[str] = []
    extra = run_gate(curated, report, "run1", LakeFiles(), log=lines.append)
    assert set(extra) == EXTRA_KEYS, "the keys training and the UI read"
    assert extra["curated_uri"].endswith("/snapshots/snap1") and extra["rows"] == 50 and extra["expectations"] == 93
    validated = json.loads(LakeFiles().read_text(f"{curated}/{VALIDATED_POINTER}"))
    assert validated["snapshot_id"] == "snap1" and validated["validation"]["data_docs"] == extra["data_docs"]
    assert lines[0] == "suite curated_features PASSED: 93/93 expectations met on 50 rows"


def test_failing_result_raises_naming_each_expectation_and_writes_nothing(tmp_path):
    curated, report = _lake(tmp_path)
    _result(report, failures=FAILURES)
    with pytest.raises(ValidationFailedError) as caught:
        run_gate(curated, report, "run1", LakeFiles(), log=lambda _: None)
    message = str(caught.value)
    assert message.startswith("feature validation failed: 2 of 93 expectations\n")
    assert all(f"\n  - {line}" in message for line in FAILURES)
    assert f"Data Docs: {report}/data_docs/index.html" in message and FIX_HINT in message
    assert read_current(curated) is not None and LakeFiles().read_text(f"{curated}/{VALIDATED_POINTER}") is None


def test_a_result_about_another_snapshot_or_no_result_cannot_pass(tmp_path):
    curated, report = _lake(tmp_path, snapshot_id="snap2")
    with pytest.raises(GateError, match=r"wrote no result .* re-run validate_features"):
        run_gate(curated, report, "run1", LakeFiles())
    _result(report, snapshot_id="snap1")
    with pytest.raises(GateError, match="about snapshot 'snap1', but the current one is 'snap2'"):
        run_gate(curated, report, "run1", LakeFiles(), log=lambda _: None)
    assert LakeFiles().read_text(f"{curated}/{VALIDATED_POINTER}") is None


def test_bundle_holds_every_module_the_job_imports():
    """Every ``mlops`` import of a bundled module is in the bundle; nothing imports Airflow, pydantic or SQLAlchemy."""
    data, key = bundle.code_bundle()
    names = set(zipfile.ZipFile(BytesIO(data)).namelist())
    assert names == {f"mlops/{m}" for m in bundle.BUNDLED_MODULES}
    assert key == bundle.code_bundle()[1], "the key is the content hash: same code, same key"
    for name in sorted(names):
        tree = ast.parse(zipfile.ZipFile(BytesIO(data)).read(name))
        for node in ast.walk(tree):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            modules += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for module in modules:
                assert module.split(".")[0] not in {"airflow", "pydantic", "sqlalchemy", "yaml"}, (name, module)
                if module.startswith("mlops"):
                    path = module.replace(".", "/")
                    assert f"{path}.py" in names or f"{path}/__init__.py" in names, f"{name} imports {module}"


def test_validation_job_passes_real_replicated_data(tmp_path):
    """Source DB -> local DMS -> curated (the pandas twin) -> the validation job's StartJobRun, run locally."""
    replicated = write_replicated(tmp_path / "replicated")
    root = tmp_path / "lake"
    build_curated_lake(root, replicated, "run1")
    config = load_config(environ={})
    data, key = bundle.code_bundle()
    code = tmp_path / "artifacts" / key
    code.parent.mkdir(parents=True)
    code.write_bytes(data)
    request = start_validation_job_run_request(Lake(root=root.as_uri(), layout=config.lake), config, "run1",
                                               code.as_uri())  # fmt: skip
    lines: list[str] = []
    run = run_job_locally(request, bundle.SCRIPT, log=lines.append)
    assert run["JobRun"]["JobRunState"] == "SUCCEEDED"
    result = json.loads(LakeFiles().read_text(result_uri(request["Arguments"]["--report_uri"])))
    assert result["success"], result["failures"]
    assert any(line.startswith("suite curated_features PASSED") for line in lines)
    extra = run_gate(
        (root / "curated" / "features").as_uri(), request["Arguments"]["--report_uri"], "run1", LakeFiles()
    )
    assert extra["rows"] == result["counts"]["rows"] == result["rows"]
