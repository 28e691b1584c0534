"""The pipeline config: defaults load, env overrides apply, and every bad key is named."""

from __future__ import annotations

import re
from pathlib import Path

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
        ({"MLOPS__AWS__DMS_MAX_ATTEMPTS": "60"}, "dms_sync may wait at most 2700s"),  # sensors never hog runs
        ({"MLOPS__MONITORING__SENSOR_TIMEOUT_MINUTES": "50"}, "monitoring.sensor_timeout_minutes"),
        ({"MLOPS__TRAINING__DECISION": "{objective: cost}"}, "objective 'cost' needs a cost_matrix"),
        ({"MLOPS__TRAINING__DECISION": "{objective: recall}"}, "training.decision.objective"),
        ({"MLOPS__TRAINING__DECISION": "{cost_matrix: {lost: {delivered: 1}}}"}, "'lost', which is not a label class"),
        ({"MLOPS__TRAINING__DECISION": "{cost_matrix: {returned: {delivered: -2}}}"}, "negative or NaN cost"),
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


def test_a_key_given_twice_in_the_file_is_an_error(tmp_path):
    text = (Path(load_config.__code__.co_filename).parents[1] / "pipeline.yaml").read_text()
    path = tmp_path / "pipeline.yaml"
    path.write_text(text + "\ntraining:\n  hyperparameters: {}\n")
    with pytest.raises(ConfigError, match=r"key 'training' appears twice \(first on line \d+\)"):
        load_config(path, environ={})


def test_a_key_given_twice_in_an_environment_variable_is_an_error():
    with pytest.raises(ConfigError, match=r"MLOPS__TRAINING__HYPERPARAMETERS is not valid YAML.*appears twice"):
        load_config(environ={"MLOPS__TRAINING__HYPERPARAMETERS": "{seed: 1, seed: 2}"})


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("{n_estimators: abc}", "n_estimators='abc' is not a valid int"),
        ("{n_estimators: 1.5}", "n_estimators=1.5 is not a valid int"),
        ("{learning_rate: .nan}", "learning_rate=nan is not a valid float"),
        ("{n_estimators: true}", "n_estimators=True is not a valid int"),
        ("{nestimators: 10}", "unknown hyperparameter 'nestimators'"),
    ],
)
def test_mistyped_hyperparameters_fail_at_load_naming_key_and_variable(value, named):
    with pytest.raises(ConfigError) as error:
        load_config(environ={"MLOPS__TRAINING__HYPERPARAMETERS": value})
    message = str(error.value)
    assert "training.hyperparameters" in message and named in message
    assert "from environment variable MLOPS__TRAINING__HYPERPARAMETERS" in message


def test_a_bad_value_in_the_file_names_the_file(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text("source:\n  orders: -1\n")
    with pytest.raises(ConfigError, match=rf"source.orders: .*from {re.escape(str(path))}"):
        load_config(path, environ={})


def test_typed_hyperparameters_are_coerced():
    config = load_config(environ={"MLOPS__TRAINING__HYPERPARAMETERS": "{n_estimators: '120', learning_rate: 0.1}"})
    assert config.training.hyperparameters == {"n_estimators": 120, "learning_rate": 0.1}


def test_the_capture_flush_lag_defaults_per_target_and_a_set_value_wins():
    """SageMaker delivers capture within minutes, the local writer within a second: unset, each target
    gets its own lag; a value in the file or an MLOPS__ variable applies to both."""
    monitoring = load_config(environ={}).monitoring
    assert monitoring.capture_flush_lag_seconds is None
    assert (monitoring.flush_lag_seconds("local"), monitoring.flush_lag_seconds("aws")) == (5, 300)
    chosen = load_config(environ={"MLOPS__MONITORING__CAPTURE_FLUSH_LAG_SECONDS": "120"}).monitoring
    assert (chosen.flush_lag_seconds("local"), chosen.flush_lag_seconds("aws")) == (120, 120)
    with pytest.raises(ConfigError, match="capture_flush_lag_seconds"):
        load_config(environ={"MLOPS__MONITORING__CAPTURE_FLUSH_LAG_SECONDS": "-1"})
