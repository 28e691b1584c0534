"""The local online store answers BatchGetRecord like SageMaker Feature Store's online store: latest record per
entity by event time, unknown identifiers left out, and a reader that stays open sees later writes."""

from __future__ import annotations

import pytest

from mlops.schema.feature_groups import PRODUCT_HISTORY, put_record_request, record_values
from mlops.schema.online_store import OnlineStore

GROUP = "mlops-test-product-history"


def _put(store: OnlineStore, product_id: int, event_time: float, returned: int) -> None:
    record = {PRODUCT_HISTORY.record_identifier: product_id, PRODUCT_HISTORY.event_time: event_time}
    record["returned_orders"] = returned
    store.put_records([put_record_request(GROUP, PRODUCT_HISTORY, record)])


def _get(store: OnlineStore, *ids: int) -> dict[int, dict]:
    answer = store.batch_get_record(
        Identifiers=[{"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": [str(i) for i in ids]}]
    )
    values = (record_values(PRODUCT_HISTORY, found["Record"]) for found in answer["Records"])
    return {v[PRODUCT_HISTORY.record_identifier]: v for v in values}


@pytest.fixture
def store(tmp_path):
    return OnlineStore(
        str(tmp_path / "online.sqlite"), {GROUP: (PRODUCT_HISTORY.record_identifier, PRODUCT_HISTORY.event_time)}
    )


def test_latest_by_event_time_and_unknown_ids_left_out(store):
    _put(store, 1, 100.0, 1)
    _put(store, 1, 50.0, 9)  # older than the one held: not written
    _put(store, 2, 10.0, 3)
    found = _get(store, 1, 2, 3)
    assert sorted(found) == [1, 2]
    assert found[1]["returned_orders"] == 1


def test_an_open_reader_sees_later_writes(store):
    _put(store, 1, 100.0, 1)
    assert _get(store, 1)[1]["returned_orders"] == 1  # opens the kept reader
    _put(store, 1, 200.0, 4)
    assert _get(store, 1)[1]["returned_orders"] == 4


def test_a_missing_store_names_the_dag_that_fills_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the features DAG"):
        _get(OnlineStore(str(tmp_path / "absent.sqlite")), 1)


def test_an_unknown_group_is_refused_before_anything_is_written(store):
    with pytest.raises(ValueError, match="not known to this online store"):
        store.put_records([{"FeatureGroupName": "other", "Record": []}])


def test_a_replaced_store_file_is_reopened(store, tmp_path):
    _put(store, 1, 100.0, 1)
    assert _get(store, 1)[1]["returned_orders"] == 1
    fresh = OnlineStore(str(tmp_path / "fresh.sqlite"), store.identifiers)
    _put(fresh, 1, 50.0, 7)
    (tmp_path / "fresh.sqlite").replace(store.path)  # a fresh local state: the file is a new one
    assert _get(store, 1)[1]["returned_orders"] == 7
