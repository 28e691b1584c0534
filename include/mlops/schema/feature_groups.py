"""The entity feature groups (customer history, product history), defined once for jobs, training and serving.

A feature group holds **records**: one per entity (``record_identifier``) and instant (``event_time``), each
the entity's running totals through that instant, as SageMaker Feature Store keeps them. The features jobs
(:mod:`mlops.etl.build_features`, :mod:`mlops.etl.pandas_features`) write the records to the offline store
(:func:`offline_table_uri`, SageMaker's layout) and build the training table's entity features from it with a
point-in-time join: an order placed at ``t`` sees, per entity, the record with the latest event time strictly
before ``t``, and :func:`customer_history_values` / :func:`product_history_values` turn those records into the
curated columns (``mlops.schema.curated.HISTORY_FEATURES`` / ``PRODUCT_HISTORY_FEATURES``). Serving reads the
latest record per entity from the online store and applies the same two functions, so what the model trains
on is what it is served. The requests (``CreateFeatureGroup``, ``PutRecord``, ``BatchGetRecord``) are built in
:mod:`mlops.aws.feature_store_requests`.

Customer records are written per instant (an order placed, an outcome known); product records per complete
UTC day (:data:`PRODUCT_RECORD_PERIOD_MICROS`).

Customer records also carry the customer's profile (country, segment, ...) and product records the product's
attributes (category, weight, fragility), in their latest state: serving needs them to featurize a raw
order, as the jobs take them from the latest ``customers`` / ``products`` tables.

Standard library only: this module is in the Glue job's code bundle (:mod:`mlops.etl.bundle`) and is shipped
next to ``inference.py`` in the model package.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlops.schema.curated import (
    CUSTOMER_RATE_PRIOR,
    CUSTOMER_RATE_PRIOR_ORDERS,
    HISTORY_FEATURES,
    PRODUCT_HISTORY_FEATURES,
    PRODUCT_RATE_PRIOR,
    PRODUCT_RATE_PRIOR_ORDERS,
    smoothed_rate,
)

#: SQL type of a record column -> SageMaker Feature Store FeatureType.
FEATURE_TYPES = {"bigint": "Integral", "int": "Integral", "double": "Fractional", "string": "String"}
EVENT_TIME = "event_time"  # Fractional: seconds since the epoch (UTC), microsecond precision
OFFLINE_COLUMNS = ("write_time", "api_invocation_time", "is_deleted")  # what the offline store adds
MICROS_PER_DAY = 86_400_000_000
#: Product records are daily: one per product and complete UTC day with outcomes, stamped at the day's last
#: microsecond with the totals through the day, written once the orders hold a change after it. A product's
#: return rate moves slowly, and a daily record is what a daily features run can serve: an order on day D trains
#: on the totals through D-1, which is what the online store holds while D is in progress. Half the records of
#: one per outcome (3.6M -> 1.8M at 1.5M orders), and their offline-store files fall from one per event hour to
#: one per day.
PRODUCT_RECORD_PERIOD_MICROS = MICROS_PER_DAY


@dataclass(frozen=True)
class FeatureGroup:
    """One feature group: its short name (the AWS name is ``<project>-<env>-<name>``), record identifier,
    event time, record columns with their SQL types, and the curated columns its records produce."""

    name: str
    record_identifier: str
    columns: tuple[tuple[str, str], ...]
    derives: tuple[str, ...]
    event_time: str = EVENT_TIME

    def feature_definitions(self) -> list[dict[str, str]]:
        """``FeatureDefinitions`` of CreateFeatureGroup (record identifier and event time included)."""
        pairs = ((self.record_identifier, "bigint"), (self.event_time, "double"), *self.columns)
        return [{"FeatureName": name, "FeatureType": FEATURE_TYPES[kind]} for name, kind in pairs]

    def feature_names(self) -> list[str]:
        """Every column of a record, record identifier and event time first."""
        return [self.record_identifier, self.event_time, *(name for name, _ in self.columns)]


CUSTOMER_HISTORY = FeatureGroup(
    name="customer-history",
    record_identifier="customer_id",
    columns=(
        ("orders", "bigint"),
        ("spend", "double"),
        ("terminal_orders", "bigint"),
        ("returned_orders", "bigint"),
        ("cancelled_orders", "bigint"),
        ("last_order_micros", "bigint"),
        ("country", "string"),
        ("segment", "string"),
        ("birth_year", "double"),
        ("marketing_opt_in", "bigint"),
        ("signup_micros", "bigint"),
    ),
    derives=HISTORY_FEATURES,
)
PRODUCT_HISTORY = FeatureGroup(
    name="product-history",
    record_identifier="product_id",
    columns=(
        ("terminal_orders", "bigint"),
        ("returned_orders", "bigint"),
        ("cancelled_orders", "bigint"),
        ("category", "string"),
        ("weight_kg", "double"),
        ("is_fragile", "bigint"),
    ),
    derives=PRODUCT_HISTORY_FEATURES,
)
FEATURE_GROUPS = (CUSTOMER_HISTORY, PRODUCT_HISTORY)
#: Decimals a record's double columns keep: ``spend`` is a sum of money amounts over order lines and orders
#: whose last bits depend on the order Spark adds them in, which changes with the plan (caching, partitions,
#: data volume); unrounded, the offline store's sync would take such noise for changed records.
RECORD_DECIMALS = 6
#: The history counters of a record (the rest are profile/attribute columns).
CUSTOMER_COUNTERS = ("orders", "spend", "terminal_orders", "returned_orders", "cancelled_orders", "last_order_micros")
PRODUCT_COUNTERS = ("terminal_orders", "returned_orders", "cancelled_orders")


def offline_table_uri(store_uri: str, account: str, region: str, group_name: str, created: int) -> str:
    """Where SageMaker's offline store (Glue table format) writes a group's Parquet:
    ``<store>/<account>/sagemaker/<region>/offline-store/<group>-<created>/data`` (then
    ``year=YYYY/month=MM/day=DD/hour=HH/`` by event time)."""
    return f"{store_uri.rstrip('/')}/{account}/sagemaker/{region}/offline-store/{group_name}-{created}/data"


def customer_history_values(record: Mapping[str, Any] | None, order_micros: int) -> dict[str, Any]:
    """The curated customer-history columns of an order placed at ``order_micros`` from the customer's
    latest record strictly before it (``None``: no record, a first order)."""
    record = record or {}
    terminal = int(record.get("terminal_orders") or 0)
    smoothed = lambda outcome: smoothed_rate(  # noqa: E731
        int(record.get(f"{outcome}_orders") or 0), terminal, CUSTOMER_RATE_PRIOR[outcome], CUSTOMER_RATE_PRIOR_ORDERS
    )
    last = record.get("last_order_micros")
    return {
        "prior_orders": int(record.get("orders") or 0),
        "prior_spend": float(record.get("spend") or 0.0),
        "prior_terminal_orders": terminal,
        "prior_return_rate": int(record.get("returned_orders") or 0) / terminal if terminal else 0.0,
        "prior_cancel_rate": int(record.get("cancelled_orders") or 0) / terminal if terminal else 0.0,
        "prior_return_rate_smoothed": smoothed("returned"),
        "prior_cancel_rate_smoothed": smoothed("cancelled"),
        "days_since_prev_order": None if last is None else (order_micros - int(last)) / MICROS_PER_DAY,
    }


def product_rates(record: Mapping[str, Any] | None) -> tuple[int, float, float]:
    """(known outcomes, smoothed return rate, smoothed cancel rate) of one product record (``None``: none)."""
    record = record or {}
    terminal = int(record.get("terminal_orders") or 0)
    ret, canc = (
        smoothed_rate(
            int(record.get(f"{outcome}_orders") or 0), terminal, PRODUCT_RATE_PRIOR[outcome], PRODUCT_RATE_PRIOR_ORDERS
        )
        for outcome in ("returned", "cancelled")
    )
    return terminal, ret, canc


def product_history_values(records: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """The curated product-history columns of an order from the latest record strictly before it of each of
    its distinct products (an order without lines gets the priors)."""
    if not records:
        return {
            "product_return_rate_max": PRODUCT_RATE_PRIOR["returned"],
            "product_return_rate_mean": PRODUCT_RATE_PRIOR["returned"],
            "product_cancel_rate_mean": PRODUCT_RATE_PRIOR["cancelled"],
            "product_prior_terminal_min": 0,
        }
    rates = [product_rates(record) for record in records]
    return {
        "product_return_rate_max": max(r[1] for r in rates),
        "product_return_rate_mean": math.fsum(r[1] for r in rates) / len(rates),
        "product_cancel_rate_mean": math.fsum(r[2] for r in rates) / len(rates),
        "product_prior_terminal_min": min(r[0] for r in rates),
    }


def _value_text(value: Any) -> str | None:
    """A record value as Feature Store's ``ValueAsString`` (None: the feature is left out of the record)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(value) if isinstance(value, float) else str(value)


