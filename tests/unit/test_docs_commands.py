"""Every ``mlops`` command the docs tell a person to run exists: the DAGs' doc_md and the Markdown files.

The doc_md of mlops_train once said ``mlops registry approve`` while the CLI had ``models approve``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import typer

from mlops.cli import app

ROOT = Path(__file__).resolve().parents[2]
COMMAND = re.compile(r"`(?:\.venv/bin/)?mlops ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")


def documents() -> list[Path]:
    """The DAG files (their docstring is the doc_md) and every tracked Markdown file."""
    tracked = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True)
    return sorted(ROOT.glob("dags/*.py")) + [ROOT / name for name in tracked.stdout.split()]


def cli_commands() -> dict[str, set[str]]:
    """Top-level command -> its subcommands (empty for a plain command)."""
    group = typer.main.get_command(app)
    return {name: set(getattr(command, "commands", {})) for name, command in group.commands.items()}


def test_documented_mlops_commands_exist():
    commands, wrong = cli_commands(), []
    for path in documents():
        for name, sub in COMMAND.findall(path.read_text()):
            if name not in commands or (commands[name] and sub and sub not in commands[name]):
                wrong.append(f"{path.relative_to(ROOT)}: `mlops {name} {sub}`".rstrip())
    assert not wrong, "documented commands the CLI does not have:\n" + "\n".join(wrong)


def test_the_check_sees_a_wrong_command():
    assert COMMAND.findall("approve with `mlops registry approve` locally") == [("registry", "approve")]
    assert "registry" not in cli_commands() and "approve" in cli_commands()["models"]
