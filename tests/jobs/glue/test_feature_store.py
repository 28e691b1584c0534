"""The features job's offline store (SageMaker's layout) and its point-in-time joins, on local Spark (glue runtime)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

from mlops.etl import build_features as job
from mlops.schema.feature_groups import CUSTOMER_HISTORY, FEATURE_GROUPS, OFFLINE_COLUMNS, PRODUCT_HISTORY
from tests.jobs.glue.test_features_etl import _args, _read_current
from tests.unit.test_etl_fixtures import write_fixture

LAYOUT = re.compile(
    r"000000000000/sagemaker/local/offline-store/mlops-local-(?P<group>[a-z-]+)-\d+/data/"
    r"year=\d{4}/month=\d\d/day=\d\d/hour=\d\d/[^/]+\.parquet$"
)


@pytest.fixture(scope="module")
def spark():
    session = job.spark_session("mlops-feature-store-tests", shuffle_partitions=2)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("lake") / "raw" / "dms" / "shop")


def test_job_writes_the_offline_store_in_sagemakers_layout_and_trains_from_it(spark, raw, tmp_path):
    pointer = job.run_job(spark, _args(tmp_path, raw))
    store = tmp_path / "curated" / "feature-store"
    files = [str(p.relative_to(store)) for p in store.rglob("data/**/*.parquet")]
    assert files and all(LAYOUT.search(f) for f in files), files[:3]
    assert {LAYOUT.search(f)["group"] for f in files} == {g.name for g in FEATURE_GROUPS}
    for group in FEATURE_GROUPS:
        stored = pd.read_parquet(Path(pointer["offline_store"][group.name].removeprefix("file://")))
        assert set(stored.columns) >= {*group.feature_names(), *OFFLINE_COLUMNS}
    in_memory = job.build_features(job.load_latest_tables(spark, raw.as_uri())).toPandas()
    pd.testing.assert_frame_equal(
        _read_current(tmp_path).drop(columns="split"),
        in_memory.sort_values("order_id").reset_index(drop=True).drop(columns="split"),
        check_dtype=False,
    )
    assert all(pointer["offline_store_appended"][g.name]["rows"] > 0 for g in FEATURE_GROUPS)
    hours = {str(Path(f).parent) for f in files}  # one write: one file per hour, and the counts say so
    assert len(hours) == len(files) == sum(pointer["offline_store_appended"][g.name]["files"] for g in FEATURE_GROUPS)
    again = job.run_job(spark, _args(tmp_path, raw, run_key="again"))  # the same source: nothing to append
    assert all(again["offline_store_appended"][g.name] == {"files": 0, "rows": 0} for g in FEATURE_GROUPS)
    assert sorted(str(p.relative_to(store)) for p in store.rglob("data/**/*.parquet")) == sorted(files)
    reread = job.read_offline_store(spark, pointer["offline_store"])[CUSTOMER_HISTORY.name]
    assert reread.count() == reread.select("customer_id", "event_time").distinct().count()


def _with_record(spark, records, group, entity_id: int, event_micros: int, **values):
    """``records`` plus one record of ``entity_id`` at ``event_micros`` (other counters 0, attributes kept)."""
    base = records.filter(records[group.record_identifier] == entity_id).orderBy("event_time").first().asDict()
    row = base | {"event_time": event_micros / 1_000_000.0, **values}
    return records.unionByName(spark.createDataFrame([tuple(row[c] for c in records.columns)], schema=records.schema))


def test_a_feature_value_recorded_after_an_order_never_reaches_its_training_row(spark, raw):
    tables = job.load_latest_tables(spark, raw.as_uri())
    records = job.entity_records(tables)
    order = job.build_features(tables).orderBy("order_id").first()
    t = int(pd.Timestamp(order["order_ts"]).tz_localize("UTC").value // 1000)
    product_id = tables["order_items"].filter(f"order_id = {order['order_id']}").first()["product_id"]
    for at in (t, t + 1, t + 86_400_000_000):  # at the order's instant, just after it, a day after it
        poisoned = {
            CUSTOMER_HISTORY.name: _with_record(
                spark, records[CUSTOMER_HISTORY.name], CUSTOMER_HISTORY, order["customer_id"], at,
                orders=999, terminal_orders=999, returned_orders=999,
            ),
            PRODUCT_HISTORY.name: _with_record(
                spark, records[PRODUCT_HISTORY.name], PRODUCT_HISTORY, product_id, at,
                terminal_orders=999, returned_orders=999,
            ),
        }  # fmt: skip
        row = job.build_features(tables, records=poisoned).filter(f"order_id = {order['order_id']}").first()
        assert row.asDict() == order.asDict(), f"a record at {at - t} us after the order reached it"
    seen = {
        CUSTOMER_HISTORY.name: _with_record(
            spark, records[CUSTOMER_HISTORY.name], CUSTOMER_HISTORY, order["customer_id"], t - 1, orders=999
        ),
        PRODUCT_HISTORY.name: records[PRODUCT_HISTORY.name],
    }
    row = job.build_features(tables, records=seen).filter(f"order_id = {order['order_id']}").first()
    assert row["prior_orders"] == 999, "a record one microsecond before the order is the one it sees"


def test_the_job_fills_the_online_store_with_each_entitys_latest_record(spark, raw, tmp_path):
    from mlops.schema.feature_groups import record_values
    from mlops.schema.online_store import OnlineStore

    store = tmp_path / "online.sqlite"
    job.run_job(spark, {**_args(tmp_path, raw), "online_store_uri": store.as_uri()})
    records = job.entity_records(job.load_latest_tables(spark, raw.as_uri()))[CUSTOMER_HISTORY.name].toPandas()
    latest = records.sort_values("event_time").drop_duplicates("customer_id", keep="last").set_index("customer_id")
    ids = [str(i) for i in latest.index]
    found = OnlineStore(str(store)).batch_get_record(
        Identifiers=[{"FeatureGroupName": "mlops-local-customer-history", "RecordIdentifiersValueAsString": ids}]
    )["Records"]
    assert len(found) == len(ids)
    for item in found:
        values = record_values(CUSTOMER_HISTORY, item["Record"])
        expected = latest.loc[values["customer_id"]]
        assert values["event_time"] == expected["event_time"] and values["orders"] == expected["orders"]


def test_record_doubles_do_not_depend_on_the_order_spark_adds_them_in(spark):
    """``spend`` summed in another order differs in its last bits; the records (Spark's and pandas') round it,
    so the offline store's sync does not take a new plan for a changed record."""
    from mlops.etl import pandas_features

    orders = [0.1, 0.2, 0.3]
    sums = (sum(orders), sum(reversed(orders)))
    assert sums[0] != sums[1]
    columns = {name: [0, 0] for name, _ in CUSTOMER_HISTORY.columns} | {"spend": list(sums)}
    frame = pd.DataFrame({"customer_id": [1, 2], "t": [5_000_000, 5_000_000], **columns})
    frame[["country", "segment"]] = "x"
    spark_records = job._as_records(spark.createDataFrame(frame), CUSTOMER_HISTORY).toPandas()
    pandas_records = pandas_features._as_records(frame, CUSTOMER_HISTORY)
    for records in (spark_records, pandas_records):
        assert records["spend"].tolist() == [0.6, 0.6]


