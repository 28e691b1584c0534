"""The DMS S3-target layout (names, columns, types) and the DMS-shaped status against botocore's model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import botocore.session
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Column, Integer, LargeBinary, MetaData, Numeric, Table, insert

from mlops.config import PipelineConfig
from mlops.lake import Lake, local_path
from mlops.replication.lake_io import (
    LakeFS,
    arrow_type,
    cdc_file_name,
    cdc_object_key,
    change_seq_string,
    date_partition,
    dms_schema,
    load_file_name,
    next_cdc_file_name,
    parse_cdc_file_name,
)
from mlops.replication.replicator import LocalReplicator
from mlops.replication.values import decode_images
from mlops.source.db import create_schema, make_engine
from mlops.source.schema import customers, order_items, orders, products

CONFIG = PipelineConfig()


def test_full_load_and_cdc_file_names() -> None:
    assert load_file_name(1) == "LOAD00000001.parquet"
    assert load_file_name(12) == "LOAD00000012.parquet"
    ts = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert cdc_file_name(ts) == "20250102-030405678.parquet"
    assert parse_cdc_file_name("20250102-030405678.parquet") == ts.replace(microsecond=678000)
    with pytest.raises(ValueError, match="must start at 1"):
        load_file_name(0)
    with pytest.raises(ValueError, match="not a CDC file name"):
        parse_cdc_file_name("LOAD00000001.parquet")


def test_cdc_files_go_into_date_folders_of_their_commit_time() -> None:
    ts = datetime(2025, 1, 2, 23, 59, 59, tzinfo=UTC)
    assert date_partition(ts, "YYYYMMDD", "SLASH") == "2025/01/02"
    assert date_partition(ts.astimezone(timezone(timedelta(hours=2))), "YYYYMMDD", "SLASH") == "2025/01/02"  # UTC
    assert date_partition(ts, "DDMMYYYY", "DASH") == "02-01-2025"
    assert date_partition(ts, "YYYYMMDDHH", "NONE") == "2025010223"
    assert cdc_object_key("20250102-235959000.parquet", "YYYYMMDD", "SLASH") == "2025/01/02/20250102-235959000.parquet"
    with pytest.raises(ValueError, match="not a DMS setting"):
        date_partition(ts, "YYYY-MM", "SLASH")
    with pytest.raises(ValueError, match="not a DMS setting"):
        date_partition(ts, "YYYYMMDD", "PIPE")


def test_cdc_names_strictly_increase_even_when_commit_times_do_not() -> None:
    ts = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    first = next_cdc_file_name(ts, None)
    same = next_cdc_file_name(ts, first)
    earlier = next_cdc_file_name(ts - timedelta(hours=1), same)
    later = next_cdc_file_name(ts + timedelta(seconds=1), earlier)
    assert first < same < earlier < later
    assert same == "20250102-030405001.parquet"


def test_change_seq_strings_sort_like_numbers() -> None:
    values = [0, 9, 10, 123456789, 10**19]
    assert [change_seq_string(v) for v in values] == sorted(change_seq_string(v) for v in values)
    assert change_seq_string(0) == "0" * 20
    with pytest.raises(ValueError, match="does not fit"):
        change_seq_string(10**20)


def test_file_schema_has_dms_columns_then_source_columns_in_order() -> None:
    schema = dms_schema(orders, "dms_commit_ts")
    assert schema.names == ["Op", "dms_commit_ts", "dms_change_seq", *(c.name for c in orders.columns)]
    assert schema.field("dms_commit_ts").type == pa.string()  # DMS writes TimestampColumnName as text
    assert schema.field("order_id").type == pa.int64()
    assert schema.field("promised_days").type == pa.int16()
    assert schema.field("shipping_fee").type == pa.decimal128(8, 2)
    assert schema.field("order_ts").type == pa.timestamp("us")
    assert dms_schema(customers, "ts").field("marketing_opt_in").type == pa.bool_()
    assert dms_schema(products, "ts").field("weight_kg").type == pa.decimal128(8, 3)


def test_unsupported_columns_are_rejected_with_the_fix() -> None:
    meta = MetaData()
    blob = Table("blobs", meta, Column("id", Integer, primary_key=True), Column("data", LargeBinary))
    with pytest.raises(ValueError, match=r"blobs.data .* use Integer"):
        arrow_type(blob.c.data)
    loose = Table("loose", meta, Column("amount", Numeric()))
    with pytest.raises(ValueError, match=r"Numeric needs precision and scale"):
        arrow_type(loose.c.amount)
    clash = Table("clash", meta, Column("Op", Integer))
    with pytest.raises(ValueError, match="rename them"):
        dms_schema(clash, "dms_commit_ts")


def test_json_row_images_round_trip_exactly() -> None:
    schema = pa.schema(list(dms_schema(order_items, "ts"))[3:])
    images = pa.array(
        [
            '{"order_item_id": 1, "order_id": 2, "product_id": 3, "quantity": 4, "unit_price": "19.99", '
            '"discount_pct": 12.50, "updated_at": "2025-01-01 10:00:00.123456"}',
            '{"order_item_id": 2, "order_id": 2, "product_id": 3, "quantity": 1, "unit_price": 20, '
            '"discount_pct": null, "updated_at": "2025-01-01T10:00:00", "dropped_column": 1}',
            '{"order_item_id": 3}',
        ]
    )
    decoded = decode_images(images, schema, "order_items", key="order_item_id")
    table = decoded.rows
    assert decoded.rejected == [] and decoded.kept.tolist() == [0, 1, 2]
    assert table.schema.names == schema.names
    assert table["unit_price"].to_pylist() == [Decimal("19.99"), Decimal("20.00"), None]
    assert table["discount_pct"].to_pylist() == [Decimal("12.50"), None, None]
    assert table["quantity"].type == pa.int16()
    assert table["updated_at"].to_pylist() == [datetime(2025, 1, 1, 10, 0, 0, 123456), datetime(2025, 1, 1, 10), None]
    sliced = decode_images(pa.chunked_array([images.slice(1, 1), images.slice(2)]), schema, "order_items", key="x")
    assert sliced.rows["order_item_id"].to_pylist() == [2, 3]


def test_atomic_write_replaces_and_leaves_no_staging_file(tmp_path: Path) -> None:
    lake = LakeFS.from_uri((tmp_path / "lake dir").as_uri())
    schema = pa.schema([("x", pa.int64())])
    final = f"{lake.root_uri}/raw/t/LOAD00000001.parquet"
    for values in ([1, 2], [3]):
        batch = pa.record_batch([pa.array(values)], schema=schema)
        lake.write_atomically(f"{lake.root_uri}/_staging/t/LOAD00000001.parquet", final, schema, [batch])
    assert pq.read_table(tmp_path / "lake dir/raw/t/LOAD00000001.parquet")["x"].to_pylist() == [3]
    assert list((tmp_path / "lake dir/_staging").rglob("*.parquet")) == []
    assert [i.base_name for i in lake.data_files(f"{lake.root_uri}/raw/t")] == ["LOAD00000001.parquet"]


def test_failed_write_publishes_nothing(tmp_path: Path) -> None:
    lake = LakeFS.from_uri(tmp_path.as_uri())
    schema = pa.schema([("x", pa.int64())])

    def batches() -> Any:
        yield pa.record_batch([pa.array([1])], schema=schema)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        lake.write_atomically(
            f"{lake.root_uri}/_staging/a.parquet", f"{lake.root_uri}/raw/a.parquet", schema, batches()
        )
    assert list(tmp_path.rglob("*.parquet")) == []


def test_full_load_files_columns_and_values(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    create_schema(engine)
    ts = datetime(2025, 5, 6, 7, 8, 9, 101112)
    with engine.begin() as conn:
        conn.execute(
            insert(products),
            [
                dict(product_id=i, sku=f"S{i}", category="home", unit_price=Decimal("10.05"),
                     weight_kg=None if i == 1 else Decimal("2.500"), is_fragile=i == 2, updated_at=ts)
                for i in range(1, 4)
            ],
        )  # fmt: skip
    lake = Lake(root=(tmp_path / "lake").as_uri(), layout=CONFIG.lake)
    replicator = LocalReplicator(CONFIG, engine, lake, state_dir=tmp_path / "dms", max_rows_per_file=2)
    result = replicator.full_load()
    folder = local_path(lake.raw_table("shop", "products"))
    assert sorted(p.name for p in folder.iterdir()) == ["LOAD00000001.parquet", "LOAD00000002.parquet"]
    table = pq.read_table(folder)
    assert table.schema.equals(dms_schema(products, "dms_commit_ts"), check_metadata=False)
    assert set(table["Op"].to_pylist()) == {"I"}
    assert set(table["dms_change_seq"].to_pylist()) == {"0" * 20}
    assert table["dms_commit_ts"][0].as_py() == result.started.strftime("%Y-%m-%d %H:%M:%S.%f")
    assert table["weight_kg"].to_pylist() == [None, Decimal("2.500"), Decimal("2.500")]
    assert table["is_fragile"].to_pylist() == [False, True, False]
    assert table["updated_at"].to_pylist() == [ts] * 3
    empty = pq.read_table(local_path(lake.raw_table("shop", "orders")) / "LOAD00000001.parquet")
    assert empty.num_rows == 0 and empty.schema.names[:3] == ["Op", "dms_commit_ts", "dms_change_seq"]


def test_bad_replicator_settings_name_the_fix(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    lake = Lake(root=tmp_path.as_uri(), layout=CONFIG.lake)
    bad_tables = CONFIG.model_copy(update={"replication": CONFIG.replication.model_copy(update={"tables": ("nope",)})})
    with pytest.raises(ValueError, match=r"replication.tables lists \['nope'\]"):
        LocalReplicator(bad_tables, engine, lake)
    no_op = CONFIG.model_copy(
        update={"replication": CONFIG.replication.model_copy(update={"include_op_for_full_load": False})}
    )
    with pytest.raises(ValueError, match="set it to true"):
        LocalReplicator(no_op, engine, lake)
    with pytest.raises(ValueError, match="must be at least 1"):
        LocalReplicator(CONFIG, engine, lake, max_rows_per_file=0)


# --- status shapes against botocore's DMS service model ------------------------------------------

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "double": (float, int),
    "timestamp": (datetime,),
}


def assert_matches_shape(value: Any, shape: Any, path: str) -> None:
    """Every key exists in the botocore shape and every value has the shape's type."""
    if shape.type_name == "structure":
        assert isinstance(value, dict), path
        unknown = set(value) - set(shape.members)
        assert not unknown, f"{path}: keys {unknown} are not in botocore's {shape.name}"
        for key, item in value.items():
            assert_matches_shape(item, shape.members[key], f"{path}.{key}")
    elif shape.type_name == "list":
        assert isinstance(value, list), path
        for i, item in enumerate(value):
            assert_matches_shape(item, shape.member, f"{path}[{i}]")
    else:
        expected = _PY_TYPES[shape.type_name]
        ok = isinstance(value, expected) and not (shape.type_name in ("integer", "long") and isinstance(value, bool))
        assert ok, f"{path}: {value!r} is not a {shape.type_name}"
        if shape.type_name == "timestamp":
            assert value.tzinfo is not None, f"{path}: boto3 returns timezone-aware timestamps"
        if getattr(shape, "enum", None):
            assert value in shape.enum, f"{path}: {value!r} not in {shape.enum}"


