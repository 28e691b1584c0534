"""Validate a run's ``conf`` against the DAG's Params, before anything is triggered.

Airflow accepts unknown ``conf`` keys silently, and a trigger form can clamp a value instead of
refusing it; a run started from outside Airflow is checked here first: every key must be a
Param of the DAG, and every value must satisfy that Param's JSON schema (the schema Airflow
itself validates Params with).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops.runs.requests import RunRequestError


def param_schemas(details: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Param name -> JSON schema, from the REST API's DAG details (``params``: {name: {schema, ...}})."""
    return {name: dict(spec.get("schema") or {}) for name, spec in (details.get("params") or {}).items()}


def validate_conf(conf: Any, schemas: Mapping[str, Mapping[str, Any]], dag_id: str) -> dict[str, Any]:
    """``conf`` if every key is a Param of the DAG and every value fits its schema; raise naming the Param."""
    import jsonschema

    if not isinstance(conf, dict):
        raise RunRequestError(f"conf must be a JSON object of {dag_id}'s Params, got {type(conf).__name__}", "conf")
    for name, value in conf.items():
        if name not in schemas:
            known = ", ".join(sorted(schemas)) or "none"
            raise RunRequestError(f"conf.{name} is not a Param of {dag_id} (its Params: {known})", f"conf.{name}")
        try:
            jsonschema.validate(value, dict(schemas[name]))
        except jsonschema.ValidationError as exc:
            raise RunRequestError(
                f"conf.{name}={value!r} is invalid for {dag_id}: {exc.message}", f"conf.{name}"
            ) from None
    return conf
