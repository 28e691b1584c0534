"""Run the curated-features suite on a pandas DataFrame in an ephemeral GX context (Glue job code).

:func:`validate_features` returns a JSON-serialisable summary (with every expectation's outcome),
writes Data Docs HTML to a folder, and raises :class:`ValidationFailedError` naming every failing
expectation, its column and the observed value. It runs inside the validation Glue job
(:mod:`mlops.validation.features_job`), never on the MWAA worker. GX is imported inside the
function (it takes seconds) and its loggers are set to WARNING so job logs stay readable.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.validation.features_suite import SUITE_NAME, SuiteBounds, build_suite
from mlops.validation.outcome import ValidationFailedError, summary_lines

__all__ = ["Outcome", "ValidationFailedError", "describe", "summary_lines", "validate_features"]

DOCS_SITE = "mlops_reports"
RESULT_FORMAT = "SUMMARY"  # counts and the first unexpected values: what describe() reports
QUIET_LOGGERS = ("great_expectations", "great_expectations.core", "great_expectations.data_context")


@dataclass(frozen=True)
class Outcome:
    expectation: str
    column: str | None
    success: bool
    detail: str


def describe(kind: str, kwargs: dict[str, Any], result: dict[str, Any], frame_dtypes: dict[str, str]) -> str:
    """One line a person can act on: what was expected and what was observed."""
    frame_columns = list(frame_dtypes)
    column = kwargs.get("column")
    if column is not None and column not in frame_dtypes:
        return f"column {column!r} is missing"
    if "unexpected_count" not in result and "observed_value" not in result:
        return f"could not be evaluated on dtype {frame_dtypes.get(column)}"
    observed = result.get("observed_value")
    share = result.get("unexpected_percent")
    sample = result.get("partial_unexpected_list", [])[:5]
    if kind == "expect_table_columns_to_match_ordered_list":
        expected = kwargs["column_list"]
        missing = [c for c in expected if c not in frame_columns]
        extra = [c for c in frame_columns if c not in expected]
        parts = [f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else ""]
        return "columns differ from the contract: " + (", ".join(p for p in parts if p) or "order differs")
    if kind == "expect_table_row_count_to_be_between":
        return f"{observed} rows, expected {_num(kwargs['min_value'])}..{_num(kwargs['max_value'])}"
    if kind == "expect_column_values_to_be_in_type_list":
        return f"dtype is {observed or frame_dtypes[column]}, expected one of {kwargs['type_list']}"
    if kind == "expect_column_values_to_not_be_null":
        allowed = 100 * (1 - kwargs.get("mostly", 1.0))
        return f"{share:.1f}% nulls ({result.get('unexpected_count')} rows), at most {allowed:.1f}% allowed"
    if kind == "expect_column_values_to_be_unique":
        return f"{result.get('unexpected_count')} rows share a key, e.g. {sample}"
    if kind == "expect_column_values_to_be_between":
        low, high = _num(kwargs["min_value"]), _num(kwargs["max_value"])
        return f"{result.get('unexpected_count')} values outside [{low}, {high}], e.g. {sample}"
    if kind in ("expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"):
        values = kwargs["value_set"]
        if column == "label" and len(values) == 1:  # a label-share bound (see expectation_specs)
            if kind == "expect_column_values_to_be_in_set":
                label_share, bound = 100 - share, f"at least {100 * kwargs['mostly']:.1f}%"
            else:
                label_share, bound = share, f"at most {100 * (1 - kwargs['mostly']):.1f}%"
            return f"share of label {values[0]!r} is {label_share:.1f}%, expected {bound}"
        allowed = 100 * (1 - kwargs.get("mostly", 1.0))
        return f"{share:.2f}% values not in the allowed set (tolerance {allowed:.2f}%), e.g. {sample}"
    return f"observed {observed!r}, unexpected {share}"


def _num(value: float | None) -> str:
    if value is None:
        return "unbounded"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _quiet_gx() -> None:
    """GX sets INFO on some of its own loggers; set every one of them to WARNING."""
    names = [n for n in logging.root.manager.loggerDict if n.startswith("great_expectations")]
    for name in {*QUIET_LOGGERS, *names}:
        logging.getLogger(name).setLevel(logging.WARNING)


def validate_features(
    frame: Any,
    bounds: SuiteBounds | None = None,
    docs_dir: Path | None = None,
    run_name: str = "manual",
    run_time: datetime | None = None,
    raise_on_failure: bool = True,
    workers: int | None = None,
) -> dict[str, Any]:
    """Validate ``frame`` against the suite; write Data Docs to ``docs_dir``; raise on failure.

    The table's expectations run on the whole frame and each column's on that column alone: GX's pandas
    engine copies its whole batch (every column) for each column check it filters, which made the suite
    5x slower on the 51-column curated table at 1M rows (171 s; 33 s column by column, BENCHMARKS.md).
    The results are put together as one validation of the suite, and that is what the Data Docs show.
    The columns are shared among ``workers`` processes (default: the CPUs this job may use), since
    GX's work is mostly Python holding the GIL (:func:`_validate_domains`).
    """
    context, batch_definition = _context(docs_dir)  # imports GX with its loggers quiet
    from great_expectations.core.run_identifier import RunIdentifier

    suite = build_suite(bounds)
    domains = _by_domain(suite.expectations)
    results, batch_id = _validate_domains(frame, domains, batch_definition, workers or available_cpus())
    run_id = RunIdentifier(run_name=run_name, run_time=run_time or datetime(1970, 1, 1, tzinfo=UTC))
    if docs_dir is not None:
        _write_data_docs(context, suite, results, run_id, batch_id)
    outcomes = _outcomes(results, {str(c): str(t) for c, t in frame.dtypes.items()})
    failures = [
        f"{o.expectation}" + (f" on {o.column}" if o.column else "") + f": {o.detail}"
        for o in outcomes
        if not o.success
    ]
    summary = {
        "suite": SUITE_NAME,
        "success": not failures,
        "evaluated": len(outcomes),
        "failed": len(failures),
        "rows": len(frame),
        "failures": failures,
        "expectations": [asdict(o) for o in outcomes],
        "data_docs": str(Path(docs_dir) / "index.html") if docs_dir is not None else None,
    }
    if failures and raise_on_failure:
        raise ValidationFailedError(failures, summary)
    return summary


Domain = tuple[str | None, list[Any]]
_shared: dict[str, Any] = {}  # what forked workers inherit: the frame, the domains, the batch definition


def available_cpus() -> int:
    """The CPUs this process may run on (the job's worker; not the host's count under a CPU affinity mask)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _validate_domains(frame: Any, domains: list[Domain], batch_definition: Any, workers: int) -> tuple[list[Any], str]:
    """Every domain's results in suite order, and the id of a batch they ran on (for the Data Docs).

    With ``workers`` > 1 the domains are validated in forked processes that inherit the frame (no copy
    is sent), largest column first; each returns its results pickled. On one CPU, or where fork is
    not available, they run here one after the other.
    """
    import multiprocessing

    workers = min(workers, len(domains))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        done = [_validate_domain(frame, domain, batch_definition) for domain in domains]
    else:
        _shared.update(frame=frame, domains=domains, batch_definition=batch_definition)
        order = sorted(range(len(domains)), key=lambda i: -_domain_cost(frame, domains[i]))
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                by_index = dict(pool.imap_unordered(_validate_shared_domain, order))
        finally:
            _shared.clear()
        done = [by_index[i] for i in range(len(domains))]
    return [result for results, _ in done for result in results], done[-1][1]


