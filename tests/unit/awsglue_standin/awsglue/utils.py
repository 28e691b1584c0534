"""``getResolvedOptions`` as AWS Glue documents and ships it, for tests.

Glue starts a job script with ``sys.argv`` holding the run's ``--KEY value`` arguments plus its
own: ``--JOB_NAME``, ``--JOB_ID``, ``--JOB_RUN_ID``, ``--job-bookmark-option``, ``--TempDir`` and
service flags such as ``--enable-metrics``. ``getResolvedOptions(args, options)`` returns the
named options (each required) plus Glue's own values; unknown arguments are ignored; a missing
option raises :class:`GlueArgumentError`; asking for a name Glue reserves raises RuntimeError.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

#: Names a script may not request: Glue sets them itself (``JOB_NAME`` may be requested).
RESERVED = (
    "job-bookmark-option", "continuation-option", "job-bookmark-from", "job-bookmark-to",
    "JOB_ID", "JOB_RUN_ID", "SECURITY_CONFIGURATION", "encryption-type",
)  # fmt: skip
BOOKMARK_CHOICES = ("job-bookmark-enable", "job-bookmark-disable", "job-bookmark-pause")


class GlueArgumentError(Exception):
    """A required option is missing or an argument is malformed (argparse's message)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise GlueArgumentError(message)


def getResolvedOptions(args: list[str], options: list[str]) -> dict[str, str | None]:
    """The ``options`` (names without ``--``) from ``args`` (``sys.argv``), plus Glue's own arguments."""
    reserved = [name for name in options if name in RESERVED]
    if reserved:
        raise RuntimeError(f"Using reserved arguments --{reserved[0]}")
    parser = _Parser(add_help=False)
    parser.add_argument("--job-bookmark-option", choices=BOOKMARK_CHOICES, default="job-bookmark-disable")
    for name in ("JOB_ID", "JOB_RUN_ID", "SECURITY_CONFIGURATION", "TempDir"):
        parser.add_argument(f"--{name}", required=False)
    if "JOB_NAME" not in options:
        parser.add_argument("--JOB_NAME", required=False)
    for name in options:
        parser.add_argument(f"--{name}", required=True)
    parsed, _unknown = parser.parse_known_args(args[1:])
    return vars(parsed)
