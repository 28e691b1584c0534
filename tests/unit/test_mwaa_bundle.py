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
    return {f.name: f for f in mb.build_bundle(ROOT, uv=uv)}


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
    assert len(wheels) == 1 and set(names) == {wheels[0], "pipeline.yaml"}
    wheel = zipfile.ZipFile(io.BytesIO(zipfile.ZipFile(io.BytesIO(bundle["plugins.zip"].content)).read(wheels[0])))
    packages = {n.split("/")[0] for n in wheel.namelist()}
    assert {"mlops", "mlops_airflow"} <= packages
    assert not {"mlops_tools", "tests", "dags"} & packages, "tooling and tests never ship"
    assert "mlops/aws/framework_images.json" in wheel.namelist()


def test_every_requirement_is_pinned_to_mwaas_pin(bundle):
    text = bundle["requirements.txt"].content.decode()
    versions = read_versions()
    assert f'--constraint "{versions.constraints_url}"' in text
    assert f"--find-links {mb.MWAA_PLUGINS_DIR}" in text
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
        '# c\n--constraint "https://x"\n--find-links /usr/local/airflow/plugins\nboto3==1\n'
    )
    path = mwaa_check.local_requirements(tmp_path, tmp_path)
    assert path.read_text() == "boto3==1\n"
