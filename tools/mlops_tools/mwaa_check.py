"""Check that the MWAA bundle installs and imports clean, as far as this machine can tell.

    python -m mlops_tools.mwaa_check --bundle .mlops/mwaa --work .mlops/mwaa-check   # make mwaa-check

1. **Resolve for MWAA.** The bundle's requirements, with Airflow itself, resolve for Python 3.12
   on x86_64 Linux against MWAA's constraints and essential constraints (``uv pip compile
   --python-version 3.12 --python-platform x86_64-manylinux_2_28``), and every resolved package
   MWAA pins is at MWAA's pin.
2. **Resolve offline, as MWAA's start-up pip must** (offline bundles, ``--no-index`` in
   requirements.txt): the requirements resolve for Python 3.12 / x86_64 with ``--no-index``
   against only the wheels in ``plugins.zip``, under the constraints file it ships, plus
   metadata-only stand-ins for the packages of MWAA's image (Airflow's own closure under MWAA's
   constraints). A wheel missing from the zip fails here, naming the package; so does a
   ``--constraint`` or ``--find-links`` that points outside the unpacked plugins folder, and a
   ``plugins.zip`` over the size MWAA recommends.
3. **Install fresh, as MWAA would.** ``plugins.zip`` is unpacked into a plugins folder; a new
   Python 3.11 environment gets Airflow and the bundle's requirements from there
   (``--find-links``), under MWAA's pins with only the Python 3.11 overrides; the tools the
   aws wiring tests need are added under the same constraints, and every bundle pin is
   verified installed at its version afterwards.
4. **Load and parse, as MWAA does** (:func:`inside`, run with that environment's Python and the
   project's sources off ``sys.path``): Airflow's plugin manager loads the plugins folder and
   the entry-point plugins; ``requests``, ``statistics`` and ``schema`` are still the real
   modules; no module comes from the plugins folder; every bundled DAG parses with
   ``MLOPS_TARGET=aws``.
5. **Wire.** The aws-target wiring tests against a moto server pass in that environment.

What this cannot show: MWAA's own pip run at environment start (step 2 is the same resolution,
by uv instead of pip), the exact package set of MWAA's image beyond Airflow's closure, and a
Python 3.12 interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

from mlops_tools.mwaa_bundle import (
    MWAA_PLATFORM,
    MWAA_PLUGINS_DIR,
    PLUGINS_ZIP_LIMIT,
    WHEELHOUSE,
    BundleError,
    deterministic_zip,
    project_metadata,
    resolve_pins,
)
from mlops_tools.mwaa_constraints import (
    PROJECT_ROOT,
    canonical,
    constraints_text,
    mwaa_pins,
    parse_pins,
    read_versions,
)

#: What the aws wiring tests import besides the bundle (test tools and the local stand-ins that
#: produce the jobs' outputs for moto); installed under MWAA's constraints, never shipped.
WIRING_TEST_TOOLS = ("pytest", "pytest-timeout", "moto[server]", "duckdb==1.4.4", "sqlglot", "sqlalchemy", "pyarrow",
                     "pandas", "principalmapper")  # fmt: skip
#: The wiring tests, then the IAM coverage test that evaluates the calls they recorded against infra/cfn
#: (same session: tests/aws/conftest.py orders it last). `make test` runs them here only.
WIRING_TESTS = ("tests/aws/test_wiring_moto.py", "tests/aws/test_wiring_moto_iam.py")
SHADOW_CANARIES = ("requests", "statistics", "schema")
PLACEHOLDERS = {  # what startup.sh would map from the environment's mlops.* options
    "MLOPS__AWS__DMS_REPLICATION_TASK_ARN": "arn:aws:dms:eu-west-1:123456789012:task:MWAACHECK",
    "MLOPS__TRAINING__ROLE_ARN": "arn:aws:iam::123456789012:role/mwaa-check-sagemaker",
}


class CheckFailed(RuntimeError):
    """One of the checks failed; the message says which and why."""


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(command: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``command``; raise CheckFailed with its output when it fails."""
    result = subprocess.run(list(command), capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise CheckFailed(f"`{' '.join(command[:6])} ...` failed:\n{(result.stderr or result.stdout)[-4000:]}")
    return result


def local_requirements(bundle: Path, work: Path) -> Path:
    """The bundle's requirements with MWAA's URL/path options removed (they are passed locally instead)."""
    lines = [
        line
        for line in (bundle / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "--constraint", "--find-links", "--no-index"))
    ]
    path = work / "requirements.local.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def unpack_plugins(bundle: Path, work: Path) -> Path:
    """``plugins.zip`` unpacked into a fresh plugins folder, as MWAA unpacks it."""
    plugins = work / "plugins"
    shutil.rmtree(plugins, ignore_errors=True)
    with zipfile.ZipFile(bundle / "plugins.zip") as archive:
        archive.extractall(plugins)
    return plugins


