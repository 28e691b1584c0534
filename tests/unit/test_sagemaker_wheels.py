"""The SageMaker containers install their dependencies offline: wheels fetched at build time
(``make sagemaker-wheels``) ship in sourcedir.tar.gz and model.tar.gz, and both requirements.txt
files install from them alone. Wheels here are small fakes (as in test_mwaa_bundle); the offline
resolution runs uv with ``--no-index``, the way the containers' pip would find them."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from mlops.config import LakeConfig
from mlops.lake import Lake
from mlops.training import model_package as mp
from mlops.training import steps
from mlops_tools import sagemaker_wheels as sw
from tests.unit.test_mwaa_bundle import UV, fake_wheel

TRAINING_PINS = {"lightgbm": "4.5.0", "skl2onnx": "1.17.0", "onnxmltools": "1.12.0", "onnxruntime": "1.19.2",
                 "matplotlib": "3.9.2", "numpy": "1.26.4"}  # fmt: skip
INFERENCE_PINS = {"onnxruntime": "1.19.2", "numpy": "1.26.4"}
IMAGES = {"training": ("1.9-0", sw.Image("3.9")), "inference": ("1.2-1", sw.IMAGES["1.2-1"])}


@pytest.fixture
def wheelhouse(tmp_path, monkeypatch):
    """``build_wheelhouse`` with resolution and download stood in for: the image's packages are in the
    resolution (pyarrow, scikit-learn) and must not ship; the wheels are fakes made here."""
    resolved = {"3.9": {**TRAINING_PINS, "pyarrow": "14.0.1", "scikit-learn": "1.2.1"}}
    calls = []

    def compile_pins(uv, requirements, work, python, platform, constraints):
        calls.append((tuple(requirements), python, constraints[0].read_text()))
        names = {r.split(">")[0].split("=")[0] for r in requirements} | {"numpy", "pyarrow", "scikit-learn"}
        return {n: v for n, v in resolved[python].items() if n in names}

    def fetch_wheels(uv, pins, dest, python):
        return {fake_wheel(dest, n, v).name: fake_wheel(dest, n, v).read_bytes() for n, v in pins.items()}

    monkeypatch.setattr(sw, "compile_pins", compile_pins)
    monkeypatch.setattr(sw, "fetch_wheels", fetch_wheels)
    files = sw.build_wheelhouse("uv", IMAGES)
    out = tmp_path / "wheelhouse"
    sw.write_wheelhouse(files, out)
    return out, files, calls


def _index(files):
    return json.loads(files[mp.WHEELHOUSE_INDEX])


def test_the_wheelhouse_lists_both_purposes_without_the_images_packages(wheelhouse):
    out, files, calls = wheelhouse
    index = _index(files)
    # The 1.2-1 image has pyarrow and scikit-learn: not shipped. An image the table does not know ships all.
    assert index["pins"]["inference"] == INFERENCE_PINS
    assert index["pins"]["training"] == {**TRAINING_PINS, "pyarrow": "14.0.1", "scikit-learn": "1.2.1"}
    assert not any(name.startswith(("pyarrow-", "scikit_learn-")) for name in index["wheels"]["inference"])
    assert len(index["wheels"]["inference"]) == 2 and set(index["wheels"]["inference"]) <= set(files)
    assert sorted(p.name for p in out.iterdir()) == sorted(files)
    inference_call = next(c for c in calls if c[0] == ("onnxruntime>=1.17", "numpy>=1.24"))
    assert inference_call[1] == "3.9" and "scikit-learn==1.2.1" in inference_call[2] and "numpy<2" in inference_call[2]


def test_an_image_without_a_known_python_needs_it_named():
    with pytest.raises(sw.BundleError, match="SAGEMAKER_TRAINING_PYTHON"):
        sw.image_for("9.9-9", None)
    assert sw.image_for("9.9-9", "3.12") == sw.Image("3.12")
    assert sw.image_for("1.2-1", None).python == "3.9"


def test_upload_puts_the_index_last(wheelhouse):
    _, files, _ = wheelhouse

    class Client:
        keys: list[str] = []

        def put_object(self, Bucket, Key, Body):
            self.keys.append(Key)

    keys = sw.upload_wheelhouse(files, "s3://artifacts/sagemaker/wheelhouse/", Client())
    assert keys[-1] == f"sagemaker/wheelhouse/{mp.WHEELHOUSE_INDEX}" and len(keys) == len(files)
    with pytest.raises(sw.BundleError, match="s3://bucket/prefix"):
        sw.upload_wheelhouse(files, "artifacts/wheelhouse")


def test_a_stale_or_tampered_wheelhouse_is_refused(wheelhouse):
    _, files, _ = wheelhouse
    index = _index(files)
    stale = json.dumps({**index, "requirements": {**index["requirements"], "inference": ["onnxruntime>=1.0"]}})
    with pytest.raises(mp.WheelhouseError, match="rerun `make sagemaker-wheels`"):
        mp.wheelhouse_files(stale.encode(), files.__getitem__)
    name = index["wheels"]["inference"][0]
    with pytest.raises(mp.WheelhouseError, match=f"{name} does not match its sha256"):
        mp.wheelhouse_files(files[mp.WHEELHOUSE_INDEX], lambda n: b"tampered" if n == name else files[n])


def _resolve_offline(requirements: Path, cwd: Path, python: str = "3.9") -> str:
    """What ``requirements`` resolves to with no index (uv, as the container's pip would install it)."""
    uv = UV if Path(UV).exists() else "uv"
    result = subprocess.run(
        [uv, "pip", "compile", "--quiet", "--offline", "--no-header", "--no-annotate", "--python-version", python,
         str(requirements)],
        capture_output=True, text=True, cwd=cwd, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_source_bundle_installs_its_requirements_from_its_wheels_alone(wheelhouse, tmp_path):
    _, files, _ = wheelhouse
    bundle = mp.source_files(mp.wheelhouse_files(files[mp.WHEELHOUSE_INDEX], files.__getitem__))
    requirements = bundle["requirements.txt"].decode()
    assert requirements.splitlines()[1:3] == ["--no-index", f"--find-links {mp.WHEELHOUSE}"]
    assert {f"{mp.WHEELHOUSE}/{n}" for n in files} <= set(bundle)
    code = tmp_path / "opt-ml-code"
    with tarfile.open(fileobj=io.BytesIO(mp.tar_gz(bundle)), mode="r:gz") as tar:
        tar.extractall(code, filter="data")
    resolved = _resolve_offline(code / "requirements.txt", cwd=code)
    assert all(f"{name}=={version}" in resolved for name, version in TRAINING_PINS.items() if name != "numpy")


def test_training_puts_the_endpoints_wheels_into_the_model_package(wheelhouse, tmp_path):
    out, files, _ = wheelhouse

    class Spec:  # what write_model_dir needs of a FeatureSpec
        def save(self, path: Path) -> None:
            path.write_text("{}")

    model_dir = tmp_path / "model"
    written = mp.write_model_dir(model_dir, b"onnx", Spec(), wheels_dir=out)  # type: ignore[arg-type]
    wheels = sorted(n for n in written if n.startswith("code/wheels/"))
    assert wheels == sorted(f"code/wheels/{n}" for n in _index(files)["wheels"]["inference"])
    requirements = (model_dir / "code" / "requirements.txt").read_text()
    assert f"--find-links {mp.MODEL_CODE_DIR}/{mp.WHEELHOUSE}\n" in requirements and "--no-index\n" in requirements
    archive = mp.tar_directory(model_dir, tmp_path / "model.tar.gz")
    unpacked = mp.extract(archive, tmp_path / "opt-ml-model")  # /opt/ml/model in the serving container
    local = requirements.replace(mp.MODEL_CODE_DIR, str(unpacked / "code"))
    (unpacked / "code" / "requirements.txt").write_text(local)
    resolved = _resolve_offline(unpacked / "code" / "requirements.txt", cwd=tmp_path)
    assert "onnxruntime==1.19.2" in resolved and "numpy==1.26.4" in resolved


def test_without_a_wheelhouse_the_packages_stay_as_they_were(tmp_path):
    assert mp.inference_code_files(tmp_path) == {"code/requirements.txt": mp.INFERENCE_REQUIREMENTS.encode()}
    assert mp.source_files()["requirements.txt"] == mp.SOURCE_REQUIREMENTS.encode()
    assert not any(name.startswith(f"{mp.WHEELHOUSE}/") for name in mp.source_files())
    assert mp.source_identity() == mp.source_bundle()[1]


def test_publish_ships_the_wheels_once_and_refuses_a_private_network_without_them(wheelhouse, tmp_path, monkeypatch):
    out, files, _ = wheelhouse
    lake = Lake(root=(tmp_path / "lake").as_uri(), layout=LakeConfig())
    with pytest.raises(ValueError, match="make sagemaker-wheels"):
        steps.publish_source(lake, offline=True)
    code = steps.publish_source(lake, wheelhouse_uri=out.as_uri(), offline=True)
    with tarfile.open(Path(code["source_uri"].removeprefix("file://")), "r:gz") as tar:
        names = tar.getnames()
    assert {f"{mp.WHEELHOUSE}/{n}" for n in files} <= set(names)
    assert (Path(code["code_uri"].removeprefix("file://")) / mp.WHEELHOUSE / mp.WHEELHOUSE_INDEX).exists()
    assert code["code_sha256"] != steps.publish_source(lake)["code_sha256"]  # the wheels are part of its identity
    monkeypatch.setattr(mp, "wheelhouse_files", lambda *a: pytest.fail("published bundles are not rebuilt"))
    assert steps.publish_source(lake, wheelhouse_uri=out.as_uri(), offline=True) == code


def test_the_wheelhouse_uri_is_a_lake_style_uri():
    from mlops.config import TrainingConfig

    assert TrainingConfig(wheelhouse_uri="s3://mlops-artifacts-dev/sagemaker/wheelhouse").wheelhouse_uri
    with pytest.raises(ValueError, match="wheelhouse_uri"):
        TrainingConfig(wheelhouse_uri="sagemaker/wheelhouse")


def test_the_local_server_reads_the_offline_requirements_as_package_names(wheelhouse, tmp_path):
    from mlops.serving.handler import missing_requirements

    out, _, _ = wheelhouse
    offline = tmp_path / "requirements.txt"
    offline.write_bytes(mp.inference_code_files(out)["code/requirements.txt"])
    plain = tmp_path / "plain.txt"
    plain.write_text(mp.INFERENCE_REQUIREMENTS)
    assert missing_requirements(offline) == missing_requirements(plain)  # pip options are not packages
