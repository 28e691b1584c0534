"""What ships: the script-mode source bundle and the model package layout.

Source bundle (``sourcedir.tar.gz``, and the same files unpacked for processing jobs)::

    train.py  evaluate.py            entry points (copies of mlops/training/*.py)
    requirements.txt                 installed by the SageMaker training toolkit
    mlops/__init__.py  mlops/training/*.py
    wheels/wheelhouse.json, *.whl    with ``training.wheelhouse_uri``: the wheels ``make sagemaker-wheels``
                                     fetched at build time; requirements.txt then installs from them alone

Model package (``model.tar.gz``, what SageMaker tars from ``SM_MODEL_DIR``)::

    model.onnx                       the whole Pipeline, preprocessing included
    feature_spec.json                input columns, their kinds, the class order
    code/inference.py                model_fn / input_fn / predict_fn / output_fn
    code/requirements.txt            onnxruntime + numpy for the serving container
    code/wheels/*.whl                when the source bundle has wheels: the serving image's, installed offline
    input_example.json               a request body (two test rows) for smoke tests
    decision.json                    per-class decision thresholds (``mlops.training.decision``)

Nothing in the private network reaches PyPI (``infra/cfn/network.yaml`` has no NAT), so with a
wheelhouse both ``requirements.txt`` files read ``--no-index --find-links <the wheels>``: the training
toolkit, ``evaluate.py`` and the serving container install from the shipped wheels. Without one (local
runs: the ``sagemaker`` runtime has everything; or a network with a route to PyPI) they name PyPI packages.

The bundle is byte-for-byte deterministic (sorted members, zero mtimes), so its SHA-256
identifies the code in the step-cache key and in its lake key.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # features needs pandas/pyarrow; publishing the bundle (on the worker) must not import them
    from mlops.training.features import FeatureSpec

TRAINING_DIR = Path(__file__).resolve().parent
ENTRY_POINTS = ("train.py", "evaluate.py")
SOURCE_REQUIREMENTS = """\
# Installed by the SageMaker training toolkit / evaluate.py on the sklearn framework image.
lightgbm>=4.3
skl2onnx>=1.16
onnxmltools>=1.12
onnxruntime>=1.17
pyarrow>=14
matplotlib>=3.7
"""
INFERENCE_REQUIREMENTS = "onnxruntime>=1.17\nnumpy>=1.24\n"
WHEELHOUSE = "wheels"  # folder of the source bundle (and of model.tar.gz's code/) holding the wheels
WHEELHOUSE_INDEX = "wheelhouse.json"  # written by `make sagemaker-wheels` (tools/mlops_tools/sagemaker_wheels.py)
#: Where a training job's source bundle is unpacked is this file's grandparent (/opt/ml/code); its wheels/.
BUNDLED_WHEELS = TRAINING_DIR.parents[1] / WHEELHOUSE
MODEL_CODE_DIR = "/opt/ml/model/code"  # SAGEMAKER_SUBMIT_DIRECTORY of the serving container


RAW_ORDER_MODULES = (
    "mlops/__init__.py",
    "mlops/schema/__init__.py",
    "mlops/schema/curated.py",
    "mlops/schema/feature_groups.py",
    "mlops/schema/online_store.py",
    "mlops/schema/raw_order.py",
)


class WheelhouseError(ValueError):
    """The configured wheelhouse does not fit this code; the message names the fix."""


def requirement_lines(requirements: str) -> list[str]:
    """The requirement specifiers of a requirements text (comments and blank lines dropped)."""
    return [line.strip() for line in requirements.splitlines() if line.strip() and not line.startswith("#")]


def offline_requirements(requirements: str, find_links: str) -> str:
    """``requirements`` installed from the wheels in ``find_links`` alone: pip never asks an index.

    pip reads a relative ``--find-links`` in a requirements file relative to that file.
    """
    return f"# Offline: the wheels were fetched at build time (make sagemaker-wheels).\n--no-index\n" \
           f"--find-links {find_links}\n{requirements}"  # fmt: skip


def check_wheelhouse_index(index: dict[str, Any]) -> None:
    """The wheelhouse was built for today's requirements, and lists a sha256 for each of its wheels."""
    expected = {
        "training": requirement_lines(SOURCE_REQUIREMENTS),
        "inference": requirement_lines(INFERENCE_REQUIREMENTS),
    }
    built_for = {purpose: list(index.get("requirements", {}).get(purpose, [])) for purpose in expected}
    if built_for != expected:
        raise WheelhouseError(f"the wheelhouse was built for {built_for}, the code needs {expected}; "
                              "rerun `make sagemaker-wheels` and upload it to training.wheelhouse_uri")  # fmt: skip
    unlisted = sorted(n for p in expected for n in index.get("wheels", {}).get(p, []) if n not in index["sha256"])
    if unlisted:
        raise WheelhouseError(f"{WHEELHOUSE_INDEX} lists no sha256 for {unlisted}; rerun `make sagemaker-wheels`")