def _domain_cost(frame: Any, domain: Domain) -> int:
    """A domain's work, roughly: its expectations times the bytes of the data they read."""
    column, expectations = domain
    if column is None or column not in frame.columns:
        return len(expectations)
    return len(expectations) * int(frame[column].memory_usage(index=False, deep=False))


def _validate_shared_domain(index: int) -> tuple[int, tuple[list[Any], str]]:
    """In a forked worker: validate domain ``index`` of the inherited frame."""
    _quiet_gx()
    return index, _validate_domain(_shared["frame"], _shared["domains"][index], _shared["batch_definition"])


def _validate_domain(frame: Any, domain: Domain, batch_definition: Any) -> tuple[list[Any], str]:
    """One domain's results (the table's on the whole frame, a column's on that column alone) and the batch id."""
    column, expectations = domain
    part = frame if column is None else frame[[column] if column in frame.columns else []]
    results: list[Any] = []
    for checks_type, chunk in _type_chunks(expectations):
        data = part if checks_type else _widened(part)
        batch = batch_definition.get_batch(batch_parameters={"dataframe": data})
        results += batch.validate(_sub_suite(column, chunk), result_format=RESULT_FORMAT).results
    return results, batch.id


def _by_domain(expectations: list[Any]) -> list[Domain]:
    """The suite's expectations grouped by column (None: the table's), the table's first, then in suite order."""
    groups: dict[str | None, list[Any]] = {None: []}
    for expectation in expectations:
        groups.setdefault(getattr(expectation, "column", None), []).append(expectation)
    return [(column, group) for column, group in groups.items() if group]


