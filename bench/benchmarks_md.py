"""BENCHMARKS.md: each benchmark replaces its own section and leaves every other one alone."""

from __future__ import annotations

import re
from pathlib import Path

PATH = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def write_section(section: str, path: Path = PATH) -> None:
    """Replace the section whose heading is ``section``'s first line, up to the next heading of any level
    (a ``###`` below it is another benchmark's), or append it."""
    heading = section.splitlines()[0]
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    body = section.strip("\n") + "\n\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^##+ |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: body, text, count=1)  # a function: the section's backslashes stay as written
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.write_text(text.rstrip("\n") + "\n")