def requirement_options(bundle: Path) -> dict[str, str]:
    """The pip options of the bundle's requirements.txt (``--constraint``, ``--find-links``, ``--no-index``)."""
    options = {}
    for line in (bundle / "requirements.txt").read_text().splitlines():
        if line.startswith("--"):
            key, _, value = line.partition(" ")
            options[key] = value.strip().strip('"')
    return options


def in_plugins(path: str, plugins: Path, option: str) -> Path:
    """Where an MWAA plugins-folder path of requirements.txt lies in the unpacked ``plugins``; raise if outside."""
    if not path.startswith(f"{MWAA_PLUGINS_DIR}/"):
        raise CheckFailed(f"requirements.txt's {option} {path} is not in {MWAA_PLUGINS_DIR}: unreachable offline")
    local = plugins / path.removeprefix(f"{MWAA_PLUGINS_DIR}/")
    if not local.exists():
        raise CheckFailed(f"requirements.txt's {option} {path} is not in plugins.zip; rebuild with `make mwaa-bundle`")
    return local


def stub_wheel(name: str, version: str) -> tuple[str, bytes]:
    """A metadata-only wheel standing for a package MWAA's image already holds (no files, no dependencies)."""
    dist = f"{name.replace('-', '_')}-{version}"
    files = {
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist}.dist-info/RECORD"] = "".join(f"{n},,\n" for n in [*files, f"{dist}.dist-info/RECORD"]).encode()
    return f"{dist}-py3-none-any.whl", deterministic_zip(files)


def write_base_image(pins: dict[str, str], folder: Path) -> Path:
    """``folder`` filled with one stand-in wheel per package of MWAA's image."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, version in pins.items():
        filename, content = stub_wheel(name, version)
        (folder / filename).write_bytes(content)
    return folder


def resolve_offline(uv: str, requirements: Path, wheelhouse: Path, constraints: Path, base_image: Path) -> str:
    """``uv pip compile --no-index`` for MWAA's Python/platform from the wheelhouse and the image's stand-ins."""
    result = subprocess.run(
        [uv, "pip", "compile", "--quiet", "--no-cache", "--no-index", "--find-links", str(wheelhouse),
         "--find-links", str(base_image), "--python-version", read_versions().python,
         "--python-platform", MWAA_PLATFORM, "-c", str(constraints), "--no-header", "--no-annotate",
         str(requirements)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise CheckFailed(
            "requirements.txt does not resolve offline from the wheels in plugins.zip (MWAA's start-up pip would "
            f"fail the same way); rebuild with `make mwaa-bundle`:\n{result.stderr.strip()[-3000:]}"
        )
    return result.stdout


def prove_offline(uv: str, work: Path, bundle: Path, plugins: Path, requirements: Path) -> dict[str, int]:
    """Resolve the offline requirements from plugins.zip alone; return the figures (raise on any gap)."""
    options = requirement_options(bundle)
    if "--no-index" not in options:
        raise CheckFailed("requirements.txt lacks --no-index: MWAA would reach for PyPI, which network.yaml cannot")
    wheelhouse = in_plugins(options.get("--find-links", ""), plugins, "--find-links")
    constraints = in_plugins(options.get("--constraint", ""), plugins, "--constraint")
    versions = read_versions()
    try:
        image = resolve_pins(uv, [f"apache-airflow=={versions.airflow}"], work, versions)
    except BundleError as exc:
        raise CheckFailed(str(exc)) from None
    resolved = parse_pins(resolve_offline(uv, requirements, wheelhouse, constraints,
                                          write_base_image(image, work / "base-image")))  # fmt: skip
    size = (bundle / "plugins.zip").stat().st_size
    if size > PLUGINS_ZIP_LIMIT:
        raise CheckFailed(f"plugins.zip is {size} bytes, over the {PLUGINS_ZIP_LIMIT} bytes MWAA recommends")
    from_wheels = sum(1 for name in resolved if name not in image)
    return {"resolved": len(resolved), "from_wheels": from_wheels, "from_image": len(resolved) - from_wheels,
            "wheels": len(list(wheelhouse.glob("*.whl"))), "zip_bytes": size}  # fmt: skip


def resolve_for_mwaa(uv: str, work: Path, requirements: Path, plugins: Path) -> dict[str, str]:
    """Resolve for MWAA's Python and platform; return the pins; raise on conflicts or drifted pins."""
    versions = read_versions()
    resolved = work / f"resolved-python{versions.python}.txt"
    airflow = work / "airflow.txt"  # MWAA's image: Airflow itself, which the bundle must fit
    airflow.write_text(f"apache-airflow=={versions.airflow}\n")
    run([uv, "pip", "compile", "--quiet", "--python-version", versions.python,
         "--python-platform", "x86_64-manylinux_2_28", "-c", str(versions.constraints_file),
         "-c", str(versions.essential_file), "--find-links", str(plugins / WHEELHOUSE), "--no-header", "--no-annotate",
         "-o", str(resolved), str(airflow), str(requirements)])  # fmt: skip
    pins = parse_pins(resolved.read_text())
    mwaa = mwaa_pins(versions)
    drifted = sorted(
        f"{name}=={pins[name]} (MWAA: {mwaa[name]})" for name in pins if name in mwaa and mwaa[name] != pins[name]
    )
    if drifted:
        raise CheckFailed(f"resolved pins differ from MWAA's: {', '.join(drifted)}")
    return pins


