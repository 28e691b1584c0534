"""The Astro project skeleton files agree with each other and with the pipeline config.

Covers docker-compose.yaml (validated by docker-compose itself), the Dockerfile,
packages.txt, airflow_settings.yaml, .env.example and the requirements lock. No Docker
engine is needed: `docker-compose config` validates and renders without one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_tools.mwaa_constraints import read_versions

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
AIRFLOW_HOME_IN_IMAGE = "/usr/local/airflow"
AIRFLOW_SERVICE_COMMANDS = ("api-server", "scheduler", "dag-processor", "triggerer")
JAVA_17_PACKAGE = re.compile(r"^(openjdk-17-(jre|jdk)(-headless)?|temurin-17-(jre|jdk))$")


def _docker_compose(*args: str) -> subprocess.CompletedProcess[str]:
    """Run docker-compose on the project's compose file; fail (never skip) when it is missing."""
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail(
            "docker-compose is not installed, so docker-compose.yaml cannot be validated. "
            "Run `make test` (it installs it through scripts/ensure_docker_compose.sh) "
            "or `bash scripts/ensure_docker_compose.sh`.",
            pytrace=False,
        )
    return subprocess.run(
        [exe, "-f", str(COMPOSE_FILE), *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as docker-compose renders it: anchors merged, ${VAR:-default} filled in."""
    result = _docker_compose("config")
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def _command_text(service: dict[str, Any]) -> str:
    command = service.get("command") or ""
    return " ".join(command) if isinstance(command, list) else str(command)


def _service_running(services: dict[str, Any], subcommand: str) -> tuple[str, dict[str, Any]]:
    """The one service whose command is `airflow <subcommand>`."""
    matches = [
        (name, svc)
        for name, svc in services.items()
        if re.search(rf"(^|\s)airflow\s+{re.escape(subcommand)}(\s|$)", _command_text(svc))
    ]
    assert len(matches) == 1, f"expected exactly one service running `airflow {subcommand}`, found {len(matches)}"
    return matches[0]


def _host_ip(port: Any) -> str | None:
    """Host IP of one `ports` entry, short ("127.0.0.1:8080:8080/tcp") or long syntax."""
    if isinstance(port, dict):
        return port.get("host_ip")
    parts = str(port).split("/")[0].split(":")
    return ":".join(parts[:-2]) if len(parts) >= 3 else None


def _mount_pairs(service: dict[str, Any]) -> set[tuple[str, str]]:
    """(source folder name, container target) of each bind mount of a service."""
    pairs = set()
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            source, target = volume.get("source", ""), volume.get("target", "")
        else:
            source, target = [*str(volume).split(":"), ""][:2]
        pairs.add((Path(source).name, target))
    return pairs


# --- docker-compose.yaml ----------------------------------------------------------------


def test_compose_file_is_valid() -> None:
    result = _docker_compose("config", "-q")
    assert result.returncode == 0, f"`docker-compose -f docker-compose.yaml config -q` failed:\n{result.stderr}"


def test_compose_runs_each_airflow_3_component_as_its_own_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for subcommand in AIRFLOW_SERVICE_COMMANDS:
        name, service = _service_running(services, subcommand)
        assert "healthcheck" in service, f"service {name} (airflow {subcommand}) has no healthcheck"


def test_compose_has_an_init_job_that_migrates_the_metadata_db(compose: dict[str, Any]) -> None:
    init_jobs = [svc for svc in compose["services"].values() if "airflow db migrate" in _command_text(svc)]
    assert len(init_jobs) == 1, "expected one init service running `airflow db migrate`"


def test_compose_publishes_ports_on_loopback_only(compose: dict[str, Any]) -> None:
    published = 0
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            published += 1
            assert _host_ip(port) == "127.0.0.1", f"service {name} publishes {port!r} beyond 127.0.0.1"
    assert published, "no service publishes a port; the API server should be on 127.0.0.1:8080"


def test_compose_api_server_is_on_8080_and_is_the_execution_api_host(compose: dict[str, Any]) -> None:
    services = compose["services"]
    name, api_server = _service_running(services, "api-server")
    targets = {
        str(p.get("target") if isinstance(p, dict) else str(p).split("/")[0].split(":")[-1])
        for p in api_server.get("ports", [])
    }
    assert "8080" in targets, f"{name} does not publish container port 8080"
    for svc_name, svc in services.items():
        url = (svc.get("environment") or {}).get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL")
        if url is not None:
            assert url == f"http://{name}:8080/execution/", f"{svc_name}: execution API URL {url!r} is not {name}"


def test_compose_mounts_dags_include_plugins_and_state_into_every_airflow_service(compose: dict[str, Any]) -> None:
    wanted = {(folder, f"{AIRFLOW_HOME_IN_IMAGE}/{folder}") for folder in ("dags", "include", "plugins", ".mlops")}
    for subcommand in AIRFLOW_SERVICE_COMMANDS:
        name, service = _service_running(compose["services"], subcommand)
        missing = wanted - _mount_pairs(service)
        assert not missing, f"service {name} does not mount {sorted(missing)}"
        assert service["environment"].get("MLOPS_HOME") == f"{AIRFLOW_HOME_IN_IMAGE}/.mlops", name


def test_compose_has_a_postgres_source_db_the_pipeline_points_at(compose: dict[str, Any]) -> None:
    services = compose["services"]
    _, scheduler = _service_running(services, "scheduler")
    url = scheduler["environment"]["MLOPS__SOURCE__URL"]
    match = re.match(r"^postgresql\+psycopg://[^@/]+@([^:/]+):5432/(\w+)$", url)
    assert match, f"MLOPS__SOURCE__URL {url!r} is not a passwordless postgresql+psycopg URL"
    host, database = match.groups()
    assert host in services, f"MLOPS__SOURCE__URL points at {host!r}, which is not a compose service"
    assert str(services[host]["image"]).startswith("postgres:"), f"{host} is not a PostgreSQL service"
    assert services[host]["environment"]["POSTGRES_DB"] == database


def test_compose_holds_no_literal_secrets() -> None:
    text = COMPOSE_FILE.read_text()
    for key in (
        "POSTGRES_PASSWORD",
        "AIRFLOW__CORE__FERNET_KEY:",
        "AIRFLOW__API_AUTH__JWT_SECRET:",
        "AWS_SECRET_ACCESS_KEY",
    ):
        assert key not in text, f"docker-compose.yaml sets {key.rstrip(':')}; generate it at run time instead"


# --- Dockerfile and packages.txt --------------------------------------------------------


def test_dockerfile_builds_mwaas_airflow_on_mwaas_python_with_mwaas_pins() -> None:
    text = (ROOT / "Dockerfile").read_text()
    versions = read_versions()
    assert re.search(rf"^ARG AIRFLOW_VERSION={re.escape(versions.airflow)}$", text, flags=re.MULTILINE)
    assert re.search(rf"^ARG PYTHON_VERSION={re.escape(versions.python)}$", text, flags=re.MULTILINE)
    assert re.search(r"^FROM apache/airflow:slim-\$\{AIRFLOW_VERSION\}-python\$\{PYTHON_VERSION\}$", text, re.MULTILINE)
    assert "constraints-${AIRFLOW_VERSION}-python${PYTHON_VERSION}.txt" in text, "install with MWAA's constraints"
    assert "essential-constraints-${AIRFLOW_VERSION}.txt" in text


def test_dockerfile_sets_state_runtimes_and_java() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ENV MLOPS_HOME=/usr/local/airflow/\.mlops$", text, flags=re.MULTILINE)
    assert re.search(r"^ENV MLOPS_RUNTIMES=/opt/mlops/venvs$", text, flags=re.MULTILINE), "job runtimes outside mounts"
    assert re.search(r"^ENV JAVA_HOME=\S+", text, flags=re.MULTILINE)
    for runtime in ("glue", "sagemaker"):
        assert (ROOT / "envs" / runtime / "requirements.lock").exists()
    assert "envs/${runtime}/requirements.lock" in text, "the Dockerfile must install each job runtime from its lock"


def test_packages_txt_installs_java_17_for_spark() -> None:
    packages = [line.strip() for line in (ROOT / "packages.txt").read_text().splitlines()]
    packages = [p for p in packages if p and not p.startswith("#")]
    assert any(JAVA_17_PACKAGE.match(p) for p in packages), f"no Java 17 package in packages.txt: {packages}"


# --- airflow_settings.yaml --------------------------------------------------------------


def test_airflow_settings_has_a_credential_free_aws_default_connection() -> None:
    settings = yaml.safe_load((ROOT / "airflow_settings.yaml").read_text())
    airflow = settings["airflow"]
    assert set(airflow) == {"connections", "variables", "pools"}
    connections = {c["conn_id"]: c for c in airflow["connections"]}
    assert "aws_default" in connections, "airflow_settings.yaml has no aws_default connection"
    assert connections["aws_default"]["conn_type"] == "aws"
    for conn in connections.values():
        assert not conn.get("conn_password"), f"{conn['conn_id']} holds a password; local connections must not"
        extra = conn.get("conn_extra") or {}
        assert not {"aws_access_key_id", "aws_secret_access_key"} & set(extra), f"{conn['conn_id']} holds AWS keys"
    assert connections["source_db"]["conn_type"] == "postgres"


# --- .env.example -----------------------------------------------------------------------


def test_env_example_documents_the_switch_and_every_pipeline_section() -> None:
    text = (ROOT / ".env.example").read_text()
    for name in ("MLOPS_TARGET", "MLOPS_HOME", "MLOPS_CONFIG"):
        assert re.search(rf"^#?\s*{name}=", text, flags=re.MULTILINE), f".env.example does not document {name}"
    pipeline = yaml.safe_load((ROOT / "include" / "pipeline.yaml").read_text())
    missing = [section for section in pipeline if f"MLOPS__{section.upper()}" not in text]
    assert not missing, f".env.example documents no MLOPS__<SECTION> override for: {missing}"


ENV_LINE = re.compile(r"^#?\s*[A-Z][A-Z0-9_]*=")


def test_env_example_has_one_comment_per_variable() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    variables = [(i, line) for i, line in enumerate(lines) if ENV_LINE.match(line)]
    assert len(variables) > 20, "expected .env.example to list the project's variables"
    for i, line in variables:
        above = lines[i - 1] if i else ""
        assert above.startswith("# ") and not ENV_LINE.match(above), (
            f".env.example line {i + 1} ({line!r}) has no comment line of its own above it"
        )
    names = [re.sub(r"^#?\s*", "", line).split("=", 1)[0] for _, line in variables]
    assert len(names) == len(set(names)), f"variables listed twice: {sorted({n for n in names if names.count(n) > 1})}"


# --- requirements -----------------------------------------------------------------------


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_lock_pins_every_top_level_requirement_exactly() -> None:
    top_level = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement and not requirement.startswith("-"):
            top_level.append(_normalise(re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*", requirement).group(0)))
    assert top_level, "requirements.txt lists no packages"
    pinned = {
        _normalise(m.group(1))
        for m in re.finditer(
            r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==\S+", (ROOT / "requirements.lock").read_text(), re.MULTILINE
        )
    }
    missing = sorted(set(top_level) - pinned)
    assert not missing, f"requirements.lock does not pin with == : {missing}; run `make lock`"
