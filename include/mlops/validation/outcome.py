"""What a features validation produced, in plain data (standard library only).

Shared by the Glue validation job (which writes the result) and the MWAA worker (which reads
it and gates): the result file's name and layout under the run's report prefix, the summary's
log lines, and the error a failed suite raises. Nothing here imports pandas or GX.

Report prefix of one run (``reports/features/<run_key>/``)::

    validation.json        the result: success, per-expectation outcomes, counts, Data Docs URI
    data_docs/index.html   Great Expectations Data Docs (static HTML)
"""

from __future__ import annotations

from typing import Any

RESULT_NAME = "validation.json"
DOCS_FOLDER = "data_docs"
FIX_HINT = (
    "Fix: correct the data upstream (source, replication or the features job) and re-run mlops_features; "
    "if the change is intended, update the suite (include/mlops/validation/features_suite.py) or set the "
    "min_rows / max_rows Params."
)


def result_uri(report_uri: str) -> str:
    """The result file of a run's report prefix."""
    return f"{report_uri.rstrip('/')}/{RESULT_NAME}"


def docs_uri(report_uri: str) -> str:
    """The Data Docs folder of a run's report prefix."""
    return f"{report_uri.rstrip('/')}/{DOCS_FOLDER}"


class ValidationFailedError(RuntimeError):
    """The curated features broke the suite; ``failures`` lists one readable line per failed expectation."""

    def __init__(self, failures: list[str], summary: dict[str, Any], hint: str | None = None) -> None:
        self.failures = failures
        self.summary = summary
        head = f"feature validation failed: {len(failures)} of {summary['evaluated']} expectations"
        lines = [f"  - {line}" for line in failures]
        if summary.get("data_docs"):
            lines.append(f"  Data Docs: {summary['data_docs']}")
        if hint:
            lines.append(f"  {hint}")
        super().__init__(head + "\n" + "\n".join(lines))


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as log lines."""
    state = "PASSED" if summary["success"] else "FAILED"
    lines = [
        f"suite {summary['suite']} {state}: {summary['evaluated'] - summary['failed']}/{summary['evaluated']} "
        f"expectations met on {summary['rows']} rows"
    ]
    lines += [f"  FAILED {line}" for line in summary["failures"]]
    if summary.get("data_docs"):
        lines.append(f"Data Docs: {summary['data_docs']}")
    return lines