def install_environment(uv: str, work: Path, requirements: Path, plugins: Path) -> Path:
    """A fresh Python 3.11 environment with Airflow, the bundle and the wiring-test tools; return its python."""
    versions = read_versions()
    constraints = work / "constraints-python3.11.txt"
    constraints.write_text(constraints_text("3.11", versions))
    venv = work / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    run([uv, "venv", "--quiet", "-p", "3.11", str(venv)])
    python = str(venv / "bin" / "python")
    wheelhouse = plugins / WHEELHOUSE
    project = canonical(project_metadata()["name"])  # the project: always this build, never one uv cached earlier
    # --compile-bytecode: the wiring tests' processes import from .pyc files (MWAA's image ships them too)
    run([uv, "pip", "install", "--quiet", "--compile-bytecode", "-p", python, "-c", str(constraints),
         "--find-links", str(wheelhouse), "--refresh-package", project, "--reinstall-package", project,
         f"apache-airflow=={versions.airflow}", "-r", str(requirements), *WIRING_TEST_TOOLS])  # fmt: skip
    installed = parse_pins(run([uv, "pip", "freeze", "-p", python]).stdout)
    wanted = parse_pins(requirements.read_text())
    missing = sorted(f"{n}=={v} (installed: {installed.get(n)})" for n, v in wanted.items() if installed.get(n) != v)
    if missing:
        raise CheckFailed(f"the bundle's pins are not what got installed: {', '.join(missing)}")
    return python


