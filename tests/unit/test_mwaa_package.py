"""The MWAA package: plugins.zip layout, requirements.txt for MWAA, dry run, upload, startup.sh."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mlops.deploy import mwaa_package as mp

ROOT = Path(__file__).resolve().parents[2]
DEV_AND_LOCAL_ONLY = {"apache-airflow", "pytest", "pytest-timeout", "ruff", "moto", "pyspark", "duckdb", "fastapi"}


@pytest.fixture(scope="module")
def package() -> dict[str, mp.PackageFile]:
    return {f.name: f for f in mp.build_package(ROOT)}


def _requirement_names(requirements_txt: str) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in mp.parse_requirements(requirements_txt)}


def test_package_has_dags_plugins_requirements_and_startup(package):
    assert {"plugins.zip", "requirements.txt", "startup.sh"} <= set(package)
    dag_files = sorted(name for name in package if name.startswith("dags/"))
    expected = sorted(f"dags/{p.name}" for p in (ROOT / "dags").glob("*.py"))
    assert expected, "the project has DAG files"
    assert set(expected) <= set(dag_files)


def test_plugins_zip_carries_plugins_and_mlops_as_top_level_packages(package):
    names = set(zipfile.ZipFile(io.BytesIO(package["plugins.zip"].content)).namelist())
    assert "mlops/__init__.py" in names
    assert "mlops/config.py" in names
    assert "mlops/deploy/mwaa_package.py" in names
    assert "mlops_airflow/__init__.py" in names
    assert "mlops_airflow/targets.py" in names
    assert "pipeline.yaml" in names
    assert not any(n.startswith(("include/", "plugins/")) for n in names), "packages must sit at the zip root"
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_plugins_zip_makes_mlops_importable_from_the_plugins_folder(package, tmp_path):
    """Unzip as MWAA does and import from that folder alone (the project's include/ off the path)."""
    plugins = tmp_path / "plugins"
    zipfile.ZipFile(io.BytesIO(package["plugins.zip"].content)).extractall(plugins)
    code = "import mlops, mlops.config, mlops_airflow; print(mlops.__file__); print(mlops_airflow.__file__)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(plugins)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert all(line.startswith(str(plugins)) for line in out.stdout.split())


def test_plugins_zip_is_deterministic():
    first = {f.name: f.content for f in mp.build_package(ROOT)}
    second = {f.name: f.content for f in mp.build_package(ROOT)}
    assert first["plugins.zip"] == second["plugins.zip"]


def test_requirements_start_with_mwaa_constraints_line(package):
    lines = [line for line in package["requirements.txt"].content.decode().splitlines() if not line.startswith("#")]
    assert lines[0] == (
        '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.0.6/constraints-3.12.txt"'
    )


@pytest.mark.parametrize(("airflow", "python"), [("3.0.6", "3.12"), ("2.10.3", "3.11"), ("2.11.0", "3.11")])
def test_constraints_url_follows_mwaa_python_version(airflow, python):
    assert mp.constraints_url(airflow).endswith(f"/constraints-{airflow}/constraints-{python}.txt")


def test_default_airflow_version_is_one_mwaa_offers():
    """botocore's MWAA model lists the Airflow versions CreateEnvironment accepts."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("mwaa")
    documentation = model.operation_model("CreateEnvironment").input_shape.members["AirflowVersion"].documentation
    assert f"<code>{mp.DEFAULT_AIRFLOW_VERSION}</code>" in documentation
    assert mp.DEFAULT_AIRFLOW_VERSION.startswith("3.")


def test_unknown_airflow_version_is_refused_with_a_fix():
    with pytest.raises(mp.PackagingError, match="MWAA_PYTHON_VERSIONS"):
        mp.constraints_url("3.9.9")


def test_requirements_leave_out_airflow_test_and_local_only_packages(package):
    names = _requirement_names(package["requirements.txt"].content.decode())
    assert not DEV_AND_LOCAL_ONLY & set(names)
    assert {"boto3", "great-expectations", "sagemaker-core", "s3fs"} <= set(names)


def test_every_project_requirement_is_kept_or_excluded_with_a_reason(package):
    project = _requirement_names((ROOT / "requirements.txt").read_text())
    shipped = _requirement_names(package["requirements.txt"].content.decode())
    for name, requirement in project.items():
        if name in mp.EXCLUDED:
            assert name not in shipped
            continue
        assert name in shipped, f"{name} silently dropped"
        if name in mp.DEFER_TO_CONSTRAINTS or name.startswith(mp.PROVIDER_PREFIX):
            assert str(shipped[name].specifier) == "", f"{name} must be left to the constraints file"
        else:
            assert shipped[name].specifier == requirement.specifier
            assert shipped[name].extras == requirement.extras


def test_requirements_parsing_keeps_extras_markers_and_skips_options():
    text = (
        "# comment\n--index-url https://example.invalid\n\n"
        "psycopg[binary]>=3.2   # driver\n"
        "apache-airflow-providers-amazon==9.39.0\n"
        "tomli>=2 ; python_version < '3.11'\n"
        "PyTest>=8\n"
    )
    out = mp.mwaa_requirements(text, "3.0.6").splitlines()
    body = [line for line in out if not line.startswith(("#", "--constraint"))]
    assert body == ["psycopg[binary]>=3.2", "apache-airflow-providers-amazon", 'tomli>=2; python_version < "3.11"']


def test_a_broken_requirement_names_its_line():
    with pytest.raises(mp.PackagingError, match="line 2"):
        mp.parse_requirements("boto3\nnot a === requirement\n")


def test_dry_run_writes_nothing_and_prints_keys(tmp_path, capsys):
    out = tmp_path / "out"
    assert mp.main(["--out", str(out), "--dry-run", "--upload", "s3://artifacts-bucket/mwaa"]) == 0
    assert not out.exists()
    printed = capsys.readouterr().out
    assert "s3://artifacts-bucket/mwaa/plugins.zip" in printed
    assert "s3://artifacts-bucket/mwaa/requirements.txt" in printed
    assert "s3://artifacts-bucket/mwaa/dags/" in printed
    assert "nothing written" in printed


def test_real_run_writes_the_package_and_replaces_stale_dags(tmp_path):
    out = tmp_path / "out"
    (out / "dags").mkdir(parents=True)
    (out / "dags" / "removed_dag.py").write_text("old")
    assert mp.main(["--out", str(out)]) == 0
    assert (out / "plugins.zip").stat().st_size > 0
    assert (out / "requirements.txt").read_text().count("--constraint") == 1
    assert (out / "startup.sh").exists()
    assert not (out / "dags" / "removed_dag.py").exists()
    assert sorted(p.name for p in (out / "dags").glob("*.py")) == sorted(p.name for p in (ROOT / "dags").glob("*.py"))


def test_bad_upload_uri_fails_cleanly(tmp_path, capsys):
    assert mp.main(["--out", str(tmp_path / "o"), "--upload", "bucket/prefix"]) == 2
    assert "s3://bucket/prefix" in capsys.readouterr().err


class _FakeS3:
    """Records put/delete calls; lists one stale DAG object under the prefix."""

    def __init__(self) -> None:
        self.put: dict[str, bytes] = {}
        self.deleted: list[str] = []

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> dict[str, str]:
        self.put[Key] = Body
        return {"VersionId": f"v-{len(self.put)}"}

    def get_paginator(self, name: str) -> _FakeS3:
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str):
        yield {"Contents": [{"Key": key} for key in [*self.put, f"{Prefix}stale_dag.py"] if key.startswith(Prefix)]}

    def delete_object(self, Bucket: str, Key: str) -> None:
        self.deleted.append(Key)


def test_upload_puts_every_file_and_prunes_stale_dags(package):
    s3 = _FakeS3()
    versions = mp.upload_package(list(package.values()), "artifacts-bucket", "mwaa", s3_client=s3)
    assert set(s3.put) == {f"mwaa/{name}" for name in package}
    assert s3.deleted == ["mwaa/dags/stale_dag.py"]
    hint = mp.update_environment_hint(versions, "mwaa", "mlops-dev")
    assert hint.startswith("aws mwaa update-environment --name mlops-dev --plugins-s3-object-version v-")
    assert "--requirements-s3-object-version" in hint and "--startup-script-s3-object-version" in hint


def test_startup_script_maps_mwaa_options_to_pipeline_overrides(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "AIRFLOW_HOME": "/usr/local/airflow",
        "AIRFLOW__MLOPS__TARGET": "aws",
        "AIRFLOW__MLOPS__LAKE_BUCKET": "mlops-lake-dev-123456789012-eu-west-1",
        "AIRFLOW__MLOPS__DMS_REPLICATION_TASK_ARN": "arn:aws:dms:eu-west-1:123456789012:task:mlops-dev-cdc",
        "AIRFLOW__MLOPS__SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/mlops-dev-sagemaker-execution",
    }
    script = f". {mp.STARTUP_SCRIPT} && env"
    out = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    exported = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert exported["MLOPS_TARGET"] == "aws"
    assert exported["MLOPS_CONFIG"] == "/usr/local/airflow/plugins/pipeline.yaml"
    assert exported["MLOPS__AWS__LAKE_BUCKET"] == env["AIRFLOW__MLOPS__LAKE_BUCKET"]
    assert exported["MLOPS__AWS__DMS_REPLICATION_TASK_ARN"] == env["AIRFLOW__MLOPS__DMS_REPLICATION_TASK_ARN"]
    assert exported["MLOPS__TRAINING__ROLE_ARN"] == env["AIRFLOW__MLOPS__SAGEMAKER_ROLE_ARN"]
    assert "MLOPS__AWS__ARTIFACTS_BUCKET" not in exported, "unset options must not become empty overrides"


def test_startup_overrides_are_valid_pipeline_config(tmp_path):
    """The variables startup.sh exports load through the real config validator."""
    from mlops.config import load_config

    environ = {
        "MLOPS__AWS__LAKE_BUCKET": "mlops-lake-dev-123456789012-eu-west-1",
        "MLOPS__AWS__DMS_REPLICATION_TASK_ARN": "arn:aws:dms:eu-west-1:123456789012:task:mlops-dev-cdc",
        "MLOPS__SERVING__ROLLBACK_ALARMS": "[mlops-dev-endpoint-5xx,mlops-dev-endpoint-model-latency]",
        "MLOPS__REPORTING__DYNAMODB_TABLE": "mlops-dev-realtime-metrics",
        "MLOPS__REPORTING__EVENTS_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/mlops-dev-prediction-events",
    }
    config = load_config(ROOT / "include" / "pipeline.yaml", environ=environ)
    assert config.aws.lake_bucket == environ["MLOPS__AWS__LAKE_BUCKET"]
    assert config.aws.dms_replication_task_arn == environ["MLOPS__AWS__DMS_REPLICATION_TASK_ARN"]
    assert config.serving.rollback_alarms == ("mlops-dev-endpoint-5xx", "mlops-dev-endpoint-model-latency")
    assert config.reporting.dynamodb_table == environ["MLOPS__REPORTING__DYNAMODB_TABLE"]
    assert config.reporting.events_queue_url == environ["MLOPS__REPORTING__EVENTS_QUEUE_URL"]
