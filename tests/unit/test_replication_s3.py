"""The same replicator, latest-state reader, validation and fresh-object counts on an ``s3://`` lake.

S3 is a moto server on 127.0.0.1; pyarrow and boto3 reach it through ``AWS_ENDPOINT_URL``. The
boto3 lister (what the aws check runs on the MWAA worker) and the pyarrow one (local) agree.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, update

from mlops.config import PipelineConfig
from mlops.lake import Lake
from mlops.replication.fresh_objects import count_fresh_s3_objects
from mlops.replication.lake_io import count_fresh_objects, list_fresh_objects
from mlops.replication.reconcile import latest_state
from mlops.replication.replicator import LocalReplicator
from mlops.source.db import create_schema, make_engine
from mlops.source.schema import products

CONFIG = PipelineConfig()
BUCKET = "mlops-lake-test"


class ListedKeys:
    """A boto3 S3 client that records the keys ListObjectsV2 returned."""

    def __init__(self, client: Any) -> None:
        self.client, self.keys = client, []

    def list_objects_v2(self, **request: Any) -> dict[str, Any]:
        page = self.client.list_objects_v2(**request)
        self.keys += [item["Key"] for item in page.get("Contents", [])]
        return page


@pytest.fixture
def s3_lake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Lake]:
    """An empty bucket on a local moto S3 server, as the lake root."""
    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    try:
        yield Lake(root=f"s3://{BUCKET}", layout=CONFIG.lake)
    finally:
        server.stop()


def test_replication_into_an_s3_lake_reconciles(s3_lake: Lake, sqlite_url: str, tmp_path: Path) -> None:
    import boto3

    engine = make_engine(sqlite_url)
    create_schema(engine)
    ts = datetime(2025, 2, 3, 4, 5, 6)
    with engine.begin() as conn:
        conn.execute(
            insert(products),
            [
                dict(product_id=i, sku=f"P{i}", category="books", unit_price=Decimal("3.50"), weight_kg=None,
                     is_fragile=False, updated_at=ts)
                for i in range(1, 5)
            ],
        )  # fmt: skip
    replicator = LocalReplicator(CONFIG, engine, s3_lake, state_dir=tmp_path / "dms")
    before = datetime.now(UTC) - timedelta(seconds=1)
    replicator.sync()
    with engine.begin() as conn:
        conn.execute(update(products).where(products.c.product_id == 2).values(is_fragile=True, updated_at=ts))
    batch = replicator.sync()
    assert batch.files and all(uri.startswith(f"s3://{BUCKET}/raw/dms/shop/products/") for uri in batch.files)

    folder = s3_lake.raw_table("shop", "products")
    assert [row["is_fragile"] for row in latest_state(folder, "product_id").to_pylist()] == [False, True, False, False]
    assert batch.validation == dict.fromkeys(CONFIG.replication.tables, "Validated")
    raw = s3_lake.uri(CONFIG.lake.raw_prefix)
    fresh = list_fresh_objects(raw, before)
    assert f"{folder}/LOAD00000001.parquet" in fresh and batch.files[0] in fresh
    assert count_fresh_objects(raw, datetime.now(UTC) + timedelta(minutes=1)) == 0
    assert count_fresh_objects(s3_lake.staging(), None) == 0
    s3 = ListedKeys(boto3.client("s3"))
    schema_root = s3_lake.uri(CONFIG.lake.raw_prefix, "shop")  # what the aws check lists
    for since in (None, before, datetime.now(UTC) + timedelta(minutes=1)):
        assert count_fresh_s3_objects(s3, schema_root, since) == count_fresh_objects(schema_root, since)
    # A long-running task's older date folders are not listed again once a check has seen them.
    for day in range(1, 21):
        s3.client.put_object(Bucket=BUCKET, Key=f"raw/dms/shop/products/2025/01/{day:02d}/x.parquet", Body=b"x")
    s3.keys.clear()
    assert count_fresh_s3_objects(s3, schema_root, before) == count_fresh_objects(schema_root, before) - 20
    assert s3.keys and not [key for key in s3.keys if "/2025/01/" in key], "only recent date folders and LOAD files"
    with pytest.raises(ValueError, match="not an s3://bucket/prefix URI"):
        count_fresh_s3_objects(s3, "file:///tmp/lake", None)