def check_environment(python: str, bundle: Path, plugins: Path, work: Path) -> dict[str, object]:
    """Run :func:`inside` with the fresh environment's Python; return its report."""
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH" and not key.startswith("MLOPS__")}
    env.update(PLACEHOLDERS)
    env.update(
        PYTHONPATH=str(PROJECT_ROOT / "tools"),  # only the check itself; mlops comes from the installed wheel
        AIRFLOW_HOME=str(home / "airflow"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(plugins),
        AIRFLOW__CORE__DAGS_FOLDER=str(bundle / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        MLOPS_TARGET="aws",
        MLOPS_CONFIG=str(plugins / "pipeline.yaml"),
        MLOPS_HOME=str(home / "mlops"),
    )
    result = run([python, "-m", "mlops_tools.mwaa_check", "--inside", "--bundle", str(bundle)], env=env, cwd=work)
    return json.loads(result.stdout.strip().splitlines()[-1])


def inside(bundle: Path) -> dict[str, object]:
    """In the fresh environment: load plugins as Airflow does, check for shadowing, parse every DAG."""
    import importlib

    from airflow import plugins_manager
    from airflow.dag_processing.dagbag import DagBag

    plugins_folder = Path(os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"]).resolve()
    plugins_manager.ensure_plugins_loaded()
    plugin_errors = plugins_manager.get_import_errors()
    import mlops
    import mlops_airflow

    problems = [f"plugin import error {path}: {error}" for path, error in plugin_errors.items()]
    for package in (mlops, mlops_airflow):
        if Path(sys.prefix).resolve() not in Path(package.__file__).resolve().parents:
            problems.append(f"{package.__name__} came from {package.__file__}, not the wheel installed in {sys.prefix}")
    for name in SHADOW_CANARIES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue  # not installed on MWAA either; what matters is that nothing took its name
        if plugins_folder in Path(getattr(module, "__file__", "") or "/").resolve().parents:
            problems.append(f"`{name}` is shadowed by {module.__file__}")
    shadowing = sorted(
        name for name, module in list(sys.modules.items())
        if plugins_folder in Path(getattr(module, "__file__", None) or "/").resolve().parents
    )  # fmt: skip
    problems += [f"module `{name}` was imported from the plugins folder" for name in shadowing]
    dagbag = DagBag(dag_folder=str(bundle / "dags"))
    problems += [f"DAG import error {path}: {error.splitlines()[-1]}" for path, error in dagbag.import_errors.items()]
    return {"dags": sorted(dagbag.dag_ids), "plugins": [p["name"] for p in plugins_manager.get_plugin_info()],
            "problems": problems}  # fmt: skip


def run_wiring_tests(python: str, work: Path) -> None:
    """The aws-target wiring tests, with ``mlops`` imported from the bundle's wheel."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH" and not key.startswith("MLOPS__")}
    env.update(
        AIRFLOW_HOME=str(work / "home" / "airflow-tests"),
        MLOPS_HOME=str(work / "home" / "mlops-tests"),
        MLOPS_CONFIG=str(work / "plugins" / "pipeline.yaml"),  # as startup.sh sets it on MWAA
    )
    command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "pythonpath=tools .", *WIRING_TESTS]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=False)
    if result.returncode != 0:
        raise CheckFailed("the aws wiring tests failed in the MWAA environment (output above)")


def check(bundle: Path, work: Path, uv: str, wiring: bool = True) -> None:
    work.mkdir(parents=True, exist_ok=True)
    versions = read_versions()
    step(f"unpacking {bundle / 'plugins.zip'} as MWAA does")
    plugins = unpack_plugins(bundle, work)
    requirements = local_requirements(bundle, work)
    step(
        f"resolving the bundle for MWAA {versions.airflow}: Python {versions.python}, x86_64 Linux, MWAA's constraints"
    )
    pins = resolve_for_mwaa(uv, work, requirements, plugins)
    print(f"    {len(pins)} packages resolved; every one MWAA pins is at MWAA's pin")
    if "--no-index" in requirement_options(bundle):
        step("resolving requirements.txt offline: --no-index, only plugins.zip's wheels and MWAA's image")
        figures = prove_offline(uv, work, bundle, plugins, requirements)
        print(
            f"    {figures['resolved']} packages resolved offline: {figures['from_wheels']} from the "
            f"{figures['wheels']} wheels in plugins.zip, {figures['from_image']} already in MWAA's image; "
            f"plugins.zip {figures['zip_bytes'] / 1e6:.1f} MB (MWAA recommends < {PLUGINS_ZIP_LIMIT / 1e9:.0f} GB)"
        )
    else:
        print("    online bundle (--online): MWAA's start-up pip needs a route to PyPI")
    step("installing a fresh Python 3.11 environment from the bundle (MWAA's pins, 3.11 overrides only)")
    python = install_environment(uv, work, requirements, plugins)
    step("loading the plugins folder and parsing the DAGs with MLOPS_TARGET=aws")
    report = check_environment(python, bundle, plugins, work)
    print(f"    DAGs: {', '.join(report['dags'])}; plugins: {report['plugins'] or 'none'}")  # type: ignore[arg-type]
    if report["problems"]:
        raise CheckFailed("\n".join(f"  - {p}" for p in report["problems"]))  # type: ignore[union-attr]
    print("    no import errors; requests, statistics and schema are the real modules")
    if wiring:
        step("running the aws wiring tests in that environment")
        run_wiring_tests(python, work)
    step("MWAA check passed (not verifiable here: MWAA's own pip install at start-up, a Python 3.12 interpreter)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_tools.mwaa_check", description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True, help="the folder `make mwaa-bundle` wrote")
    parser.add_argument("--work", type=Path, default=PROJECT_ROOT / ".mlops" / "mwaa-check")
    parser.add_argument("--uv", default=os.environ.get("UV", "uv"))
    parser.add_argument("--no-wiring", action="store_true", help="skip the aws wiring tests")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        print(json.dumps(inside(args.bundle.resolve())))
        return 0
    try:
        check(args.bundle.resolve(), args.work.resolve(), args.uv, wiring=not args.no_wiring)
    except CheckFailed as exc:
        print(f"MWAA check FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
