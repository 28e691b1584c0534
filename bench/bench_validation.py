"""Benchmark: the curated-features GX suite on a real snapshot, column by column (shipped) vs the whole frame.

    MLOPS_RUNTIMES=.mlops/venvs PYTHONPATH=include .mlops/venvs/glue/bin/python bench/bench_validation.py \
        --snapshot .mlops/lake/curated/features/snapshots/<id> [--rows 200000 0]

The snapshot is what ``mlops_features`` wrote (e.g. by ``make demo SIZE=1000000``), read as the validation job
reads it. For each ``--rows`` (0 = every row) in one process: the baseline, the whole suite validated on the
whole frame in one GX validation (how :mod:`mlops.validation.runner` ran it before), then
:func:`mlops.validation.runner.validate_features` (each column's expectations on that column alone), without
Data Docs in both. GX is imported and warmed up on a small frame first, so neither run pays for the import.
Printed: seconds each, the ratio, and that both evaluated the same expectations with the same outcome.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from snapshot_args import parse_snapshot_args, snapshot_parser  # noqa: E402  (bench/ is on the path)

from mlops.validation import runner  # noqa: E402
from mlops.validation.features_job import read_snapshot_frame  # noqa: E402
from mlops.validation.features_suite import build_suite  # noqa: E402


def whole_frame(frame) -> tuple[float, int, int]:
    """The whole suite on the whole frame in one validation: seconds, evaluated, failed."""
    _, batch_definition = runner._context(None)
    started = time.monotonic()
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    results = batch.validate(build_suite(), result_format=runner.RESULT_FORMAT).results
    return time.monotonic() - started, len(results), sum(not r.success for r in results)


def column_by_column(frame) -> tuple[float, int, int]:
    """The shipped runner: seconds, evaluated, failed."""
    started = time.monotonic()
    summary = runner.validate_features(frame, raise_on_failure=False)
    return time.monotonic() - started, summary["evaluated"], summary["failed"]


def main() -> int:
    args = parse_snapshot_args(snapshot_parser(__doc__.splitlines()[0], [200_000, 0], "first N rows; 0 = all"))
    frame = read_snapshot_frame(args.snapshot.resolve().as_uri())
    column_by_column(frame.head(1000))  # import GX and warm it up
    print("| rows | whole frame s | column by column s | speed-up | expectations (failed) |")
    print("|---:|---:|---:|---:|---:|")
    for rows in args.rows:
        part = frame if not rows else frame.head(rows)
        before, evaluated, failed = whole_frame(part)
        after, evaluated_after, failed_after = column_by_column(part)
        if (evaluated, failed) != (evaluated_after, failed_after):
            raise SystemExit(f"outcomes differ: whole frame {evaluated} ({failed}), by column {evaluated_after} "
                             f"({failed_after})")  # fmt: skip
        print(f"| {len(part):,} | {before:.1f} | {after:.1f} | {before / after:.1f}x | {evaluated} ({failed}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
