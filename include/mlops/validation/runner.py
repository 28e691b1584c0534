"""Run the curated-features suite on a pandas DataFrame in an ephemeral GX context (Glue job code).

:func:`validate_features` returns a JSON-serialisable summary (with every expectation's outcome),
writes Data Docs HTML to a folder, and raises :class:`ValidationFailedError` naming every failing
expectation, its column and the observed value. It runs inside the validation Glue job
(:mod:`mlops.validation.features_job`), never on the MWAA worker. GX is imported inside the
function (it takes seconds) and its loggers are set to WARNING so job logs stay readable.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.validation.features_suite import SUITE_NAME, SuiteBounds, build_suite
from mlops.validation.outcome import ValidationFailedError, summary_lines

__all__ = ["Outcome", "ValidationFailedError", "describe", "summary_lines", "validate_features"]

DOCS_SITE = "mlops_reports"
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
) -> dict[str, Any]:
    """Validate ``frame`` against the suite; write Data Docs to ``docs_dir``; raise on failure."""
    _context, checkpoint = _checkpoint(bounds, docs_dir)  # imports GX with its loggers quiet
    from great_expectations.core.run_identifier import RunIdentifier

    run_id = RunIdentifier(run_name=run_name, run_time=run_time or datetime(1970, 1, 1, tzinfo=UTC))
    result = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)
    outcomes = _outcomes(result, {str(c): str(t) for c, t in frame.dtypes.items()})
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


def _checkpoint(bounds: SuiteBounds | None, docs_dir: Path | None) -> tuple[Any, Any]:
    """An ephemeral GX context and a checkpoint of the suite over an in-memory DataFrame (Data Docs to ``docs_dir``)."""
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    _quiet_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    _quiet_gx()
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    actions = []
    if docs_dir is not None:
        context.add_data_docs_site(
            site_name=DOCS_SITE,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        actions.append(UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE]))
    batch = context.data_sources.add_pandas("features").add_dataframe_asset("curated")
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(
            name=SUITE_NAME,
            data=batch.add_batch_definition_whole_dataframe("snapshot"),
            suite=context.suites.add(build_suite(bounds)),
        )
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(name=SUITE_NAME, validation_definitions=[definition], actions=actions, result_format="SUMMARY")
    )
    return context, checkpoint


def _outcomes(result: Any, dtypes: dict[str, str]) -> list[Outcome]:
    """One Outcome per evaluated expectation of a checkpoint result, with a readable detail when it failed."""
    return [
        Outcome(
            r.expectation_config.type,
            r.expectation_config.kwargs.get("column"),
            bool(r.success),
            "ok"
            if r.success
            else describe(r.expectation_config.type, r.expectation_config.kwargs, r.result or {}, dtypes),
        )
        for validation in result.run_results.values()
        for r in validation.results
    ]
