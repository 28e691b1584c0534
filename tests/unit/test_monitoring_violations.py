"""constraint_violations.json: Model Monitor's schema, and the job's file follows it."""

from __future__ import annotations

import pytest

from mlops.monitoring.violations import CHECK_TYPES, ViolationsSchemaError, document, validate, violation


def test_check_types_are_model_monitors():
    assert set(CHECK_TYPES) == {
        "data_type_check",
        "completeness_check",
        "baseline_drift_check",
        "missing_column_check",
        "extra_column_check",
        "categorical_values_check",
    }


def test_document_is_sorted_and_valid():
    doc = document(
        [
            violation("b", "baseline_drift_check", "Baseline drift distance: 0.3 exceeds threshold: 0.1"),
            violation("a", "completeness_check", "x"),
            violation("b", "data_type_check", "y"),
        ]
    )
    assert validate(doc) is doc
    assert [(v["feature_name"], v["constraint_check_type"]) for v in doc["violations"]] == [
        ("a", "completeness_check"),
        ("b", "data_type_check"),
        ("b", "baseline_drift_check"),
    ]
    assert validate({"violations": []}) == {"violations": []}


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"violations": {}},
        {"violations": [], "extra": 1},
        {"violations": [{"feature_name": "a", "constraint_check_type": "baseline_drift_check"}]},
        {"violations": [{"feature_name": "a", "constraint_check_type": "psi_check", "description": "d"}]},
        {
            "violations": [
                {"feature_name": "a", "constraint_check_type": "baseline_drift_check", "description": "d", "psi": 1}
            ]
        },
        {"violations": [{"feature_name": "", "constraint_check_type": "baseline_drift_check", "description": "d"}]},
    ],
)
def test_schema_violations_are_rejected(bad):
    with pytest.raises(ViolationsSchemaError):
        validate(bad)


def test_unknown_check_type_is_refused():
    with pytest.raises(ValueError, match="not a Model Monitor constraint_check_type"):
        violation("a", "psi_check", "d")
