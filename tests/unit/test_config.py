"""The pipeline config: defaults load, env overrides apply, and every bad key is named."""

from __future__ import annotations

import pytest

from mlops.config import ConfigError, load_config
from mlops.lake import Lake, local_path


def test_default_config_loads():
    config = load_config(environ={})
    assert config.source.schema_name == "shop"
    assert config.replication.tables == ("customers", "products", "orders", "order_items")


def test_env_override_is_typed():
    config = load_config(environ={"MLOPS__REPLICATION__MAX_CDC_LAG_SECONDS": "60", "MLOPS__SOURCE__SEED": "7"})
    assert config.replication.max_cdc_lag_seconds == 60
    assert config.source.seed == 7


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"MLOPS__SOURCE__ORDRES": "10"}, "source.ordres: unknown key"),
        ({"MLOPS__SOURCE__ORDERS": "ten"}, "source.orders"),
        ({"MLOPS__SOURCE__ORDERS": "50"}, "source.orders"),
        ({"MLOPS__REPLICATION__TABLES": "[]"}, "replication.tables"),
        ({"MLOPS__REPLICATION__TABLES": "[orders, orders]"}, "replication.tables"),
        ({"MLOPS__AWS__LAKE_BUCKET": "Not_A_Bucket"}, "aws.lake_bucket"),
        ({"MLOPS__AWS__DMS_REPLICATION_TASK_ARN": "task-1"}, "aws.dms_replication_task_arn"),
        ({"MLOPS__LAKE__RAW_PREFIX": "/abs/path"}, "lake.raw_prefix"),
        ({"MLOPS__NOSECTION__KEY": "1"}, "nosection: unknown key"),
    ],
)
def test_bad_values_name_the_key(environ, named):
    with pytest.raises(ConfigError) as error:
        load_config(environ=environ)
    assert named in str(error.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, environ={})
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(scalar, environ={})


def test_lake_layout_is_the_same_on_both_targets(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    config = load_config(environ={})
    local = Lake.for_target(config, "local")
    aws = Lake.for_target(config, "aws")
    assert aws.raw_table("shop", "orders") == "s3://mlops-lake-dev/raw/dms/shop/orders"
    assert local.raw_table("shop", "orders") == (tmp_path / "lake/raw/dms/shop/orders").as_uri()
    assert local_path(local.curated("features")) == tmp_path / "lake" / "curated" / "features"
    with pytest.raises(ValueError, match="not a local file"):
        local_path(aws.curated("features"))
