"""The training stage's steps as plain functions: publish code, build the job requests of a run,
gate and register. Operators call these; tests call them directly."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from mlops.aws import sagemaker_requests as requests
from mlops.config import PipelineConfig
from mlops.lake import Lake
from mlops.training import gate, lake_io
from mlops.training.channels import resolve_snapshot, split_channels

log = logging.getLogger(__name__)
LOCAL_ROLE_ARN = "arn:aws:iam::000000000000:role/mlops-local-sagemaker"


def wheelhouse_index(wheelhouse_uri: str, s3: Any = None) -> bytes:
    """The index of the wheelhouse ``make sagemaker-wheels`` wrote at ``wheelhouse_uri``, checked against the code."""
    from mlops.training.model_package import WHEELHOUSE_INDEX, check_wheelhouse_index

    index_uri = lake_io.join(wheelhouse_uri, WHEELHOUSE_INDEX)
    if not lake_io.exists(index_uri, s3):
        raise ValueError(f"training.wheelhouse_uri has no {WHEELHOUSE_INDEX} ({index_uri}); build and upload it with "
                         "`make sagemaker-wheels SAGEMAKER_WHEELS_UPLOAD=<that uri>`")  # fmt: skip
    index = lake_io.read_bytes(index_uri, s3)
    check_wheelhouse_index(json.loads(index))
    return index


def publish_source(lake: Lake, s3: Any = None, wheelhouse_uri: str = "", offline: bool = False) -> dict[str, str]:
    """Upload the script-mode bundle under its content hash (once): tarball for training, files for processing.

    With ``wheelhouse_uri`` the bundle carries the wheels the jobs and the endpoint install offline; its
    hash covers the code and the wheelhouse index (each wheel's sha256), so the wheels are read only when
    the bundle is new. ``offline`` (jobs in private subnets without NAT) refuses to publish without them.
    """
    from mlops.training.model_package import source_bundle, source_files, source_identity, wheelhouse_files

    if offline and not wheelhouse_uri:
        raise ValueError("the SageMaker jobs run in aws.subnet_ids, where nothing reaches PyPI: run `make "
                         "sagemaker-wheels SAGEMAKER_WHEELS_UPLOAD=s3://<artifacts-bucket>/sagemaker/wheelhouse` "
                         "and set training.wheelhouse_uri to that uri (infra/README.md)")  # fmt: skip
    index = wheelhouse_index(wheelhouse_uri, s3) if wheelhouse_uri else None
    sha = source_identity(index)
    prefix = lake.models("code", sha[:16])
    tarball = lake_io.join(prefix, "sourcedir.tar.gz")
    if not lake_io.exists(tarball, s3):
        read = lambda name: lake_io.read_bytes(lake_io.join(wheelhouse_uri, name), s3)  # noqa: E731
        wheelhouse = wheelhouse_files(index, read) if index is not None else None
        lake_io.upload_tree(source_files(wheelhouse), lake_io.join(prefix, "source"), s3)
        lake_io.write_bytes(tarball, source_bundle(wheelhouse)[0], s3)
    return {"source_uri": tarball, "code_uri": lake_io.join(prefix, "source") + "/", "code_sha256": sha}


def role_arn(config: PipelineConfig) -> str:
    """The SageMaker execution role: configured, else the local stand-in's placeholder."""
    return config.training.role_arn or LOCAL_ROLE_ARN


def training_plan(
    config: PipelineConfig,
    lake: Lake,
    *,
    run_id: str,
    run_after: datetime | str,
    curated_uri: str,
    image_uri: str,
    hyperparameters: dict[str, Any] | None = None,
    s3: Any = None,
) -> dict[str, Any]:
    """Everything the run's jobs need: channels, code location and the CreateTrainingJob request."""
    curated_uri = resolve_snapshot(curated_uri, s3)
    channels = split_channels(curated_uri, s3)
    code = publish_source(lake, s3, config.training.wheelhouse_uri, offline=bool(config.aws.subnet_ids))
    name = requests.job_name(config.training.job_name_prefix, "train", run_id, run_after)
    request = requests.training_job_request(
        config,
        name=name,
        image_uri=image_uri,
        role_arn=role_arn(config),
        source_uri=code["source_uri"],
        channels=channels,
        output_uri=lake.models("training"),
        hyperparameters=hyperparameters,
        tags={"mlops:run_id": run_id[:256], "mlops:stage": "training"},
    )
    return {
        "training_request": request,
        "channels": channels,
        "curated_uri": curated_uri,
        "image_uri": image_uri,
        **code,
    }


def evaluation_request(
    config: PipelineConfig,
    lake: Lake,
    *,
    plan: dict[str, Any],
    training: dict[str, Any],
    champion: dict[str, Any] | None,
    run_id: str,
    run_after: datetime | str,
) -> dict[str, Any]:
    """CreateProcessingJob evaluating the trained model (and the champion) on the test split."""
    name = requests.job_name(config.training.job_name_prefix, "eval", run_id, run_after)
    return requests.evaluation_job_request(
        config,
        name=name,
        image_uri=plan["image_uri"],
        role_arn=role_arn(config),
        code_uri=plan["code_uri"],
        model_uri=training["ModelArtifacts"]["S3ModelArtifacts"],
        test_uri=plan["channels"]["test"],
        output_uri=lake.models("evaluation", name),
        champion_model_uri=(champion or {}).get("model_data_url"),
        tags={"mlops:run_id": run_id[:256], "mlops:stage": "evaluation"},
        recent=plan.get("recent"),
    )


def recent_window(extra: dict[str, Any]) -> dict[str, Any] | None:
    """What a triggering event says about the present: its trigger and, for drift, the drift point
    (the start of the first drifted window of the streak that fired, else of the event's window)."""
    if not extra.get("trigger"):
        return None
    starts = [w["window_start"] for w in extra.get("windows") or [] if isinstance(w, dict) and w.get("window_start")]
    since = min(starts) if starts else extra.get("window_start")
    return {"trigger": str(extra["trigger"]), **({"since": str(since)} if since else {})}


def evaluation_outputs(processing: dict[str, Any], s3: Any = None) -> dict[str, Any]:
    """The evaluation documents a finished processing job wrote (champion's when present)."""
    output = processing["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    evaluation_uri = lake_io.join(output, "evaluation.json")
    champion_uri = lake_io.join(output, "champion_evaluation.json")
    champion = json.loads(lake_io.read_bytes(champion_uri, s3)) if lake_io.exists(champion_uri, s3) else None
    return {
        "evaluation_uri": evaluation_uri,
        "report_uri": lake_io.join(output, "report.html"),
        "challenger": json.loads(lake_io.read_bytes(evaluation_uri, s3)),
        "champion": champion,
    }


def decide(
    challenger: dict[str, Any],
    champion_doc: dict[str, Any] | None,
    champion: dict[str, Any] | None,
    *,
    threshold: float,
    tolerance: float,
) -> tuple[gate.GateDecision, str]:
    """The gate decision and its comparison table. The champion's mAP is re-measured on this test
    split; only when that failed does the registered value stand in (and the table says so)."""
    champion_map, note = None, ""
    if champion:
        if champion_doc and "error" not in champion_doc:
            champion_map = gate.gate_value(champion_doc)
        else:
            champion_map = champion.get("map")
            reason = (champion_doc or {}).get("error", "no document")
            note = f"\nnote: champion not re-scored on this split ({reason}); using its registered mAP"
    comparable = champion_doc if champion_doc and "error" not in champion_doc else None
    challenger_map, basis = gate.gate_value(challenger), "test split"
    recent = gate.recent_maps(challenger, comparable) if champion else None
    if recent:  # after drift: decide on the rows that look like today's traffic
        challenger_map, champion_map, basis = recent
    decision = gate.decide(
        challenger_map,
        threshold=threshold,
        champion_map=champion_map,
        tolerance=tolerance,
        champion_version=(champion or {}).get("version"),
        basis=basis,
    )
    return decision, gate.comparison_table(decision, challenger, comparable) + note


def training_data_cutoff(training: dict[str, Any], s3: Any = None) -> str:
    """The cut-off of the training data: ``orders_through`` of the curated snapshot behind the job's
    ``train`` channel (its ``_manifest.json``, written by the features ETL); "" when it is not known.

    Labels committed after it are new to the model (``monitoring.retrain_on_new_labels``).
    """
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in training.get("InputDataConfig", [])}
    train = channels.get("train", "").rstrip("/")
    snapshot = train.rsplit("/", 1)[0] if train.rsplit("/", 1)[-1].startswith("split=") else train
    manifest = lake_io.join(snapshot, "_manifest.json") if snapshot else ""
    if not manifest or not lake_io.exists(manifest, s3):
        return ""
    return str(json.loads(lake_io.read_bytes(manifest, s3)).get("orders_through") or "")


def package_metadata(
    decision: gate.GateDecision,
    docs: dict[str, Any],
    training: dict[str, Any],
    run_id: str,
    threshold: float,
    cutoff: str = "",
) -> dict[str, str]:
    """The version's CustomerMetadataProperties: the gate's numbers, the jobs they come from and the
    training data's cut-off (``training_data_cutoff``; empty values are left out of the request)."""
    metrics_doc = docs["challenger"]["multiclass_classification_metrics"]
    return {
        "map": f"{gate.gate_value(docs['challenger']):.6f}",  # the whole test split's, whatever the gate's basis
        "gate_basis": "test_split" if decision.basis == "test split" else "recent_rows",
        "map_threshold": f"{threshold:.4f}",
        "champion_map": "" if decision.champion_map is None else f"{decision.champion_map:.6f}",
        "champion_version": str(decision.champion_version or ""),
        "accuracy": f"{metrics_doc['accuracy']['value']:.6f}",
        "test_rows": str(docs["challenger"]["dataset"]["item_count"]),
        "training_job": training["TrainingJobName"],
        "run_id": run_id[:256],
        "evaluation_report": docs["report_uri"][:256],
        "training_data_cutoff": cutoff,
    }


def register(
    config: PipelineConfig,
    client: Any,
    *,
    training: dict[str, Any],
    processing: dict[str, Any],
    champion: dict[str, Any] | None,
    image_uri: str,
    run_id: str,
    threshold: float | None = None,
    tolerance: float | None = None,
    s3: Any = None,
) -> dict[str, Any]:
    """Gate the challenger (raise GateRejected with the reason) and register it as the next version."""
    from mlops import registry

    threshold = config.training.map_threshold if threshold is None else float(threshold)
    tolerance = config.training.champion_tolerance if tolerance is None else float(tolerance)
    docs = evaluation_outputs(processing, s3)
    decision, table = decide(docs["challenger"], docs["champion"], champion, threshold=threshold, tolerance=tolerance)
    log.info("champion/challenger on the test split:\n%s", table)
    print(table, flush=True)
    gate.enforce(decision)

    group = config.registry.model_package_group
    model_data_url = training["ModelArtifacts"]["S3ModelArtifacts"]
    registry.ensure_group(client, group)
    existing = registry.find_package_by_model_data(client, group, model_data_url)
    if existing:
        log.info("model %s is already registered as %s v%s; not registering it twice", model_data_url, group,
                 existing["version"])  # fmt: skip
        package, created = existing, False
    else:
        request = requests.model_package_request(
            config,
            image_uri=image_uri,
            model_data_url=model_data_url,
            evaluation_uri=docs["evaluation_uri"],
            description=f"LightGBM order-outcome classifier (ONNX); test mAP {gate.gate_value(docs['challenger']):.4f}",
            metadata=package_metadata(decision, docs, training, run_id, threshold, training_data_cutoff(training, s3)),
            training_job_arn=training.get("TrainingJobArn"),
        )
        arn = client.create_model_package(**request)["ModelPackageArn"]
        package, created = next(p for p in registry.list_packages(group, client) if p["arn"] == arn), True
    return {
        "model_package_group": group,
        "model_package_arn": package["arn"],
        "version": package["version"],
        "approval_status": package["approval_status"],
        "map": round(gate.gate_value(docs["challenger"]), 6),
        "champion_version": decision.champion_version,
        "champion_map": decision.champion_map,
        "gate_basis": decision.basis,
        "model_data_url": model_data_url,
        "image_uri": image_uri,
        "evaluation_uri": docs["evaluation_uri"],
        "report_uri": docs["report_uri"],
        "created": created,
        "comparison": table,
    }
