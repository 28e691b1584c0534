"""Issue 18 done-when: boto3's sagemaker-runtime client gets a prediction from a local endpoint's model server
for a raw order (customer and product features looked up in the local online store), and it equals the
prediction for the same order's curated row."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mlops.etl.synthetic_raw import write_raw
from mlops.schema.curated import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from mlops.serving.runtime import runtime_client
from tests.sagemaker_runtime import build_model_packages, start_model_server, stop_model_server
from tests.unit.raw_orders import PREFIX, fill_as_of, load, raw_order

ENDPOINT = "raw-order-test"


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw") / "shop"
    write_raw(raw, 1500, seed=11)
    return load(raw)


@pytest.fixture(scope="module")
def server(lake, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("server")
    data = workdir / "curated"  # a model trained on this lake's curated table: every curated feature is an input
    for split, rows in lake[1].groupby("split"):
        (data / f"split={split}").mkdir(parents=True)
        rows.drop(columns="split").to_parquet(data / f"split={split}" / "part-0.parquet", index=False)
    package = build_model_packages(workdir / "packages", {"onnx": {"seed": 7, "data": str(data)}})["onnx"]
    store = workdir / "online.sqlite"
    patch = pytest.MonkeyPatch()
    patch.setenv("MLOPS_ONLINE_STORE", str(store))
    patch.setenv("MLOPS_FEATURE_GROUP_PREFIX", PREFIX)
    proc, port = start_model_server(
        Path(package["archive"]).as_uri(),
        workdir / "model",
        "--endpoint-name",
        ENDPOINT,
        "--variant-name",
        "AllTraffic",
    )
    yield runtime_client(f"http://127.0.0.1:{port}"), store
    stop_model_server(proc)
    patch.undo()


def _predict(client, instances: list[dict]) -> list[dict]:
    response = client.invoke_endpoint(
        EndpointName=ENDPOINT, Body=json.dumps({"instances": instances}), ContentType="application/json"
    )
    return json.loads(response["Body"].read())["predictions"]


def _json_ready(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def test_boto3_gets_the_curated_rows_prediction_for_a_raw_order(lake, server):
    tables, curated, records = lake
    client, store = server
    sample = curated[curated["basket_lines"] > 1].sample(8, random_state=3)
    for _, row in sample.iterrows():
        order = raw_order(tables, int(row["order_id"]))
        fill_as_of(store, records, order)
        featurized = {c: _json_ready(row[c]) for c in (*CATEGORICAL_FEATURES, *NUMERIC_FEATURES)}
        [from_raw, from_row] = _predict(client, [order, featurized])
        assert from_raw == from_row, f"order {row['order_id']}"
    assert _predict(client, [order]) == _predict(client, [featurized]), "one instance per request: same answer"


def test_a_raw_order_of_an_unknown_customer_is_a_400_naming_it(lake, server):
    tables, curated, _records = lake
    client, _store = server
    order = raw_order(tables, int(curated["order_id"].iloc[0]))
    with pytest.raises(client.exceptions.ClientError, match=r"instances\[0\]\.customer_id"):
        _predict(client, [{**order, "customer_id": 999999}])
