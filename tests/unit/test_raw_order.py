"""A raw order featurized with the online store's records equals its curated row (the features job's output)."""

from __future__ import annotations

import math

import pytest

from mlops.etl.synthetic_raw import write_raw
from mlops.schema import raw_order
from mlops.schema.curated import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from mlops.schema.online_store import OnlineStore
from tests.unit.raw_orders import PREFIX, fill_as_of, load
from tests.unit.raw_orders import raw_order as raw_order_of


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw") / "shop"
    write_raw(raw, 1500, seed=11)
    return load(raw)


def _same(left, right) -> bool:
    if left is None or (isinstance(left, float) and math.isnan(left)):
        return right is None or (isinstance(right, float) and math.isnan(right))
    if isinstance(left, str) or isinstance(right, str):
        return str(left) == str(right)
    return math.isclose(float(left), float(right), rel_tol=1e-9, abs_tol=1e-12)


def test_raw_orders_featurize_to_their_curated_rows(lake, tmp_path):
    tables, curated, records = lake
    sample = curated.sample(60, random_state=1)
    for _, row in sample.iterrows():
        order = raw_order_of(tables, int(row["order_id"]))
        store = fill_as_of(tmp_path / "online.sqlite", records, order)
        features = raw_order.featurize(order, store.batch_get_record, PREFIX)
        wrong = [c for c in (*CATEGORICAL_FEATURES, *NUMERIC_FEATURES) if not _same(row[c], features[c])]
        assert not wrong, f"order {row['order_id']}: {[(c, row[c], features[c]) for c in wrong]}"


def test_unknown_customer_and_malformed_orders_are_named(lake, tmp_path):
    tables, curated, records = lake
    order = raw_order_of(tables, int(curated["order_id"].iloc[0]))
    store = fill_as_of(tmp_path / "online.sqlite", records, order)
    with pytest.raises(raw_order.RawOrderError, match=r"instance\.customer_id: customer 999999 is not in the online"):
        raw_order.featurize({**order, "customer_id": 999999}, store.batch_get_record, PREFIX)
    with pytest.raises(raw_order.RawOrderError, match=r"instance\.lines\[0\]\.quantity: missing"):
        raw_order.featurize({**order, "lines": [{"product_id": 1, "unit_price": 2.0}]}, store.batch_get_record, PREFIX)
    with pytest.raises(raw_order.RawOrderError, match=r"instance\.order_ts: must be an ISO 8601"):
        raw_order.featurize({**order, "order_ts": "yesterday"}, store.batch_get_record, PREFIX)


def test_online_store_keeps_the_newest_record(tmp_path):
    store = OnlineStore(str(tmp_path / "s.sqlite"), {"g": ("id", "event_time")})
    put = lambda t, v: {"FeatureGroupName": "g", "Record": [  # noqa: E731
        {"FeatureName": "id", "ValueAsString": "1"}, {"FeatureName": "event_time", "ValueAsString": str(t)},
        {"FeatureName": "v", "ValueAsString": v}]}  # fmt: skip
    store.put_records([put(2.0, "new"), put(1.0, "old")])
    found = store.batch_get_record(
        Identifiers=[{"FeatureGroupName": "g", "RecordIdentifiersValueAsString": ["1", "2"]}]
    )
    [record] = found["Records"]
    assert {v["FeatureName"]: v["ValueAsString"] for v in record["Record"]}["v"] == "new"
