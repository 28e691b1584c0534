"""Glue-style job arguments: ``--KEY value`` pairs, through awsglue's ``getResolvedOptions`` when on Glue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def parse_job_args(
    argv: list[str], required: tuple[str, ...], optional: dict[str, str] | None = None
) -> dict[str, str]:
    """Glue-style ``--KEY value`` pairs -> dict (via awsglue's getResolvedOptions when on Glue).

    ``required`` names must be present (else SystemExit naming them); ``optional`` maps the others
    to their defaults.
    """
    optional = dict(optional or {})
    glue = _glue_resolver()
    if glue is not None:
        return _glue_args(glue, argv, list(required), optional)
    args: dict[str, str] = dict(optional)
    tokens = list(argv[1:])
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("--"):
            raise SystemExit(f"unexpected argument {token!r}; job arguments are --KEY value pairs")
        key, eq, value = token[2:].partition("=")
        args[key] = value if eq else (tokens.pop(0) if tokens and not tokens[0].startswith("--") else "true")
    _require(args, required)
    return args


def _glue_resolver() -> tuple[Callable[[list[str], list[str]], dict[str, Any]], type[Exception]] | None:
    """awsglue's ``getResolvedOptions`` and its error class when the script runs on Glue, else None."""
    try:
        from awsglue.utils import GlueArgumentError, getResolvedOptions  # type: ignore[import-not-found]
    except ImportError:
        return None
    return getResolvedOptions, GlueArgumentError


def _glue_args(
    glue: tuple[Callable[[list[str], list[str]], dict[str, Any]], type[Exception]],
    argv: list[str],
    required: list[str],
    optional: dict[str, str],
) -> dict[str, str]:
    """The job's arguments through getResolvedOptions: every name it asks for is required there,
    so only the optional names present in ``argv`` are asked for; Glue's own values are kept."""
    resolve, glue_error = glue
    present = [name for name in optional if any(a == f"--{name}" or a.startswith(f"--{name}=") for a in argv)]
    try:
        resolved = resolve(argv, required + present)
    except glue_error as error:
        raise SystemExit(f"bad job arguments: {error}") from None
    return {**optional, **{k: v for k, v in resolved.items() if v is not None}}


def _require(args: dict[str, str], required: tuple[str, ...]) -> None:
    """Exit naming every required argument without a value."""
    missing = [name for name in required if not args.get(name)]
    if missing:
        raise SystemExit(f"missing job arguments: {', '.join('--' + m for m in missing)}")
