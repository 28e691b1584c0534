"""Task bodies of the mlops_train DAG: the job requests of the run (what each task does: the DAG's doc_md)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from mlops_airflow.rendered import as_dict

if TYPE_CHECKING:
    from airflow.sdk import Context


def s3_client(conn_id: str | None) -> Any:
    """The provider's S3Hook client of ``conn_id`` (made only when the lake is on S3)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=conn_id).get_conn()


def trigger_line(asset: str, extra: dict[str, Any]) -> str:
    """What started this run, for the log: the asset, the trigger named in its event and the evidence."""
    keys = ("reason", "map", "threshold", "labelled", "drift_share", "model_version", "new_labelled",
            "new_labelled_threshold", "labels_after")  # fmt: skip
    evidence = {k: extra[k] for k in keys if extra.get(k) is not None}
    return f"triggered by {asset} ({extra.get('trigger', 'new data')}): {evidence}"


def plan_training(context: Context) -> dict[str, Any]:
    """Curated features from the triggering event (else config), code published, CreateTrainingJob built."""
    from mlops.aws.sagemaker_requests import resolve_image_uri
    from mlops.training.steps import recent_window, training_plan
    from mlops_airflow.assets import triggering_events
    from mlops_airflow.targets import lake, pipeline_config

    config, the_lake = pipeline_config(), lake()
    curated_uri, recent = the_lake.curated("features"), None
    for asset, extra in triggering_events(context):  # oldest first: the newest event's data wins
        curated_uri = extra.get("curated_uri", curated_uri)
        recent = recent_window(extra) or recent
        print(trigger_line(asset, extra), flush=True)
    plan = training_plan(
        config,
        the_lake,
        run_id=context["run_id"],
        run_after=context["dag_run"].run_after,
        curated_uri=curated_uri,
        image_uri=resolve_image_uri(config.training, config.aws.region),
        hyperparameters=as_dict(context["params"].get("hyperparameters")),
        s3=functools.cache(functools.partial(s3_client, config.aws.conn_id)),  # built once, only if on S3
    )
    return {**plan, "recent": recent} if recent else plan


def plan_evaluation(
    context: Context, plan: dict[str, Any], training: dict[str, Any], champion: dict[str, Any]
) -> dict[str, Any]:
    """The CreateProcessingJob request of the evaluation job for the trained model (and the champion)."""
    from mlops.training.steps import evaluation_request
    from mlops_airflow.targets import lake, pipeline_config

    return evaluation_request(
        pipeline_config(),
        lake(),
        plan=plan,
        training=training["Training"],
        champion=champion or None,
        run_id=context["run_id"],
        run_after=context["dag_run"].run_after,
    )
