"""Command-line arguments the baseline and drift jobs share: Model Monitor's comparison settings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROCESSING = "/opt/ml/processing"


def add_comparison_arguments(parser: argparse.ArgumentParser) -> None:
    """The constraint-check settings (Model Monitor's names) and the failure file SageMaker reads."""
    parser.add_argument("--comparison-method", choices=["Simple", "Robust"], default="Robust")
    parser.add_argument("--comparison-threshold", type=float, default=0.1)
    parser.add_argument("--categorical-comparison-threshold", type=float, default=0.1)
    parser.add_argument("--datatype-check-threshold", type=float, default=0.1)
    parser.add_argument("--domain-content-threshold", type=float, default=0.1)
    parser.add_argument("--failure-file", default="/opt/ml/output/failure")


def write_failure(failure_file: str, exc: BaseException, prefix: str = "") -> None:
    """SageMaker's failure file (its text becomes the job's FailureReason), and the reason on stderr."""
    reason = f"{prefix}{type(exc).__name__}: {exc}"
    failure = Path(failure_file)
    failure.parent.mkdir(parents=True, exist_ok=True)
    failure.write_text(reason[:1024])
    print(reason, file=sys.stderr, flush=True)