def test_status_matches_the_dms_response_shapes(sqlite_url: str, tmp_path: Path) -> None:
    model = botocore.session.get_session().get_service_model("dms")
    tasks_shape = model.operation_model("DescribeReplicationTasks").output_shape
    stats_shape = model.operation_model("DescribeTableStatistics").output_shape
    engine = make_engine(sqlite_url)
    create_schema(engine)
    lake = Lake(root=(tmp_path / "lake").as_uri(), layout=CONFIG.lake)
    replicator = LocalReplicator(CONFIG, engine, lake, state_dir=tmp_path / "dms")

    ready = replicator.status()
    assert ready["tasks"]["ReplicationTasks"][0]["Status"] == "ready"
    assert ready["cdc_lag_seconds"] is None
    statuses = [ready]
    for _ in ("full load", "cdc"):
        replicator.sync()
        statuses.append(replicator.status())
    for status in statuses:
        assert_matches_shape(status["tasks"], tasks_shape, "DescribeReplicationTasks")
        assert_matches_shape(status["table_statistics"], stats_shape, "DescribeTableStatistics")

    task = status["tasks"]["ReplicationTasks"][0]
    assert task["ReplicationTaskArn"] == "arn:aws:dms:local:000000000000:task:mlops-source-to-lake"
    assert task["ReplicationTaskArn"] == replicator.task_arn
    assert (task["Status"], task["MigrationType"]) == ("running", "full-load-and-cdc")
    stats = task["ReplicationTaskStats"]
    assert (stats["FullLoadProgressPercent"], stats["TablesLoaded"], stats["TablesErrored"]) == (100, 4, 0)
    assert stats["FullLoadStartDate"] <= stats["FullLoadFinishDate"]
    assert "$AR_H_CHANGE_SEQ" in task["TableMappings"]
    tables = status["table_statistics"]["TableStatistics"]
    assert [(t["SchemaName"], t["TableName"], t["TableState"]) for t in tables] == [
        ("shop", name, "Table completed") for name in CONFIG.replication.tables
    ]
    assert {(t["ValidationState"], t["ValidationFailedRecords"]) for t in tables} == {("Validated", 0)}
    assert ready["table_statistics"]["TableStatistics"][0]["ValidationState"] == "Pending validation"
    assert replicator.describe_replication_tasks()["ReplicationTasks"][0]["Status"] == "running"
    assert len(replicator.describe_table_statistics()["TableStatistics"]) == 4


def test_corrupt_status_file_names_the_fix(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    replicator = LocalReplicator(CONFIG, engine, Lake(root=tmp_path.as_uri(), layout=CONFIG.lake), state_dir=tmp_path)
    (tmp_path / "mlops-source-to-lake.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"corrupt .* delete it"):
        replicator.status()
