"""Model packages for the serving tests and the serving benchmark, built by the training stage's code.

Runs in the SageMaker runtime (the container's libraries). ``mlops.training.train.train`` fits the
LightGBM pipeline on :mod:`mlops.training.synthetic` curated features, exports it to ONNX, checks
parity and writes the model directory with the real ``code/inference.py``, exactly as a training
job does; this module tars it the way SageMaker does and can break a copy on purpose for the
error-path tests. Packages of the same seed share one fitted model.

Tests in this runtime import :func:`build_packages`; tests in the Airflow environment run it as a
subprocess (``tests.sagemaker_runtime.build_model_packages``)::

    .mlops/venvs/sagemaker/bin/python -m tests.jobs.sagemaker.model_packages OUT_DIR \
        '{"blue": {"seed": 7}, "bad-load": {"seed": 7, "broken": "model_fn_raises"}}'

which writes ``OUT_DIR/<name>/model.tar.gz`` and ``OUT_DIR/manifest.json``: per package its
archive, feature spec, input example (the package's ``input_example.json``), one record with
every feature set (``row``) and the same record as a CSV line in column order (``csv``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlops.training import model_package, synthetic, train

#: what each ``broken`` value does to code/inference.py
BROKEN: dict[str, str | None] = {
    "no_code": None,  # the file is removed
    "predict_raises": "\n\ndef predict_fn(input_data, model):\n    raise RuntimeError('model exploded')\n",
    "model_fn_raises": "\n\ndef model_fn(model_dir):\n    raise RuntimeError('weights are corrupt')\n",
}
TRAINING_ROWS = 1500
HYPERPARAMETERS = {"n_estimators": 40, "num_leaves": 15, "early_stopping_rounds": 0}


def train_model_dir(workdir: Path, seed: int, rows: int = TRAINING_ROWS, data: str | None = None) -> Path:
    """Run ``train.py``'s training on synthetic curated features (or the curated dataset folder ``data``, laid out
    as the curated table); return the model directory it wrote."""
    if data:
        shutil.copytree(data, workdir / "data")
    else:
        synthetic.write_dataset(synthetic.curated_features(rows, seed=seed), workdir / "data")
    argv = [f"--{name}={value}" for name, value in {**HYPERPARAMETERS, "seed": seed}.items()]
    for channel in ("train", "validation", "test"):  # one channel holding all splits; the script filters
        argv.append(f"--{channel}={workdir / 'data'}")
    argv += [f"--model-dir={workdir / 'model'}", f"--output-data-dir={workdir / 'output' / 'data'}"]
    argv.append(f"--output-dir={workdir / 'output'}")
    with contextlib.redirect_stdout(sys.stderr):  # the training log; stdout stays free for callers
        train.train(train.parse_args(argv))
    return workdir / "model"


def break_package(model_dir: Path, broken: str) -> None:
    """Make the package fail the way ``broken`` names (see :data:`BROKEN`)."""
    if broken not in BROKEN:
        raise ValueError(f"unknown broken={broken!r}; known: {sorted(BROKEN)}")
    script = model_dir / "code" / "inference.py"
    addition = BROKEN[broken]
    if addition is None:
        script.unlink()
    else:
        script.write_text(script.read_text() + addition)


def describe(archive: Path, model_dir: Path) -> dict[str, Any]:
    """The manifest entry of one package."""
    spec = json.loads((model_dir / "feature_spec.json").read_text())
    example = json.loads((model_dir / "input_example.json").read_text())
    columns = [*spec["numeric"], *spec["categorical"]]
    row = {c: next((r[c] for r in example["instances"] if r.get(c) is not None), None) for c in columns}
    row = {c: v if v is not None else (0.0 if c in spec["numeric"] else "unknown") for c, v in row.items()}
    return {
        "archive": str(archive),
        "feature_spec": spec,
        "example": example,
        "row": row,
        "csv": ",".join(str(row[c]) for c in columns),
    }


def build_packages(out_dir: Path, packages: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Build ``out_dir/<name>/model.tar.gz`` for each ``name -> {"seed": int, "broken": str | None,
    "native": bool, "data": a curated dataset folder or None}``; ``native`` also keeps the fitted sklearn
    pipeline as ``native_model.joblib``."""
    manifest: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trained: dict[tuple[int, str], Path] = {}
        for name, options in packages.items():
            seed, data = int(options.get("seed", 7)), options.get("data") or ""
            if (seed, data) not in trained:
                trained[seed, data] = train_model_dir(
                    Path(tmp) / f"seed-{seed}-{len(trained)}", seed, data=data or None
                )
            model_dir = Path(tmp) / "packages" / name
            shutil.copytree(trained[seed, data], model_dir)
            if options.get("broken"):
                break_package(model_dir, options["broken"])
            archive = model_package.tar_directory(model_dir, out_dir / name / "model.tar.gz")
            manifest[name] = describe(archive, model_dir)
            if options.get("native"):
                native = out_dir / name / "native_model.joblib"
                shutil.copyfile(trained[seed, data].parent / "output" / "data" / "native_model.joblib", native)
                manifest[name]["native_model"] = str(native)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("packages", help='JSON: {"name": {"seed": 7, "broken": null, "native": false}, ...}')
    args = parser.parse_args(argv)
    build_packages(args.out_dir, json.loads(args.packages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