def wheelhouse_files(index_bytes: bytes, read: Callable[[str], bytes]) -> dict[str, bytes]:
    """``{file name: bytes}`` of a wheelhouse (its index and every wheel it lists), each wheel checked
    against the sha256 in the index; ``read(name)`` fetches one file of the wheelhouse."""
    index = json.loads(index_bytes)
    check_wheelhouse_index(index)
    files = {WHEELHOUSE_INDEX: index_bytes}
    for name in sorted({n for names in index["wheels"].values() for n in names}):
        content = read(name)
        if hashlib.sha256(content).hexdigest() != index["sha256"][name]:
            raise WheelhouseError(
                f"{name} does not match its sha256 in {WHEELHOUSE_INDEX}; rerun `make sagemaker-wheels`"
            )
        files[name] = content
    return files


def source_files(wheelhouse: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Relative path -> content of every file in the source bundle (``wheelhouse``: :func:`wheelhouse_files`)."""
    files = {name: (TRAINING_DIR / name).read_bytes() for name in ENTRY_POINTS}
    files["requirements.txt"] = SOURCE_REQUIREMENTS.encode()
    files["mlops/__init__.py"] = (TRAINING_DIR.parent / "__init__.py").read_bytes()
    for path in sorted(TRAINING_DIR.glob("*.py")):
        files[f"mlops/training/{path.name}"] = path.read_bytes()
    for module in RAW_ORDER_MODULES:  # write_model_dir ships them beside inference.py
        files[module] = (TRAINING_DIR.parent.parent / module).read_bytes()
    if wheelhouse:
        files["requirements.txt"] = offline_requirements(SOURCE_REQUIREMENTS, WHEELHOUSE).encode()
        files.update({f"{WHEELHOUSE}/{name}": content for name, content in wheelhouse.items()})
    return files


def inference_code_files(wheels_dir: Path = BUNDLED_WHEELS) -> dict[str, bytes]:
    """``code/requirements.txt`` of the model package and, when the source bundle carries a wheelhouse
    (``wheels_dir``), the serving image's wheels under ``code/wheels/`` with an offline requirements file."""
    index = wheels_dir / WHEELHOUSE_INDEX
    if not index.exists():
        return {"code/requirements.txt": INFERENCE_REQUIREMENTS.encode()}
    names = json.loads(index.read_text())["wheels"]["inference"]
    files = {f"code/{WHEELHOUSE}/{name}": (wheels_dir / name).read_bytes() for name in names}
    find_links = f"{MODEL_CODE_DIR}/{WHEELHOUSE}"
    files["code/requirements.txt"] = offline_requirements(INFERENCE_REQUIREMENTS, find_links).encode()
    return files


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A deterministic tar.gz of ``files``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return gzip.compress(raw.getvalue(), mtime=0)


def source_bundle(wheelhouse: dict[str, bytes] | None = None) -> tuple[bytes, str]:
    """The sourcedir.tar.gz bytes and their SHA-256 (hex)."""
    data = tar_gz(source_files(wheelhouse))
    return data, hashlib.sha256(data).hexdigest()


def source_identity(wheelhouse_index: bytes | None = None) -> str:
    """SHA-256 naming a source bundle without reading its wheels: the code plus the wheelhouse index
    (which holds each wheel's sha256). Without a wheelhouse it is :func:`source_bundle`'s hash."""
    wheelhouse = {WHEELHOUSE_INDEX: wheelhouse_index} if wheelhouse_index is not None else None
    return hashlib.sha256(tar_gz(source_files(wheelhouse))).hexdigest()


def write_model_dir(
    model_dir: Path,
    onnx_model: bytes,
    spec: FeatureSpec,
    example: dict | None = None,
    decision: dict | None = None,
    wheels_dir: Path = BUNDLED_WHEELS,
) -> list[str]:
    """Lay out the model package in ``model_dir``; return the relative paths written."""
    code = model_dir / "code"
    code.mkdir(parents=True, exist_ok=True)
    (model_dir / "model.onnx").write_bytes(onnx_model)
    spec.save(model_dir / "feature_spec.json")
    shutil.copyfile(TRAINING_DIR / "inference.py", code / "inference.py")
    for module in RAW_ORDER_MODULES:  # raw-order featurization and the online store lookup, beside inference.py
        (code / module).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TRAINING_DIR.parent.parent / module, code / module)
    written = ["model.onnx", "feature_spec.json", "code/inference.py"]
    for name, content in sorted(inference_code_files(wheels_dir).items()):
        (model_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (model_dir / name).write_bytes(content)
        written.append(name)
    if example is not None:
        (model_dir / "input_example.json").write_text(json.dumps(example, indent=2))
        written.append("input_example.json")
    if decision is not None:
        (model_dir / "decision.json").write_text(json.dumps(decision, indent=2))
        written.append("decision.json")
    return written


def tar_directory(directory: Path, destination: Path) -> Path:
    """``tar czf destination -C directory .`` (how SageMaker packs model and output dirs)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(destination, "w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return destination


def extract(archive: Path, destination: Path) -> Path:
    """Unpack a tar.gz safely (no absolute paths or ``..``)."""
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(destination, filter="data")
    return destination