def _sorted(frame, group) -> pd.DataFrame:
    keys = [group.record_identifier, group.event_time]
    return frame.toPandas()[group.feature_names()].sort_values(keys).reset_index(drop=True)


def test_a_sync_appends_only_what_changed_and_deletes_what_the_source_no_longer_yields(spark, raw, tmp_path):
    from mlops.schema.snapshots import LakeFiles

    args, staging = {**job.JOB_DEFAULTS, **_args(tmp_path, raw)}, (tmp_path / "stage").as_uri()
    records = job.entity_records(job.load_latest_tables(spark, raw.as_uri()))
    job.sync_offline_store(spark, records, args, staging, LakeFiles())
    products = records[PRODUCT_HISTORY.name]
    kept, dropped, nulled = products.orderBy("product_id", "event_time").limit(3).collect()
    key = lambda row: (products.product_id == row["product_id"]) & (products.event_time == row["event_time"])  # noqa: E731
    changed_rows = spark.createDataFrame(
        [kept.asDict() | {"terminal_orders": 999}, nulled.asDict() | {"weight_kg": None}], schema=products.schema
    )  # a value that changes, and one that becomes null (values compare null-safe)
    now = products.filter(~key(kept) & ~key(dropped) & ~key(nulled)).unionByName(changed_rows)
    synced, uris, counts = job.sync_offline_store(
        spark, {**records, PRODUCT_HISTORY.name: now}, args, staging, LakeFiles()
    )
    assert counts[CUSTOMER_HISTORY.name]["rows"] == 0, "an unchanged group appends nothing"
    assert counts[PRODUCT_HISTORY.name]["rows"] == 3, "two changed records and one deletion"
    expected = _sorted(now, PRODUCT_HISTORY)
    pd.testing.assert_frame_equal(_sorted(synced[PRODUCT_HISTORY.name], PRODUCT_HISTORY), expected, check_dtype=False)
    read = job.read_offline_store(spark, uris)[PRODUCT_HISTORY.name]
    pd.testing.assert_frame_equal(_sorted(read, PRODUCT_HISTORY), expected, check_dtype=False)


