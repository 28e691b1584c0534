"""Static import graph of the project's own modules: what a piece of code can import, transitively.

Every ``import``/``from ... import`` statement of a module counts, at module level or inside a
function (the project imports heavy libraries inside ``execute`` on purpose, so a function-level
import is exactly what runs on a worker). Only the project's packages (``mlops``,
``mlops_airflow``) are followed; anything else is a leaf named by its top-level package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (ROOT / "include", ROOT / "plugins")
PROJECT_PACKAGES = ("mlops", "mlops_airflow")

#: What worker-side code must never import on the aws target: reading whole tables, datasets or
#: capture windows is a Glue or SageMaker job's work, not the MWAA worker's.
HEAVY = frozenset(
    {"pandas", "pyarrow", "numpy", "polars", "duckdb", "sqlalchemy", "fsspec", "s3fs", "great_expectations",
     "sklearn", "lightgbm", "onnxruntime", "skl2onnx", "onnxmltools", "pyspark", "matplotlib", "sagemaker", "scipy"}
)  # fmt: skip


def module_file(name: str) -> Path | None:
    """The source file of a project module (package ``__init__`` or plain module), or None."""
    for source in SOURCES:
        base = source.joinpath(*name.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.exists():
                return candidate
    return None


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _is_type_checking(node: ast.AST) -> bool:
    """An ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``) block: its imports never run."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (an ``else:`` branch still runs)."""
    nodes, stack = [], [tree]
    while stack:
        node = stack.pop()
        nodes.append(node)
        children = node.orelse if _is_type_checking(node) else list(ast.iter_child_nodes(node))
        stack.extend(children)
    return nodes


def imports_of(module: str) -> set[str]:
    """Every module name ``module``'s source imports at run time, at module level or in a function
    (``from a import b`` also yields ``a.b``, which may be one); ``if TYPE_CHECKING:`` imports never run."""
    path = module_file(module)
    if path is None:
        return set()
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, path.name == "__init__.py")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name}


@dataclass(frozen=True)
class Violation:
    """A heavy package reachable from a root, with the chain of project modules that leads to it."""

    root: str
    package: str
    chain: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.root}: imports {self.package} via {' -> '.join(self.chain)}"


def heavy_imports(roots: Iterable[str], heavy: frozenset[str] = HEAVY) -> list[Violation]:
    """The heavy packages each root module can reach through the project's modules."""
    violations = []
    for root in roots:
        seen: dict[str, tuple[str, ...]] = {root: (root,)}
        queue = [root]
        reported: set[str] = set()
        while queue:
            current = queue.pop(0)
            for name in sorted(imports_of(current)):
                top = name.split(".")[0]
                if top in heavy and top not in reported:
                    reported.add(top)
                    violations.append(Violation(root, top, seen[current]))
                elif top in PROJECT_PACKAGES and name not in seen and module_file(name) is not None:
                    seen[name] = (*seen[current], name)
                    queue.append(name)
    return violations
