"""Benchmark: the curated-features GX suite on a real snapshot, column by column in worker processes (shipped),
column by column in one process, and the whole frame at once.

    MLOPS_RUNTIMES=.mlops/venvs PYTHONPATH=include .mlops/venvs/glue/bin/python bench/bench_validation.py \
        --snapshot .mlops/lake/curated/features/snapshots/<id> [--rows 200000 0] [--no-whole-frame]

The snapshot is what ``mlops_features`` wrote (e.g. by ``make demo SIZE=1000000``), read as the validation job
reads it. For each ``--rows`` (0 = every row) in one process: the baseline, the whole suite validated on the
whole frame in one GX validation (how :mod:`mlops.validation.runner` ran it before), then
:func:`mlops.validation.runner.validate_features` (each column's expectations on that column alone), without
Data Docs in both; then the runner again with its columns shared among worker processes (one per CPU, as
shipped). GX is imported and warmed up on a small frame first, so no run pays for the import. Printed: seconds
each, the ratios against the one-process run, and that all evaluated the same expectations with the same outcome.
``--no-whole-frame`` leaves out the whole-frame baseline (171 s at 1M rows).
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


def column_by_column(frame, workers: int) -> tuple[float, int, int]:
    """The runner with ``workers`` processes: seconds, evaluated, failed."""
    started = time.monotonic()
    summary = runner.validate_features(frame, raise_on_failure=False, workers=workers)
    return time.monotonic() - started, summary["evaluated"], summary["failed"]


def main() -> int:
    parser = snapshot_parser(__doc__.splitlines()[0], [200_000, 0], "first N rows; 0 = all")
    parser.add_argument("--no-whole-frame", action="store_true", help="skip the whole-frame baseline")
    args = parse_snapshot_args(parser)
    frame = read_snapshot_frame(args.snapshot.resolve().as_uri())
    workers = runner.available_cpus()
    column_by_column(frame.head(1000), workers)  # import GX and warm it up (workers fork from a warm process)
    print(f"| rows | whole frame s | column by column, 1 process s | column by column, {workers} workers s "
          "| whole frame / one process | one process / workers | expectations (failed) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for rows in args.rows:
        part = frame if not rows else frame.head(rows)
        single, evaluated, failed = column_by_column(part, 1)
        forked, *outcome = column_by_column(part, workers)
        before, *whole = (float("nan"), evaluated, failed) if args.no_whole_frame else whole_frame(part)
        for name, seen in (("whole frame", whole), (f"{workers} workers", outcome)):
            if tuple(seen) != (evaluated, failed):
                raise SystemExit(f"outcomes differ: one process {evaluated} ({failed}), {name} {seen[0]} ({seen[1]})")
        print(f"| {len(part):,} | {before:.1f} | {single:.1f} | {forked:.1f} | {before / single:.1f}x "
              f"| {single / forked:.2f}x | {evaluated} ({failed}) |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