def test_the_compacted_copy_stands_in_for_the_files_it_covers_and_never_hides_the_store(spark, raw, tmp_path, capsys):
    """A later sync reads the compacted copy instead of every hourly file; a file another writer added since
    (SageMaker's replication of a put) is read on top of it; a copy covering a file the store lacks is not used."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops.schema.snapshots import LakeFiles

    args, staging = {**job.JOB_DEFAULTS, **_args(tmp_path, raw)}, (tmp_path / "stage").as_uri()
    records = job.entity_records(job.load_latest_tables(spark, raw.as_uri()))
    _, uris, first = job.sync_offline_store(spark, records, args, staging, LakeFiles())
    copies = sorted((tmp_path / "curated" / "feature-store").rglob("compacted/*/_covers.json"))
    assert len(copies) == len(FEATURE_GROUPS)
    capsys.readouterr()
    synced, _, again = job.sync_offline_store(spark, records, args, staging, LakeFiles())
    log = capsys.readouterr().out
    assert log.count("(compacted copy ") == len(FEATURE_GROUPS) and "newer files" not in log, log
    assert all(again[g.name] == {"files": 0, "rows": 0} for g in FEATURE_GROUPS)
    for group in FEATURE_GROUPS:
        pd.testing.assert_frame_equal(_sorted(synced[group.name], group), _sorted(records[group.name], group))

    # another writer deletes one product record: the next sync sees the deletion and writes the record back
    data = Path(uris[PRODUCT_HISTORY.name].removeprefix("file://"))
    victim = records[PRODUCT_HISTORY.name].orderBy("product_id", "event_time").first().asDict()
    now = pd.Timestamp.now(tz="UTC")  # after the syncs so far, before the next
    row = {**victim, "write_time": now, "api_invocation_time": now, "is_deleted": True}
    schema = job._arrow_schema(PRODUCT_HISTORY)
    hour = pd.Timestamp(victim["event_time"], unit="s", tz="UTC")
    folder = data / f"year={hour:%Y}/month={hour:%m}/day={hour:%d}/hour={hour:%H}"
    pq.write_table(pa.Table.from_pylist([row], schema=schema), folder / "replicated.parquet")
    capsys.readouterr()
    synced, _, healed = job.sync_offline_store(spark, records, args, staging, LakeFiles())
    assert "+ 1 newer files" in capsys.readouterr().out
    assert healed[PRODUCT_HISTORY.name]["rows"] == 1 and healed[CUSTOMER_HISTORY.name]["rows"] == 0
    expected = _sorted(records[PRODUCT_HISTORY.name], PRODUCT_HISTORY)
    pd.testing.assert_frame_equal(_sorted(synced[PRODUCT_HISTORY.name], PRODUCT_HISTORY), expected)

    # a covered file removed from the store: the copy no longer matches it, every file is read again
    gone = next(path for path in sorted(data.rglob("*.parquet")) if path.parent != folder)
    lost = pd.read_parquet(gone)
    gone.unlink()
    capsys.readouterr()
    synced, _, rebuilt = job.sync_offline_store(spark, records, args, staging, LakeFiles())
    assert "files the store lacks" in capsys.readouterr().out
    assert rebuilt[PRODUCT_HISTORY.name]["rows"] == int((~lost["is_deleted"]).sum()) > 0
    pd.testing.assert_frame_equal(_sorted(synced[PRODUCT_HISTORY.name], PRODUCT_HISTORY), expected)
    read = job.read_offline_store(spark, uris)[PRODUCT_HISTORY.name]
    pd.testing.assert_frame_equal(_sorted(read, PRODUCT_HISTORY), expected, check_dtype=False)
    assert first[PRODUCT_HISTORY.name]["rows"] == records[PRODUCT_HISTORY.name].count()

    # a corrupt manifest (a truncated upload) makes the copy unusable, not the sync
    manifest = next((data.parent / "compacted").glob("*/_covers.json"))
    manifest.write_text('{"schema": "tru')
    capsys.readouterr()
    synced, _, after_corruption = job.sync_offline_store(spark, records, args, staging, LakeFiles())
    assert "has an unreadable manifest" in capsys.readouterr().out
    assert after_corruption[PRODUCT_HISTORY.name]["rows"] == 0
    pd.testing.assert_frame_equal(_sorted(synced[PRODUCT_HISTORY.name], PRODUCT_HISTORY), expected)


def test_where_sagemaker_writes_the_offline_store_the_job_only_reads_it(spark, raw, tmp_path):
    from mlops.schema.snapshots import LakeFiles

    args = {**job.JOB_DEFAULTS, **_args(tmp_path, raw), "offline_store_writer": "feature-store"}
    staging, store = (tmp_path / "stage").as_uri(), tmp_path / "curated" / "feature-store"
    records = job.entity_records(job.load_latest_tables(spark, raw.as_uri()))
    with pytest.raises(ValueError, match=r"no offline store of feature group .*PutRecord"):
        job.offline_store_records(spark, records, args, staging, LakeFiles())
    job.sync_offline_store(spark, records, {**args, "offline_store_writer": "job"}, staging, LakeFiles())
    stored = sorted(store.rglob("*.parquet"))
    read, _uris, appended = job.offline_store_records(spark, records, args, staging, LakeFiles())
    assert appended == {} and sorted(store.rglob("*.parquet")) == stored, "a reader writes nothing"
    for group in FEATURE_GROUPS:
        pd.testing.assert_frame_equal(_sorted(read[group.name], group), _sorted(records[group.name], group))
    with pytest.raises(ValueError, match="--offline_store_writer must be one of"):
        job.offline_store_records(spark, records, {**args, "offline_store_writer": "glue"}, staging, LakeFiles())


class _FakeSageMaker:
    """``describe_feature_group`` answering as SageMaker does for the groups in ``folders`` (name -> data URI),
    ResourceNotFound (botocore's ClientError shape) for any other."""

    def __init__(self, folders: dict[str, str]) -> None:
        self.folders, self.calls = folders, []

    def describe_feature_group(self, **request):
        self.calls.append(request)
        name = request["FeatureGroupName"]
        if name not in self.folders:
            error = Exception(f"{name} not found")
            error.response = {"Error": {"Code": "ResourceNotFound", "Message": "not found"}}
            raise error
        store = {"S3Uri": "s3://lake/curated/feature-store", "ResolvedOutputS3Uri": self.folders[name]}
        offline = {"S3StorageConfig": store}
        return {"FeatureGroupName": name, "FeatureGroupStatus": "Created", "OfflineStoreConfig": offline}


def test_on_aws_the_job_appends_to_the_folders_feature_store_resolved(spark, raw, tmp_path, monkeypatch):
    """``--offline_store_uri featurestore://<region>``: each group's folder is DescribeFeatureGroup's
    ResolvedOutputS3Uri (here file:// folders), the job appends there and trains from what it holds; a group
    that does not exist fails before anything is written, naming the stack that creates it."""
    import sys
    import types

    from mlops.schema.snapshots import LakeFiles

    created = {g.name: tmp_path / "store" / f"mlops-dev-{g.name}-1767225600" / "data" for g in FEATURE_GROUPS}
    fake = _FakeSageMaker({f"mlops-dev-{name}": path.as_uri() for name, path in created.items()})
    regions = []
    boto3 = types.SimpleNamespace(client=lambda service, region_name: regions.append((service, region_name)) or fake)
    monkeypatch.setitem(sys.modules, "boto3", boto3)
    args = {**job.JOB_DEFAULTS, **_args(tmp_path, raw), "offline_store_uri": "featurestore://eu-west-1",
            "feature_group_prefix": "mlops-dev"}  # fmt: skip
    staging = (tmp_path / "stage").as_uri()
    records = job.entity_records(job.load_latest_tables(spark, raw.as_uri()))
    synced, uris, appended = job.offline_store_records(spark, records, args, staging, LakeFiles())
    assert uris == {name: path.as_uri() for name, path in created.items()}
    assert set(regions) == {("sagemaker", "eu-west-1")}
    assert [c["FeatureGroupName"] for c in fake.calls] == [f"mlops-dev-{g.name}" for g in FEATURE_GROUPS]
    for group in FEATURE_GROUPS:
        assert appended[group.name]["rows"] == records[group.name].count() > 0
        assert list(created[group.name].rglob("year=*/month=*/day=*/hour=*/*.parquet"))
        pd.testing.assert_frame_equal(_sorted(synced[group.name], group), _sorted(records[group.name], group))
    before = sorted((tmp_path / "store").rglob("*.parquet"))
    with pytest.raises(ValueError, match=r"feature group mlops-qa-customer-history not found in eu-west-1: deploy"):
        job.offline_store_records(spark, records, {**args, "feature_group_prefix": "mlops-qa"}, staging, LakeFiles())
    assert sorted((tmp_path / "store").rglob("*.parquet")) == before


def test_hour_files_one_per_hour_and_rows_without_an_hour_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    hours = {"year": ["2025", "2025", "2025"], "month": ["01", "01", "02"], "day": ["03", "03", "01"]}
    table = pa.table({"customer_id": [1, 2, 3], **hours, "hour": ["07", "07", "00"]})
    written = job.write_hour_files(table, tmp_path.as_uri(), "a.parquet")
    assert sorted(written) == [
        ("year=2025/month=01/day=03/hour=07/a.parquet", 2),
        ("year=2025/month=02/day=01/hour=00/a.parquet", 1),
    ]
    first, second = (pq.ParquetFile(tmp_path / path).read() for path, _ in sorted(written))  # no path partitions
    assert first.column_names == ["customer_id"], "the hour is the folder, not a column"
    assert sorted(first.column("customer_id").to_pylist()) == [1, 2] and second.column("customer_id").to_pylist() == [3]
    assert job.write_hour_files(table.slice(0, 0), (tmp_path / "none").as_uri(), "a.parquet") == []
    missing = table.set_column(3, "day", pa.array(["03", None, "01"]))
    with pytest.raises(ValueError, match="1 offline-store rows have no event time"):
        job.write_hour_files(missing, (tmp_path / "bad").as_uri(), "a.parquet")
    assert not (tmp_path / "bad").exists(), "refused before any file is written"


def test_product_records_are_daily_and_the_day_in_progress_waits(spark):
    from mlops.etl import pandas_features

    day = pd.Timestamp("2025-03-05", tz="UTC")
    orders = pd.DataFrame({
        "order_id": [1, 2, 3, 4],
        "updated_at": [day + pd.Timedelta(hours=10), day + pd.Timedelta(hours=15),
                       day + pd.Timedelta(hours=33), day + pd.Timedelta(hours=36)],
        "status": ["delivered", "returned", "cancelled", "placed"],
    })  # fmt: skip
    orders["updated_at"] = orders["updated_at"].dt.tz_localize(None)  # naive UTC, as the raw tables hold it
    items = pd.DataFrame({"order_id": [1, 2, 2, 3, 4], "product_id": [7, 7, 7, 7, 7]})  # order 2 holds it twice
    products = pd.DataFrame({"product_id": [7], "category": ["toys"], "weight_kg": [0.5], "is_fragile": [False]})
    spark_records = job.product_records(*(spark.createDataFrame(f) for f in (orders, items, products))).toPandas()
    pandas_records = pandas_features.product_records(orders, items, products)
    columns = ["event_time", "terminal_orders", "returned_orders", "cancelled_orders"]
    for records in (spark_records, pandas_records):
        got = records.sort_values("event_time")[columns].to_numpy().tolist()
        day_end = ((day + pd.Timedelta(days=1)).value // 1000 - 1) / 1_000_000.0  # the day's last microsecond
        # the baseline, then day 1's two outcomes in one record; day 2 (a cancel, then the newest change at
        # 12:00) is still in progress: no record until the orders hold a change after it
        assert got == [[0.0, 0, 0, 0], [day_end, 2, 1, 0]], got
