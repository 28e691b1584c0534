"""Nothing heavy on the MWAA worker: the code that runs in an aws task process reaches no data library.

The roots are what a worker imports on the aws target: the aws module of every step in
``targets.STEPS``, every task-body module ``mlops_airflow/tasks/<stage>.py``, the target switch, the
Assets, the DAG defaults, and whatever the DAG files import themselves. Through the project's import
graph (:mod:`tests.worker_imports`: every import statement, at module level or inside a function, but
not under ``if TYPE_CHECKING:``) none may reach pandas, pyarrow, numpy, DuckDB, SQLAlchemy,
fsspec/s3fs, Great Expectations, scikit-learn, LightGBM, ONNX, pyspark, matplotlib, the SageMaker SDK
or SciPy. Local stand-ins (``*_local`` modules) are not roots: they may import their stand-in
libraries inside ``execute``. The aws paths of the training, serving and monitoring stages are also
run for real in fresh interpreters (``tests/aws/test_worker_imports_training.py``,
``tests/aws/test_monitoring_worker_imports.py``), which checks what third-party modules load too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mlops_airflow.targets import STEPS
from tests import worker_imports
from tests.worker_imports import HEAVY, PROJECT_PACKAGES, heavy_imports

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))
TASK_MODULES = sorted(
    f"mlops_airflow.tasks.{path.stem}" for path in (ROOT / "plugins" / "mlops_airflow" / "tasks").glob("*.py")
    if path.stem != "__init__"
)  # fmt: skip
SHARED_MODULES = ["mlops_airflow.targets", "mlops_airflow.assets", "mlops_airflow.dag_defaults"]


def aws_modules() -> list[str]:
    """The module of every step's aws class."""
    return sorted({aws.partition(":")[0] for aws, _local in STEPS.values()})


def dag_imports(path: Path) -> set[str]:
    """The modules a DAG file imports (at module level or in its task functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def worker_roots() -> list[str]:
    """Every root: aws step modules, task bodies, shared modules, and the DAG files' project imports."""
    from_dags = {
        name for path in DAG_FILES for name in dag_imports(path)
        if name.split(".")[0] in PROJECT_PACKAGES and worker_imports.module_file(name) is not None
    }  # fmt: skip
    return sorted({*aws_modules(), *TASK_MODULES, *SHARED_MODULES, *from_dags})


def test_the_roots_cover_every_step_and_stage():
    roots = worker_roots()
    assert {"mlops_airflow.operators.features_aws", "mlops_airflow.operators.training_aws"} <= set(roots)
    assert {"mlops_airflow.tasks.monitoring", "mlops_airflow.tasks.serving", "mlops_airflow.tasks.training"} <= set(
        roots
    )
    assert not [name for name in roots if name.endswith("_local")], "stand-ins are not worker code on aws"


def test_worker_side_code_reaches_no_heavy_package():
    violations = heavy_imports(worker_roots())
    assert not violations, "worker-side code on the aws path reaches heavy packages:\n" + "\n".join(
        f"  {violation}" for violation in violations
    )


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda path: path.name)
def test_dag_files_import_nothing_heavy_themselves(dag_file):
    heavy = sorted({name.split(".")[0] for name in dag_imports(dag_file)} & HEAVY)
    assert not heavy, f"{dag_file.name} imports {heavy}"


def test_the_guard_fails_on_a_planted_heavy_import(tmp_path, monkeypatch):
    """A task module that reaches pandas through a function-level import of a project module is reported
    with the chain; an import under ``if TYPE_CHECKING:`` is not (it never runs), its ``else:`` is."""
    tasks = tmp_path / "mlops_airflow" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "planted.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import sklearn\nelse:\n    import matplotlib\n\n"
        "def body():\n    from mlops.training.features import FeatureSpec\n    return FeatureSpec\n"
    )
    monkeypatch.setattr(worker_imports, "SOURCES", (tmp_path, *worker_imports.SOURCES))
    found = {violation.package: violation for violation in heavy_imports(["mlops_airflow.tasks.planted"])}
    assert {"pandas", "matplotlib"} <= set(found) and "sklearn" not in found
    assert found["pandas"].chain == ("mlops_airflow.tasks.planted", "mlops.training.features")
    assert "mlops_airflow.tasks.planted: imports pandas via mlops_airflow.tasks.planted -> mlops.training" in str(
        found["pandas"]
    )