def put_record_request(group_name: str, group: FeatureGroup, record: Mapping[str, Any]) -> dict[str, Any]:
    """PutRecord of one record (missing values left out, as Feature Store allows); ValueError without its
    record identifier or event time."""
    for required in (group.record_identifier, group.event_time):
        if _value_text(record.get(required)) is None:
            raise ValueError(f"{group.name} record needs {required!r}; got {dict(record)!r:.200}")
    values = [(name, _value_text(record.get(name))) for name in group.feature_names()]
    return {
        "FeatureGroupName": group_name,
        "Record": [{"FeatureName": name, "ValueAsString": text} for name, text in values if text is not None],
    }


def record_values(group: FeatureGroup, record: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """A BatchGetRecord ``Record`` (FeatureName/ValueAsString pairs) as typed values (absent: None)."""
    kinds = {group.record_identifier: "bigint", group.event_time: "double", **dict(group.columns)}
    texts = {item["FeatureName"]: item["ValueAsString"] for item in record}
    parse = {"bigint": lambda t: int(float(t)), "double": float, "string": str}
    return {name: (parse[kind](texts[name]) if name in texts else None) for name, kind in kinds.items()}


def describe_feature_group_request(group_name: str) -> dict[str, Any]:
    """DescribeFeatureGroup: where the group's offline store lives (``ResolvedOutputS3Uri``) and its status."""
    return {"FeatureGroupName": group_name}


def resolved_offline_uri(described: Mapping[str, Any]) -> str:
    """The data folder of a group's offline store from its DescribeFeatureGroup response; ValueError naming
    the fix if the group is not ``Created`` or has no offline store."""
    name, status = described.get("FeatureGroupName"), described.get("FeatureGroupStatus")
    if status != "Created":
        raise ValueError(
            f"feature group {name} is {status}, not Created: wait for its stack (infra/cfn/data.yaml) to finish "
            f"or see its FailureReason ({described.get('FailureReason') or 'none given'})"
        )
    uri = ((described.get("OfflineStoreConfig") or {}).get("S3StorageConfig") or {}).get("ResolvedOutputS3Uri")
    if not uri:
        raise ValueError(
            f"feature group {name} has no offline store (no ResolvedOutputS3Uri): recreate it from "
            "infra/cfn/data.yaml, which configures one"
        )
    return str(uri).rstrip("/")
