"""The environments: one production version, the Airflow lock at MWAA's pins, job runtimes apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlops_tools import mwaa_constraints as mc

ROOT = Path(__file__).resolve().parents[2]


def test_constraint_copies_are_verbatim():
    mc.verify_checksums()


def test_an_edited_constraints_copy_is_refused(tmp_path):
    for name in ("SHA256SUMS", "constraints-3.3.1-python3.12.txt", "essential-constraints-3.3.1.txt"):
        (tmp_path / name).write_bytes((mc.MWAA_DIR / name).read_bytes())
    with (tmp_path / "constraints-3.3.1-python3.12.txt").open("a") as handle:
        handle.write("pandas==2.0.0\n")
    with pytest.raises(mc.ConstraintsError, match=r"differs from MWAA.s copy.*git checkout infra/mwaa"):
        mc.verify_checksums(tmp_path)


def test_every_pin_of_the_airflow_lock_equals_mwaas_but_the_python311_overrides():
    locked = mc.parse_pins((ROOT / "requirements.lock").read_text())
    mwaa = mc.mwaa_pins()
    shared = set(locked) & set(mwaa)
    assert len(shared) > 100, "the Airflow lock should share most of MWAA's packages"
    assert mc.pin_mismatches(locked, mwaa, mc.overrides()) == []
    assert locked["apache-airflow"] == mc.read_versions().airflow


def test_the_overrides_are_only_the_pins_python_312_needs():
    overrides = mc.overrides()
    assert set(overrides) == {"numpy", "scipy"}, "each override must say why MWAA's pin cannot install on 3.11"
    mwaa = mc.mwaa_pins()
    assert all(overrides[name] != mwaa[name] for name in overrides)


def test_pin_mismatches_names_the_package_and_both_versions():
    problems = mc.pin_mismatches(
        {"pandas": "2.3.3", "numpy": "2.4.6"}, {"pandas": "3.0.5", "numpy": "2.5.1"}, {"numpy": "2.4.6"}
    )
    assert problems == ["pandas==2.3.3 but MWAA's pin is pandas==3.0.5"]


def test_python311_constraints_apply_only_the_overrides():
    text = mc.constraints_text("3.11")
    pins = mc.parse_pins(text)
    assert pins["numpy"] == "2.4.6" and pins["scipy"] == "1.17.1"
    assert pins["pandas"] == mc.mwaa_pins()["pandas"]
    assert mc.parse_pins(mc.constraints_text("3.12")) == mc.mwaa_pins()
    with pytest.raises(mc.ConstraintsError, match=r"no overrides for Python 3\.10"):
        mc.constraints_text("3.10")


def test_one_production_version_everywhere():
    versions = mc.read_versions()
    assert (versions.airflow, versions.python) == ("3.3.1", "3.12")
    assert re.search(
        rf"^apache-airflow=={re.escape(versions.airflow)}\b", (ROOT / "requirements.txt").read_text(), re.M
    )
    assert versions.constraints_file.exists() and versions.essential_file.exists()
    mwaa = mc.mwaa_pins()
    for provider in ("apache-airflow-providers-amazon", "apache-airflow-providers-standard"):
        pinned = re.search(rf"^{provider}==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
        assert pinned and pinned.group(1) == mwaa[provider], f"{provider} must be MWAA's {mwaa[provider]}"
    for doc in ("README.md", "infra/README.md"):
        assert (
            f"MWAA {versions.airflow}" in (ROOT / doc).read_text()
            or f"Airflow {versions.airflow}" in (ROOT / doc).read_text()
        ), f"{doc} does not say which MWAA version is supported"


def test_job_runtimes_are_separate_locked_environments():
    airflow = mc.parse_pins((ROOT / "requirements.lock").read_text())
    for heavy in (
        "pyspark",
        "great-expectations",
        "lightgbm",
        "onnxruntime",
        "skl2onnx",
        "matplotlib",
        "sagemaker-core",
    ):
        assert heavy not in airflow, f"{heavy} belongs to a job runtime or tool environment, not the Airflow one"
    glue = mc.parse_pins((ROOT / "envs" / "glue" / "requirements.lock").read_text())
    assert glue["pyspark"].startswith("3.5.") and glue["pandas"].startswith("2.2.")
    sagemaker = mc.parse_pins((ROOT / "envs" / "sagemaker" / "requirements.lock").read_text())
    assert {"scikit-learn", "lightgbm", "onnxruntime"} <= set(sagemaker)
    assert "apache-airflow" not in glue and "apache-airflow" not in sagemaker


def test_framework_images_come_from_the_resolved_table_not_the_sdk():
    from mlops.aws.framework_images import FrameworkImageError, framework_image_uri

    uri = framework_image_uri("1.9-0", "eu-west-1", "training")
    assert uri.endswith(".dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3")
    assert framework_image_uri("1.2-1", "us-east-1", "inference").endswith("sagemaker-scikit-learn:1.2-1-cpu-py3")
    with pytest.raises(FrameworkImageError, match=r"no sklearn 9\.9-9 training image for region eu-west-1"):
        framework_image_uri("9.9-9", "eu-west-1")