TYPE_EXPECTATIONS = ("expect_column_values_to_be_in_type_list", "expect_column_values_to_be_of_type")


def _type_chunks(expectations: list[Any]) -> list[tuple[bool, list[Any]]]:
    """``expectations`` in order, cut into runs of dtype checks and of value checks: (checks dtype, run)."""
    chunks: list[tuple[bool, list[Any]]] = []
    for expectation in expectations:
        checks_type = expectation.expectation_type in TYPE_EXPECTATIONS
        if chunks and chunks[-1][0] == checks_type:
            chunks[-1][1].append(expectation)
        else:
            chunks.append((checks_type, [expectation]))
    return chunks


def _widened(part: Any) -> Any:
    """``part`` with narrow numeric columns as int64/float64, for the value checks: GX's pandas engine compares
    only int64 and float64 columns vectorised and calls a Python function per value for any other (int32:
    15 curated columns, 22M calls at 1.5M rows). Values are unchanged; the dtype checks see the original."""
    import numpy as np

    narrow = {c: t for c, t in part.dtypes.items() if isinstance(t, np.dtype) and t.itemsize < 8}
    wide = {c: np.int64 if t.kind in "iu" else np.float64 for c, t in narrow.items() if t.kind in "iuf"}
    return part.astype(wide) if wide else part


def _sub_suite(column: str | None, expectations: list[Any]) -> Any:
    """An unsaved suite of one domain's expectations (a validation of the column alone)."""
    import great_expectations as gx

    return gx.ExpectationSuite(name=f"{SUITE_NAME}.{column or 'table'}", expectations=[e.copy() for e in expectations])


def _write_data_docs(context: Any, suite: Any, results: list[Any], run_id: Any, batch_id: str) -> None:
    """Store the domains' results as one validation of ``suite`` in ``context`` and build its Data Docs."""
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    passed = sum(bool(r.success) for r in results)
    combined = ExpectationSuiteValidationResult(
        success=passed == len(results),
        results=results,
        suite_name=SUITE_NAME,
        statistics={
            "evaluated_expectations": len(results),
            "successful_expectations": passed,
            "unsuccessful_expectations": len(results) - passed,
            "success_percent": 100.0 * passed / len(results) if results else None,
        },
        meta={"run_id": run_id, "validation_time": run_id.run_time, "active_batch_definition": None},
        batch_id=batch_id,
    )
    suite_id = ExpectationSuiteIdentifier(name=SUITE_NAME)
    context.suites.add(suite)
    key = ValidationResultIdentifier(expectation_suite_identifier=suite_id, run_id=run_id, batch_identifier=batch_id)
    context.validation_results_store.set(key, combined)
    context.build_data_docs(site_names=[DOCS_SITE])


def _context(docs_dir: Path | None) -> tuple[Any, Any]:
    """An ephemeral GX context with a Data Docs site in ``docs_dir`` and a whole-DataFrame batch definition."""
    _quiet_gx()
    import great_expectations as gx

    _quiet_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    _quiet_gx()
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    if docs_dir is not None:
        context.add_data_docs_site(
            site_name=DOCS_SITE,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    batch_definition = (
        context.data_sources.add_pandas("features")
        .add_dataframe_asset("curated")
        .add_batch_definition_whole_dataframe("snapshot")
    )
    return context, batch_definition


def _outcomes(results: list[Any], dtypes: dict[str, str]) -> list[Outcome]:
    """One Outcome per evaluated expectation's result, with a readable detail when it failed."""
    return [
        Outcome(
            r.expectation_config.type,
            r.expectation_config.kwargs.get("column"),
            bool(r.success),
            "ok"
            if r.success
            else describe(r.expectation_config.type, r.expectation_config.kwargs, r.result or {}, dtypes),
        )
        for r in results
    ]
