"""The ``--snapshot`` argument of the benchmarks that read a curated snapshot the features job wrote."""

from __future__ import annotations

import argparse
from pathlib import Path


def snapshot_parser(
    description: str, rows_default: list[int] | None = None, rows_help: str = ""
) -> argparse.ArgumentParser:
    """A parser with ``--snapshot`` (a curated snapshot folder) and, given ``rows_default``, ``--rows`` (row
    counts to compare)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--snapshot", type=Path, required=True, help="a curated snapshot folder (split=... inside)")
    if rows_default is not None:
        parser.add_argument("--rows", type=int, nargs="+", default=rows_default, help=rows_help)
    return parser


def parse_snapshot_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The arguments, or the parser's error when ``--snapshot`` is not a snapshot folder."""
    args = parser.parse_args()
    if not (args.snapshot / "split=train").is_dir():
        parser.error(f"{args.snapshot} has no split=train folder; pass .mlops/lake/curated/features/snapshots/<id>")
    return args
