"""Step caching: hits when data, code and hyperparameters are unchanged; misses otherwise; `force` reruns."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.config import load_config
from mlops.lake import Lake, local_path
from mlops.training import cache, steps, synthetic

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from mlops_airflow.targets import pipeline_config

    home = tmp_path_factory.mktemp("cache-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        patch.setenv("MLOPS_TARGET", "local")
        pipeline_config.cache_clear()
        config = load_config()
        lake = Lake.for_target(config, "local")
        synthetic.write_dataset(synthetic.curated_features(1500, seed=9), local_path(lake.curated("features")))

        def plan(run_id: str, **hyperparameters):
            return steps.training_plan(
                config,
                lake,
                run_id=run_id,
                run_after="2026-11-24T12:00:00",
                curated_uri=lake.curated("features"),
                image_uri="local/sklearn:1.2-1",
                hyperparameters={"n_estimators": 20, "num_leaves": 7, **hyperparameters},
            )

        yield {"config": config, "lake": lake, "plan": plan, "home": home}
        pipeline_config.cache_clear()


def _train(request, force=False):
    from mlops_airflow.operators.training_local import LocalTrainingJobOperator

    return LocalTrainingJobOperator(task_id="train", config=request, force=force).execute({})


def test_key_ignores_per_run_fields_but_not_inputs(env):
    first, second = env["plan"]("run-a")["training_request"], env["plan"]("run-b")["training_request"]
    assert first["TrainingJobName"] != second["TrainingJobName"]
    assert cache.cache_key(first)[0] == cache.cache_key(second)[0]
    other_hp = env["plan"]("run-c", learning_rate=0.2)["training_request"]
    assert cache.cache_key(other_hp)[0] != cache.cache_key(first)[0]


def test_operator_misses_then_hits_then_force_reruns(env, capfd):
    first = _train(env["plan"]("run-1")["training_request"])
    assert first["CacheHit"] is False and first["Training"]["TrainingJobStatus"] == "Completed"
    assert "Step cache miss" in capfd.readouterr().out

    request = env["plan"]("run-2")["training_request"]
    hit = _train(request)
    assert hit["CacheHit"] is True and hit["CacheKey"] == first["CacheKey"]
    assert hit["Training"]["TrainingJobName"] == first["Training"]["TrainingJobName"]  # the earlier job's outputs
    assert "Step cache HIT" in capfd.readouterr().out
    assert not (env["home"] / "sagemaker" / "training" / request["TrainingJobName"]).exists()  # nothing ran

    forced = _train(env["plan"]("run-3")["training_request"], force="True")
    assert forced["CacheHit"] is False and "force=True" in capfd.readouterr().out
    assert forced["Training"]["TrainingJobName"] != first["Training"]["TrainingJobName"]


def test_changed_data_snapshot_misses(env):
    request = env["plan"]("run-4")["training_request"]
    before = cache.cache_key(request)[0]
    train_dir = local_path(env["lake"].curated("features")) / "split=train"
    extra = synthetic.curated_features(50, seed=99)
    extra.drop(columns="split").to_parquet(train_dir / "part-1.parquet", index=False)
    try:
        assert cache.cache_key(request)[0] != before
    finally:
        (train_dir / "part-1.parquet").unlink()
    assert cache.cache_key(request)[0] == before


def test_entry_whose_outputs_vanished_is_a_miss(env, tmp_path: Path):
    step_cache = cache.StepCache(tmp_path.as_uri())
    describe = {"TrainingJobName": "j", "ModelArtifacts": {"S3ModelArtifacts": (tmp_path / "model.tar.gz").as_uri()}}
    (tmp_path / "model.tar.gz").write_bytes(b"x")
    step_cache.store("training", "k1", describe, {})
    assert step_cache.lookup("training", "k1")["describe"] == describe
    (tmp_path / "model.tar.gz").unlink()
    assert step_cache.lookup("training", "k1") is None
    assert step_cache.lookup("training", "unknown") is None
