"""Glue-style job arguments: ``--KEY value`` pairs, through awsglue's ``getResolvedOptions`` when on Glue."""

from __future__ import annotations


def parse_job_args(
    argv: list[str], required: tuple[str, ...], optional: dict[str, str] | None = None
) -> dict[str, str]:
    """Glue-style ``--KEY value`` pairs -> dict (via awsglue's getResolvedOptions when on Glue).

    ``required`` names must be present; ``optional`` maps the others to their defaults.
    """
    required_names = list(required)
    optional = dict(optional or {})
    try:
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
    except ImportError:
        getResolvedOptions = None
    if getResolvedOptions is not None:
        present = [name for name in optional if f"--{name}" in argv]
        return {**optional, **getResolvedOptions(argv, required_names + present)}
    args: dict[str, str] = dict(optional)
    tokens = list(argv[1:])
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("--"):
            raise SystemExit(f"unexpected argument {token!r}; job arguments are --KEY value pairs")
        key, eq, value = token[2:].partition("=")
        args[key] = value if eq else (tokens.pop(0) if tokens and not tokens[0].startswith("--") else "true")
    missing = [name for name in required_names if not args.get(name)]
    if missing:
        raise SystemExit(f"missing job arguments: {', '.join('--' + m for m in missing)}")
    return args
