"""``constraint_violations.json`` in Model Monitor's schema: build it and check a document against it.

{"violations": [{"feature_name": "...", "constraint_check_type": "<type>", "description": "..."}]}
"""

from __future__ import annotations

from typing import Any

CHECK_TYPES = (
    "data_type_check",
    "completeness_check",
    "baseline_drift_check",
    "missing_column_check",
    "extra_column_check",
    "categorical_values_check",
)
FIELDS = ("feature_name", "constraint_check_type", "description")


class ViolationsSchemaError(ValueError):
    """A constraint_violations.json document does not follow Model Monitor's schema."""


def violation(feature: str, check: str, description: str) -> dict[str, str]:
    """One violation; raises ValueError for a check type Model Monitor does not define."""
    if check not in CHECK_TYPES:
        raise ValueError(f"{check!r} is not a Model Monitor constraint_check_type; use one of {CHECK_TYPES}")
    return {"feature_name": feature, "constraint_check_type": check, "description": description}


def document(violations: list[dict[str, str]]) -> dict[str, Any]:
    """The constraint_violations.json document, sorted by feature then check type."""
    ordered = sorted(violations, key=lambda v: (v["feature_name"], CHECK_TYPES.index(v["constraint_check_type"])))
    return {"violations": ordered}


def validate(doc: Any) -> dict[str, Any]:
    """Return ``doc`` if it follows the schema; raise ViolationsSchemaError naming the first problem."""
    if not isinstance(doc, dict) or set(doc) != {"violations"} or not isinstance(doc["violations"], list):
        raise ViolationsSchemaError('the document must be exactly {"violations": [...]}')
    for i, item in enumerate(doc["violations"]):
        if not isinstance(item, dict) or set(item) != set(FIELDS):
            raise ViolationsSchemaError(f"violations[{i}] must have exactly the keys {FIELDS}, got {item!r}")
        if not all(isinstance(item[k], str) and item[k] for k in FIELDS):
            raise ViolationsSchemaError(f"violations[{i}]: every field must be a non-empty string")
        if item["constraint_check_type"] not in CHECK_TYPES:
            raise ViolationsSchemaError(
                f"violations[{i}]: unknown constraint_check_type {item['constraint_check_type']!r}"
            )
    return doc
