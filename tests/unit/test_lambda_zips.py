"""The Lambda packages carry their own modules and locked third-party code, and run from the zip alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from io import BytesIO

import pytest

from mlops_tools import lambda_zips


def _uv() -> str:
    """uv as the Makefile finds it: on PATH, else the one it installed into .mlops/tools."""
    return shutil.which("uv") or str(lambda_zips.PROJECT_ROOT / ".mlops" / "tools" / "bin" / "uv")


def test_every_package_names_existing_modules_and_locked_requirements():
    for package in lambda_zips.PACKAGES.values():
        files = lambda_zips.module_files(package)
        module = package.handler.rsplit(".", 1)[0].replace(".", "/") + ".py"
        assert module in files, f"{package.name}: its handler module {module} is not in the zip"
        for name in package.requirements:
            assert lambda_zips.locked_pin(name).startswith(f"{name}==")


def test_an_unlocked_requirement_names_the_fix(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("boto3==1.0\n")
    with pytest.raises(lambda_zips.LambdaZipError, match=r"not pinned.*make lock"):
        lambda_zips.locked_pin("jsonschema", lock)


@pytest.mark.slow
def test_the_run_api_zip_runs_on_the_standard_library_alone(tmp_path):
    """Built for this interpreter, unpacked, imported with ``python -S`` (no site-packages): the handler
    refuses a bad body with a 400 naming the field, and a conf is validated with the zip's jsonschema."""
    package = lambda_zips.PACKAGES["runs-api"]
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    content = lambda_zips.build(package, _uv(), python_version=version, platform="x86_64-manylinux_2_28")
    assert content == lambda_zips.build(package, _uv(), python_version=version, platform="x86_64-manylinux_2_28")
    with zipfile.ZipFile(BytesIO(content)) as archive:
        names = archive.namelist()
        assert "mlops/runs/handler.py" in names and "jsonschema/__init__.py" in names
        assert not [n for n in names if n.startswith(("airflow/", "pydantic/", "yaml/", "mlops/config"))], names
        archive.extractall(tmp_path / "pkg")
    probe = """
import json, sys
sys.path.insert(0, sys.argv[1])
from mlops.runs.handler import handler
from mlops.runs.params import validate_conf
from mlops.runs.requests import RunRequestError
bad = handler({"httpMethod": "POST", "resource": "/runs", "path": "/runs", "body": "[1]"})
try:
    validate_conf({"map_threshold": 2}, {"map_threshold": {"type": "number", "maximum": 1}}, "mlops_train")
    refused = None
except RunRequestError as exc:
    refused = str(exc)
print(json.dumps({"status": bad["statusCode"], "body": json.loads(bad["body"]), "refused": refused,
                  "jsonschema": sys.modules["jsonschema"].__file__}))
"""
    done = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(tmp_path / "pkg")],
        capture_output=True, text=True, timeout=120, check=False, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == 400 and "body" in json.dumps(report["body"])
    assert report["refused"] and "map_threshold" in report["refused"]
    assert report["jsonschema"].startswith(str(tmp_path / "pkg"))
