"""Every ``deploy <stack> Key=Value`` line of infra/README.md names a template and parameters it has."""

from __future__ import annotations

import re
from pathlib import Path

from tests.aws.cfn_policies import load_template

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = re.compile(r"^\s*deploy ([a-z-]+)((?: [^#\n]*)?)", re.MULTILINE)


def deploy_lines() -> list[tuple[str, list[str]]]:
    """(stack, parameter names) of every deploy line, continuation lines joined."""
    text = (ROOT / "infra" / "README.md").read_text().replace("\\\n", " ")
    return [(stack, re.findall(r"(?:^| )\[?([A-Z][A-Za-z0-9]+)=", rest)) for stack, rest in DEPLOY.findall(text)]


def test_readme_deploys_existing_stacks_with_existing_parameters():
    lines = deploy_lines()
    stacks = {stack for stack, _ in lines}
    assert {
        "storage",
        "network",
        "iam",
        "data",
        "ml",
        "reporting",
        "audit",
        "mwaa",
        "pipeline",
        "cross-account",
    } <= stacks
    wrong = []
    for stack, names in lines:
        parameters = load_template(f"{stack}.yaml")["Parameters"]
        wrong += [f"deploy {stack} {name}=" for name in names if name not in parameters]
    assert not wrong, "README deploy lines with parameters their template does not have:\n" + "\n".join(wrong)


def test_every_template_without_a_default_gets_its_value_on_some_deploy_line():
    given: dict[str, set[str]] = {}
    for stack, names in deploy_lines():
        given.setdefault(stack, set()).update(names)
    missing = []
    for stack, names in given.items():
        parameters = load_template(f"{stack}.yaml")["Parameters"]
        required = {name for name, spec in parameters.items() if "Default" not in spec} - {"ProjectName", "Environment"}
        missing += [f"{stack}: {name}" for name in sorted(required - names)]
    assert not missing, "parameters without a default that no README deploy line sets:\n" + "\n".join(missing)
