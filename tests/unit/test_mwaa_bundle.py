"""The MWAA bundle: a wheel in plugins.zip, requirements at MWAA's pins, and a check that can fail."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mlops_tools import mwaa_bundle as mb
from mlops_tools import mwaa_check
from mlops_tools.mwaa_constraints import canonical, mwaa_pins, parse_pins, read_versions

ROOT = Path(__file__).resolve().parents[2]
UV = os.environ.get("UV") or str(ROOT / ".mlops" / "tools" / "bin" / "uv")


@pytest.fixture(scope="module")
def bundle() -> dict[str, mb.BundleFile]:
    uv = UV if Path(UV).exists() else "uv"
    return {f.name: f for f in mb.build_bundle(ROOT, uv=uv, offline=False)}  # no downloads in a test


def test_bundle_has_dags_plugins_requirements_startup_and_a_manifest(bundle):
    assert {"plugins.zip", "requirements.txt", "startup.sh", "manifest.json"} <= set(bundle)
    assert sorted(n for n in bundle if n.startswith("dags/")) == sorted(
        f"dags/{p.name}" for p in (ROOT / "dags").glob("*.py")
    )
    manifest = json.loads(bundle["manifest.json"].content)
    assert manifest["mwaa_airflow_version"] == read_versions().airflow
    assert manifest["files"]["plugins.zip"]["sha256"] == bundle["plugins.zip"].sha256


def test_plugins_zip_holds_the_wheel_and_config_and_no_python_module(bundle):
    names = zipfile.ZipFile(io.BytesIO(bundle["plugins.zip"].content)).namelist()
    assert not [n for n in names if n.endswith(".py")], "a .py in the plugins folder becomes a top-level module"
    wheels = [n for n in names if n.endswith(".whl")]
    assert len(wheels) == 1 and wheels[0].startswith(f"{mb.WHEELHOUSE}/") and set(names) == {wheels[0], "pipeline.yaml"}
    wheel = zipfile.ZipFile(io.BytesIO(zipfile.ZipFile(io.BytesIO(bundle["plugins.zip"].content)).read(wheels[0])))
    packages = {n.split("/")[0] for n in wheel.namelist()}
    assert {"mlops", "mlops_airflow"} <= packages
    assert not {"mlops_tools", "tests", "dags"} & packages, "tooling and tests never ship"
    assert "mlops/aws/framework_images.json" in wheel.namelist()


def test_every_requirement_is_pinned_to_mwaas_pin(bundle):
    text = bundle["requirements.txt"].content.decode()
    versions = read_versions()
    assert f'--constraint "{versions.constraints_url}"' in text
    assert f"--find-links {mb.MWAA_PLUGINS_DIR}/{mb.WHEELHOUSE}" in text
    assert "--no-index" not in text, "the online variant installs from PyPI"
    pins = parse_pins(text)
    mwaa = mwaa_pins()
    project = canonical(mb.project_metadata()["name"])
    assert pins.pop(project) == mb.project_metadata()["version"]
    assert pins, "the worker's imports are listed"
    assert {name: mwaa[name] for name in pins} == pins
    requirement_lines = [line for line in text.splitlines() if line and not line.startswith(("#", "-"))]
    assert all("==" in line for line in requirement_lines), "every requirement pins exactly"


def test_requirements_are_the_worker_dependencies_and_nothing_heavy(bundle):
    pins = parse_pins(bundle["requirements.txt"].content.decode())
    declared = {canonical(d.split("[")[0]) for d in mb.project_metadata()["dependencies"]}
    assert set(pins) - {canonical(mb.project_metadata()["name"])} == declared
    heavy = {"pandas", "pyarrow", "numpy", "great-expectations", "scikit-learn", "pyspark", "duckdb", "sqlalchemy"}
    assert not heavy & set(pins)


def test_a_worker_dependency_mwaa_does_not_pin_is_refused():
    with pytest.raises(mb.BundleError, match=r"lightgbm is a worker dependency.*into a job"):
        mb.worker_requirements(["lightgbm"], mwaa_pins())


def test_deterministic_zip_gives_the_same_bytes_for_the_same_entries():
    entries = {"b.txt": b"two", "a.whl": b"one"}
    assert mb.deterministic_zip(entries) == mb.deterministic_zip(dict(reversed(entries.items())))


def test_the_check_catches_a_plugins_folder_that_shadows_a_module(tmp_path):
    """The loading check runs Airflow's plugin manager; a statistics.py in the folder must be reported."""
    plugins, dags = tmp_path / "plugins", tmp_path / "bundle" / "dags"
    plugins.mkdir()
    dags.mkdir(parents=True)
    (plugins / "statistics.py").write_text("ANSWER = 42\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS__")}
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow"), AIRFLOW__CORE__PLUGINS_FOLDER=str(plugins),
               AIRFLOW__CORE__LOAD_EXAMPLES="False", MLOPS_TARGET="aws")  # fmt: skip
    code = (
        "import json, sys; from pathlib import Path; from mlops_tools import mwaa_check as m; "
        f"print(json.dumps(m.inside(Path({str(tmp_path / 'bundle')!r}))))"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    problems = json.loads(result.stdout.strip().splitlines()[-1])["problems"]
    assert any("`statistics` is shadowed" in p for p in problems), problems
    assert any("module `statistics` was imported from the plugins folder" in p for p in problems)


def test_local_requirements_drop_mwaas_url_and_path_options(tmp_path):
    (tmp_path / "requirements.txt").write_text(
        '# c\n--constraint "https://x"\n--find-links /usr/local/airflow/plugins\n--no-index\nboto3==1\n'
    )
    path = mwaa_check.local_requirements(tmp_path, tmp_path)
    assert path.read_text() == "boto3==1\n"


# The offline variant (the default): its pieces, with wheels made here instead of downloaded.


def fake_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A pure-Python wheel with metadata only (and its dependencies as Requires-Dist)."""
    dist = f"{name.replace('-', '_')}-{version}"
    metadata = "".join([f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                        *(f"Requires-Dist: {r}\n" for r in requires)])  # fmt: skip
    files = {f"{dist}.dist-info/METADATA": metadata.encode(),
             f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
             f"{dist}.dist-info/RECORD": b""}  # fmt: skip
    path = folder / f"{dist}-py3-none-any.whl"
    path.write_bytes(mb.deterministic_zip(files))
    return path


def test_offline_requirements_install_from_the_wheelhouse_only():
    versions = read_versions()
    wheelhouse = f"{mb.MWAA_PLUGINS_DIR}/{mb.WHEELHOUSE}"
    text = mb.requirements_txt(versions, "mlops_orchestrator-0.1.0-py3-none-any.whl", ["boto3==1"], wheelhouse, True)
    lines = text.splitlines()
    assert f"--constraint {wheelhouse}/{versions.constraints_file.name}" in lines
    assert f"--find-links {wheelhouse}" in lines and "--no-index" in lines
    assert "http" not in text.replace("https://", "") and "://" not in text, "nothing to fetch from the internet"
    assert lines[-2:] == ["mlops-orchestrator==0.1.0", "boto3==1"]


def test_wheels_to_ship_are_what_the_image_lacks_and_a_changed_image_pin_is_refused():
    image = {"apache-airflow": "3.3.1", "requests": "2.32.5"}
    resolved = {**image, "boto3": "1.43.56", "botocore": "1.43.56"}
    assert mb.wheels_to_ship(resolved, image) == {"boto3": "1.43.56", "botocore": "1.43.56"}
    with pytest.raises(mb.BundleError, match=r"change packages of MWAA's image: requests==2.0 \(image: 2.32.5\)"):
        mb.wheels_to_ship({**resolved, "requests": "2.0"}, image)


def test_the_wheelhouse_must_match_the_pins_exactly():
    pins = {"boto3": "1.43.56", "multidict": "6.7.1"}
    good = ["boto3-1.43.56-py3-none-any.whl", "multidict-6.7.1-cp312-cp312-manylinux_2_28_x86_64.whl"]
    mb.check_wheelhouse(pins, good)
    with pytest.raises(mb.BundleError, match=r"missing \['multidict==6.7.1'\]"):
        mb.check_wheelhouse(pins, good[:1])
    with pytest.raises(mb.BundleError, match=r"unexpected \['boto3-1.0-py3-none-any.whl'\]"):
        mb.check_wheelhouse(pins, [*good, "boto3-1.0-py3-none-any.whl"])


def test_offline_plugins_zip_is_a_wheelhouse_with_mwaas_constraints_and_no_module(monkeypatch):
    constraints = read_versions().constraints_file
    content = mb.plugins_zip({"b-1-py3-none-any.whl": b"b", "a-1-py3-none-any.whl": b"a"}, b"cfg: 1\n", constraints)
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert sorted(archive.namelist()) == sorted(
        ["pipeline.yaml", f"{mb.WHEELHOUSE}/a-1-py3-none-any.whl", f"{mb.WHEELHOUSE}/b-1-py3-none-any.whl",
         f"{mb.WHEELHOUSE}/{constraints.name}"]
    )  # fmt: skip
    assert archive.read(f"{mb.WHEELHOUSE}/{constraints.name}") == constraints.read_bytes(), "MWAA's file, verbatim"
    with pytest.raises(mb.BundleError, match=r"would carry \['wheels/statistics.py'\]"):
        mb.plugins_zip({"statistics.py": b"ANSWER = 42\n"}, b"cfg: 1\n", constraints)
    monkeypatch.setattr(mb, "PLUGINS_ZIP_LIMIT", len(content) - 1)
    with pytest.raises(mb.BundleError, match=r"over the .* MWAA recommends"):
        mb.plugins_zip({"b-1-py3-none-any.whl": b"b", "a-1-py3-none-any.whl": b"a"}, b"cfg: 1\n", constraints)


@pytest.fixture
def offline_bundle(tmp_path, monkeypatch):
    """An unpacked offline bundle: app needs dep (shipped) and base (in MWAA's image, stood in for by a stub)."""
    bundle, plugins, work = tmp_path / "bundle", tmp_path / "plugins", tmp_path / "work"
    for folder in (bundle, plugins / mb.WHEELHOUSE, work):
        folder.mkdir(parents=True)
    fake_wheel(plugins / mb.WHEELHOUSE, "app", "1.0", ("dep>=2", "base"))
    fake_wheel(plugins / mb.WHEELHOUSE, "dep", "2.0", ("base>=1",))
    (plugins / mb.WHEELHOUSE / "constraints.txt").write_text("dep==2.0\n")
    (bundle / "plugins.zip").write_bytes(b"zip")
    wheelhouse = f"{mb.MWAA_PLUGINS_DIR}/{mb.WHEELHOUSE}"
    (bundle / "requirements.txt").write_text(
        f"# offline\n--constraint {wheelhouse}/constraints.txt\n--find-links {wheelhouse}\n--no-index\napp==1.0\n"
    )
    monkeypatch.setattr(mwaa_check, "resolve_pins", lambda *args: {"base": "1.5", "apache-airflow": "3.3.1"})
    uv = UV if Path(UV).exists() else "uv"
    return uv, work, bundle, plugins, mwaa_check.local_requirements(bundle, work)


def test_the_offline_proof_resolves_from_the_wheels_and_the_image(offline_bundle):
    figures = mwaa_check.prove_offline(*offline_bundle)
    assert figures == {"resolved": 3, "from_wheels": 2, "from_image": 1, "wheels": 2, "zip_bytes": 3}


def test_the_offline_proof_fails_naming_a_wheel_missing_from_plugins_zip(offline_bundle):
    uv, work, bundle, plugins, requirements = offline_bundle
    next((plugins / mb.WHEELHOUSE).glob("dep-*.whl")).unlink()
    with pytest.raises(mwaa_check.CheckFailed, match=r"(?s)does not resolve offline.*dep was not found"):
        mwaa_check.prove_offline(uv, work, bundle, plugins, requirements)


def test_the_offline_proof_refuses_an_index_or_paths_outside_plugins_zip(offline_bundle):
    uv, work, bundle, plugins, requirements = offline_bundle
    text = (bundle / "requirements.txt").read_text()
    (bundle / "requirements.txt").write_text(text.replace("--no-index\n", ""))
    with pytest.raises(mwaa_check.CheckFailed, match="lacks --no-index"):
        mwaa_check.prove_offline(uv, work, bundle, plugins, requirements)
    (bundle / "requirements.txt").write_text(text.replace(f"{mb.MWAA_PLUGINS_DIR}/{mb.WHEELHOUSE}/constraints.txt",
                                                          "https://example.invalid/c.txt"))  # fmt: skip
    with pytest.raises(mwaa_check.CheckFailed, match=r"--constraint https://example\.invalid/c\.txt is not in"):
        mwaa_check.prove_offline(uv, work, bundle, plugins, requirements)
    (plugins / mb.WHEELHOUSE / "constraints.txt").unlink()
    (bundle / "requirements.txt").write_text(text)
    with pytest.raises(mwaa_check.CheckFailed, match=r"is not in plugins\.zip; rebuild"):
        mwaa_check.prove_offline(uv, work, bundle, plugins, requirements)


def test_a_stub_wheel_names_the_package_and_version_and_nothing_else():
    filename, content = mwaa_check.stub_wheel("flask-sqlalchemy", "3.1.1")
    assert filename == "flask_sqlalchemy-3.1.1-py3-none-any.whl"
    names = zipfile.ZipFile(io.BytesIO(content)).namelist()
    assert all(n.startswith("flask_sqlalchemy-3.1.1.dist-info/") for n in names), "metadata only, no module"
