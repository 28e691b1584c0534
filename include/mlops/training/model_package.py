"""What ships: the script-mode source bundle and the model package layout.

Source bundle (``sourcedir.tar.gz``, and the same files unpacked for processing jobs)::

    train.py  evaluate.py            entry points (copies of mlops/training/*.py)
    requirements.txt                 installed by the SageMaker training toolkit
    mlops/__init__.py  mlops/training/*.py

Model package (``model.tar.gz``, what SageMaker tars from ``SM_MODEL_DIR``)::

    model.onnx                       the whole Pipeline, preprocessing included
    feature_spec.json                input columns, their kinds, the class order
    code/inference.py                model_fn / input_fn / predict_fn / output_fn
    code/requirements.txt            onnxruntime + numpy for the serving container
    input_example.json               a request body (two test rows) for smoke tests
    decision.json                    per-class decision thresholds (``mlops.training.decision``)

The bundle is byte-for-byte deterministic (sorted members, zero mtimes), so its SHA-256
identifies the code in the step-cache key and in its lake key.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

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


RAW_ORDER_MODULES = (
    "mlops/__init__.py",
    "mlops/schema/__init__.py",
    "mlops/schema/curated.py",
    "mlops/schema/feature_groups.py",
    "mlops/schema/online_store.py",
    "mlops/schema/raw_order.py",
)


def source_files() -> dict[str, bytes]:
    """Relative path -> content of every file in the source bundle."""
    files = {name: (TRAINING_DIR / name).read_bytes() for name in ENTRY_POINTS}
    files["requirements.txt"] = SOURCE_REQUIREMENTS.encode()
    files["mlops/__init__.py"] = (TRAINING_DIR.parent / "__init__.py").read_bytes()
    for path in sorted(TRAINING_DIR.glob("*.py")):
        files[f"mlops/training/{path.name}"] = path.read_bytes()
    for module in RAW_ORDER_MODULES:  # write_model_dir ships them beside inference.py
        files[module] = (TRAINING_DIR.parent.parent / module).read_bytes()
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


def source_bundle() -> tuple[bytes, str]:
    """The sourcedir.tar.gz bytes and their SHA-256 (hex)."""
    data = tar_gz(source_files())
    return data, hashlib.sha256(data).hexdigest()


def write_model_dir(
    model_dir: Path, onnx_model: bytes, spec: FeatureSpec, example: dict | None = None, decision: dict | None = None
) -> list[str]:
    """Lay out the model package in ``model_dir``; return the relative paths written."""
    import json

    code = model_dir / "code"
    code.mkdir(parents=True, exist_ok=True)
    (model_dir / "model.onnx").write_bytes(onnx_model)
    spec.save(model_dir / "feature_spec.json")
    shutil.copyfile(TRAINING_DIR / "inference.py", code / "inference.py")
    for module in RAW_ORDER_MODULES:  # raw-order featurization and the online store lookup, beside inference.py
        (code / module).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TRAINING_DIR.parent.parent / module, code / module)
    (code / "requirements.txt").write_text(INFERENCE_REQUIREMENTS)
    written = ["model.onnx", "feature_spec.json", "code/inference.py", "code/requirements.txt"]
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
