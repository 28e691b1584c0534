"""MWAA's constraint files, the one production version, and the Python 3.11 variant used here.

``infra/mwaa/`` holds verbatim copies of the constraint files Amazon MWAA installs an
environment's requirements with (``SHA256SUMS`` proves they are unedited), ``versions.env``
(the one place that names the MWAA Airflow and Python versions) and
``python311-overrides.txt``: the few MWAA pins that need Python >= 3.12, replaced by the
newest release that supports 3.11, because no 3.12 interpreter can be installed on the
development machines. Everything else the local Airflow environment shares with MWAA is
pinned exactly as MWAA pins it; :func:`pin_mismatches` is what the tests use to prove it.

Standard library only: ``make lock`` runs this before any virtualenv exists::

    python3 tools/mlops_tools/mwaa_constraints.py --python 3.11 --out .mlops/constraints.txt
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MWAA_DIR = PROJECT_ROOT / "infra" / "mwaa"
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#]+)")


class ConstraintsError(ValueError):
    """The MWAA constraint files are missing, edited or inconsistent; the message names the fix."""


def canonical(name: str) -> str:
    """PEP 503 normalised project name (``Flask_SQLAlchemy`` -> ``flask-sqlalchemy``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class MwaaVersions:
    """The production target: MWAA's Airflow version and the Python it runs."""

    airflow: str
    python: str

    @property
    def constraints_file(self) -> Path:
        return MWAA_DIR / f"constraints-{self.airflow}-python{self.python}.txt"

    @property
    def essential_file(self) -> Path:
        return MWAA_DIR / f"essential-constraints-{self.airflow}.txt"

    @property
    def constraints_url(self) -> str:
        """Apache Airflow's constraints URL MWAA's requirements.txt names (a text line; never fetched here)."""
        return (
            f"https://raw.githubusercontent.com/apache/airflow/constraints-{self.airflow}/constraints-{self.python}.txt"
        )


def read_versions(mwaa_dir: Path = MWAA_DIR) -> MwaaVersions:
    """``versions.env`` as :class:`MwaaVersions`; a missing key raises naming the file."""
    values: dict[str, str] = {}
    for line in (mwaa_dir / "versions.env").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    try:
        return MwaaVersions(airflow=values["MWAA_AIRFLOW_VERSION"], python=values["MWAA_PYTHON_VERSION"])
    except KeyError as missing:
        raise ConstraintsError(f"{mwaa_dir / 'versions.env'} lacks {missing}; restore it from git") from None


def parse_pins(text: str) -> dict[str, str]:
    """``canonical name -> version`` of every ``name==version`` line (comments, options and blanks skipped)."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        match = _PIN.match(line)
        if match and not line.lstrip().startswith(("#", "-")):
            pins[canonical(match.group(1))] = match.group(3)
    return pins


def verify_checksums(mwaa_dir: Path = MWAA_DIR) -> None:
    """Raise unless every file listed in ``SHA256SUMS`` has its recorded digest (the copies are verbatim)."""
    for line in (mwaa_dir / "SHA256SUMS").read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        actual = hashlib.sha256((mwaa_dir / name.strip()).read_bytes()).hexdigest()
        if actual != digest:
            raise ConstraintsError(
                f"{mwaa_dir / name.strip()} differs from MWAA's copy (sha256 {actual}, expected {digest}); "
                "restore it with `git checkout infra/mwaa/`"
            )


def overrides(mwaa_dir: Path = MWAA_DIR) -> dict[str, str]:
    """The Python 3.11 overrides: ``canonical name -> version`` replacing MWAA's pin."""
    return parse_pins((mwaa_dir / "python311-overrides.txt").read_text())


def mwaa_pins(versions: MwaaVersions | None = None) -> dict[str, str]:
    """Every pin MWAA applies: the Airflow constraints plus the essential (non-overridable) ones."""
    versions = versions or read_versions()
    pins = parse_pins(versions.constraints_file.read_text())
    for name, version in parse_pins(versions.essential_file.read_text()).items():
        if pins.setdefault(name, version) != version:
            raise ConstraintsError(f"essential constraint {name}=={version} contradicts the constraints file")
    return pins


def constraints_text(python: str, versions: MwaaVersions | None = None) -> str:
    """The constraints for ``python``: MWAA's own on its Python, with the 3.11 overrides applied on 3.11."""
    versions = versions or read_versions()
    verify_checksums()
    pins = mwaa_pins(versions)
    header = [f"# MWAA Airflow {versions.airflow} constraints (infra/mwaa/), for Python {python}."]
    if python != versions.python:
        if python != "3.11":
            raise ConstraintsError(f"no overrides for Python {python}; MWAA runs {versions.python}, this machine 3.11")
        relaxed = overrides()
        unknown = sorted(set(relaxed) - set(pins))
        if unknown:
            raise ConstraintsError(f"python311-overrides.txt names {unknown}, which MWAA does not pin; remove them")
        pins.update(relaxed)
        header.append(f"# Relaxed for Python 3.11 (infra/mwaa/python311-overrides.txt): {', '.join(sorted(relaxed))}")
    return "\n".join([*header, *(f"{name}=={version}" for name, version in sorted(pins.items()))]) + "\n"


def pin_mismatches(
    locked: Mapping[str, str], mwaa: Mapping[str, str], allowed: Mapping[str, str] | None = None
) -> list[str]:
    """Each package both pin where ``locked`` differs from MWAA (an allowed override must match exactly)."""
    allowed = allowed or {}
    problems = []
    for name in sorted(set(locked) & set(mwaa)):
        expected = allowed.get(name, mwaa[name])
        if locked[name] != expected:
            why = "the Python 3.11 override" if name in allowed else "MWAA's pin"
            problems.append(f"{name}=={locked[name]} but {why} is {name}=={expected}")
    return problems


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write MWAA's constraints for a Python version.")
    parser.add_argument("--python", required=True, help="3.12 (MWAA's own) or 3.11 (with the overrides)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        text = constraints_text(args.python)
    except ConstraintsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
