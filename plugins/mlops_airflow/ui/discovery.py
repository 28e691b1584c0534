"""What a DAG run published, found generically in its tasks' XCom values and Asset-event extras.

Nothing here knows a stage's layout. Tasks return (and put in their events' ``extra``) where
their outputs are: ``report_uri``, ``data_docs``, ``evaluation_uri``, ``violations_uri``, ... Every
string anywhere in such a value that is a lake URI under a served prefix (see
:class:`~mlops_airflow.ui.lake_files.ServedLake`) and names an ``.html`` or ``.json`` file is a
report. Two shapes get their own section: a ``comparison`` text (the champion/challenger table
of the gate) and a deployment (a DescribeEndpoint result, or an ``endpoint_name`` with its
``variant_weights``). Plain data in, plain data out; standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mlops_airflow.ui.lake_files import ServedLake

REPORT_SUFFIXES = (".html", ".json")
MAX_DEPTH = 8
MAX_FACTS = 14
MAX_FACT_CHARS = 160
LABELS = {"data_docs": "Data Docs", "constraint_violations_uri": "constraint violations"}


@dataclass(frozen=True)
class TaskOutput:
    """One value a task instance published: an XCom (``key``: the XCom key), or the extra of an
    Asset event it emitted (``key``: ``asset event <name>``)."""

    task_id: str
    map_index: int
    key: str
    value: Any


@dataclass(frozen=True)
class Report:
    """A lake file a task reported."""

    task_id: str
    map_index: int
    field: str
    key: str

    @property
    def file_name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def label(self) -> str:
        """``report_uri`` -> ``report``, ``data_docs`` -> ``Data Docs``."""
        name = self.field.rsplit(".", 1)[-1]
        return LABELS.get(name) or name.removesuffix("_uri").replace("_", " ")


@dataclass(frozen=True)
class Variant:
    """A production variant: its model and its share of the traffic."""

    name: str
    model: str | None
    weight: float | None
    share: float | None


@dataclass(frozen=True)
class Deployment:
    """An endpoint as a task described it."""

    endpoint_name: str
    status: str | None
    config_name: str | None
    variants: tuple[Variant, ...]
    model_version: Any = None
    invocation_url: str | None = None


@dataclass
class TaskFindings:
    """What one task instance of a run has to show."""

    task_id: str
    map_index: int
    reports: list[Report] = field(default_factory=list)
    comparison: str | None = None
    deployments: list[Deployment] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def worth_showing(self) -> bool:
        return bool(self.reports or self.comparison or self.deployments)


def strings_in(value: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, str]]:
    """Every string in a JSON-like value with its dotted path (list items as ``[i]``)."""
    if depth > MAX_DEPTH:
        return
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(item, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from strings_in(item, f"{path}[{index}]", depth + 1)


def reports_in(output: TaskOutput, served: ServedLake) -> list[Report]:
    """The served lake files (``.html``/``.json``) named anywhere in ``output``'s value."""
    found: dict[str, Report] = {}
    for path, text in strings_in(output.value):
        key = served.key_of(text)
        if key and key.endswith(REPORT_SUFFIXES) and key not in found:
            found[key] = Report(output.task_id, output.map_index, path or output.key, key)  # bare: the XCom key
    return list(found.values())


def comparison_in(value: Any) -> str | None:
    """The champion/challenger table a gate returned (a multi-line ``comparison`` text), if any."""
    text = value.get("comparison") if isinstance(value, dict) else None
    return text if isinstance(text, str) and text.strip() else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _variants(weights: dict[str, float | None], models: dict[str, str]) -> tuple[Variant, ...]:
    total = sum(w for w in weights.values() if w) or None
    return tuple(
        Variant(name, models.get(name), weight, (weight / total) if total and weight is not None else None)
        for name, weight in weights.items()
    )


def deployment_in(value: Any) -> Deployment | None:
    """A deployment described by ``value``: ``{"Endpoint": DescribeEndpoint, "EndpointConfig": ...}``
    (the endpoint operators' result) or ``{"endpoint_name", "variant_weights", ...}`` (a smoke test)."""
    if not isinstance(value, dict):
        return None
    endpoint = value.get("Endpoint")
    if isinstance(endpoint, dict) and isinstance(endpoint.get("ProductionVariants"), list):
        config = value.get("EndpointConfig") if isinstance(value.get("EndpointConfig"), dict) else {}
        models = {v.get("VariantName"): v.get("ModelName") for v in config.get("ProductionVariants") or []}
        models.update({v["VariantName"]: v["ModelName"] for v in endpoint["ProductionVariants"] if v.get("ModelName")})
        weights = {str(v.get("VariantName")): _number(v.get("CurrentWeight")) for v in endpoint["ProductionVariants"]}
        return Deployment(
            endpoint_name=str(endpoint.get("EndpointName")),
            status=endpoint.get("EndpointStatus"),
            config_name=endpoint.get("EndpointConfigName"),
            variants=_variants(weights, models),
            invocation_url=endpoint.get("LocalInvocationUrl"),
        )
    if isinstance(value.get("endpoint_name"), str) and isinstance(value.get("variant_weights"), dict):
        weights = {str(k): _number(v) for k, v in value["variant_weights"].items()}
        return Deployment(
            endpoint_name=value["endpoint_name"],
            status=None,
            config_name=value.get("endpoint_config_name"),
            variants=_variants(weights, {}),
            model_version=value.get("model_version"),
            invocation_url=value.get("invocation_url"),
        )
    return None


def facts_in(value: Any, shown: set[str]) -> dict[str, Any]:
    """The short top-level scalars of a dict value (version, mAP, status, counts...), minus ``shown``."""
    if not isinstance(value, dict):
        return {}
    facts = {}
    for key, item in value.items():
        if key in shown or isinstance(item, dict | list | tuple):
            continue
        if isinstance(item, str) and (len(item) > MAX_FACT_CHARS or "\n" in item or "://" in item):
            continue
        facts[str(key)] = item
    return facts


def findings(outputs: Iterable[TaskOutput], served: ServedLake) -> list[TaskFindings]:
    """Per task instance (in the order first seen): its reports, comparison, deployments and facts;
    only task instances with a report, a comparison or a deployment."""
    by_task: dict[tuple[str, int], TaskFindings] = {}
    for output in outputs:
        item = by_task.setdefault((output.task_id, output.map_index), TaskFindings(output.task_id, output.map_index))
        known = {r.key for r in item.reports}
        item.reports += [r for r in reports_in(output, served) if r.key not in known]
        item.comparison = item.comparison or comparison_in(output.value)
        deployment = deployment_in(output.value)
        if deployment and deployment not in item.deployments:
            item.deployments.append(deployment)
        for key, value in facts_in(output.value, {"comparison"}).items():
            if len(item.facts) < MAX_FACTS:
                item.facts.setdefault(key, value)
    return [item for item in by_task.values() if item.worth_showing]


def published_keys(items: Iterable[TaskFindings]) -> set[str]:
    """Every lake key the findings report."""
    return {report.key for item in items for report in item.reports}
