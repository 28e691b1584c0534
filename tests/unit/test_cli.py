"""The `mlops` CLI drives the local stand-ins: generate, replicate, activity, status, models."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mlops import cli
from mlops.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    # the console read COLUMNS when mlops.cli was first imported, maybe by another test of this process
    monkeypatch.setattr(cli.console, "width", 200)


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_generate_replicate_activity_status(tmp_path):
    assert "orders" in invoke("generate", "--orders", "500", "--seed", "3")
    assert '"kind": "full-load"' in invoke("replicate")
    assert '"deletes"' in invoke("activity", "--steps", "2")
    replicated = invoke("replicate")
    assert '"kind": "cdc"' in replicated and '"orders": "Validated"' in replicated
    status = invoke("status")
    assert "status=running" in status and "Table completed" in status and "Validated" in status
    assert (tmp_path / "lake" / "raw" / "dms" / "shop" / "orders" / "LOAD00000001.parquet").exists()


def test_bad_input_is_a_clear_error():
    result = runner.invoke(app, ["generate", "--orders", "5"])
    assert result.exit_code == 2
    assert "orders" in result.output
    result = runner.invoke(app, ["models", "approve", "4"])
    assert result.exit_code == 2
    assert "no version 4" in result.output


def test_models_list_is_empty_on_a_new_registry():
    assert "mlops-order-outcome" in invoke("models", "list")


def test_endpoints_list_on_a_new_home():
    assert "invocation URL" in invoke("endpoints", "list")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--orders", "-1"], "orders must be an integer"),
        (["--orders", "0"], "orders must be an integer"),
        (["--seed", "-3"], "seed must be a non-negative integer"),
    ],
)
def test_bad_generate_arguments_leave_the_source_untouched(args, named):
    """Validation comes first: a bad size or seed never empties an existing source DB."""
    from mlops.local_stack import source_engine
    from mlops.source.db import table_counts

    invoke("generate", "--orders", "300", "--seed", "3")
    before = table_counts(source_engine())
    result = runner.invoke(app, ["generate", *args])
    assert result.exit_code == 2 and named in result.output, result.output
    assert table_counts(source_engine()) == before and before["orders"] == 300


def test_demo_refuses_size_zero_instead_of_defaulting():
    from mlops_tools.demo import main

    with pytest.raises(SystemExit) as exit_:
        main(["--size", "0"])
    assert exit_.value.code == 2


def test_generate_on_a_replicated_home_names_the_reload_and_the_reload_fixes_it(tmp_path):
    """Issue 13: `mlops generate` on an already-replicated home wedged replication; now the reload is one command."""
    invoke("generate", "--orders", "300", "--seed", "3")
    invoke("replicate")
    regenerated = invoke("generate", "--orders", "400", "--seed", "4")
    assert "mlops replicate --reload" in regenerated
    wedged = runner.invoke(app, ["replicate"])
    assert wedged.exit_code == 2
    assert "is gone from the source DB" in wedged.output and "mlops replicate --reload" in wedged.output
    reloaded = invoke("replicate", "--reload")
    assert '"orders": "Validated"' in reloaded
    assert "Validated" in invoke("status")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["replicate", "orders"], "only for --reload"),
        (["replicate", "--reload", "order"], "cannot reload ['order']"),
        (["replicate", "--deadline", "0"], "--deadline"),
        (["activity", "--steps", "0"], "--steps"),
        (["activity", "--steps", "100000"], "steps must be an integer from 1 to"),
        (["activity", "--seed", "-1"], "seed must be a non-negative integer"),
    ],
)
def test_bad_replicate_and_activity_arguments_change_nothing(tmp_path, args, named):
    """Validation comes first (13.1): a bad argument never reaches the source, the lake or the task."""
    from mlops.local_stack import source_engine
    from mlops.source.db import table_counts

    invoke("generate", "--orders", "300", "--seed", "3")
    invoke("replicate")
    lake = tmp_path / "lake"
    files = sorted((p.relative_to(lake), p.stat().st_mtime_ns) for p in lake.rglob("*.parquet"))
    task = (tmp_path / "dms" / "mlops-source-to-lake.json").read_text()
    counts = table_counts(source_engine())
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and named in result.output, result.output
    assert sorted((p.relative_to(lake), p.stat().st_mtime_ns) for p in lake.rglob("*.parquet")) == files
    assert (tmp_path / "dms" / "mlops-source-to-lake.json").read_text() == task
    assert table_counts(source_engine()) == counts


def test_replicate_reloads_one_table_and_catches_up(tmp_path):
    invoke("generate", "--orders", "300", "--seed", "3")
    invoke("replicate")
    invoke("activity", "--steps", "2")
    output = invoke("replicate", "--reload", "orders")
    assert '"kind": "cdc"' in output and '"pending_changes": 0' in output
    assert '"orders": "Validated"' in output
    assert "FullLoadReloaded" not in output  # the JSON result, not the statistics; status shows them
