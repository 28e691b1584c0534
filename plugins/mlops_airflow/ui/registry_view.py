"""The model registry page's rows: every version of the model package group with its mAP,
approval status, the data snapshot and training job it came from, the run that registered it,
its evaluation report, and the endpoint variants that serve it now.

The registry, the endpoint and the training jobs are read through boto3-shaped clients (the
SageMaker client on aws; the SQLite registry and the local endpoint stand-in locally), see
:mod:`mlops_airflow.ui.backends`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops_airflow.ui.lake_files import ServedLake

PENDING = "PendingManualApproval"
DECISIONS = {"approve": "Approved", "reject": "Rejected"}


@dataclass(frozen=True)
class VersionRow:
    """One model package version, as the registry page shows it."""

    version: int
    status: str
    map: float | None
    created: str
    model_data_url: str
    training_job: str | None
    run_id: str | None
    snapshot: str | None
    evaluation_key: str | None
    serving: tuple[str, ...]

    @property
    def pending(self) -> bool:
        return self.status == PENDING


def _missing(exc: Exception) -> bool:
    code = getattr(exc, "code", None) or getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("ValidationException", "ResourceNotFound")


def serving_by_model(sagemaker: Any, endpoint_name: str) -> dict[str, list[str]]:
    """ModelDataUrl -> ``["<endpoint>/<variant> <share> %", ...]`` for the endpoint's variants now;
    empty when the endpoint does not exist."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    except Exception as exc:
        if _missing(exc):
            return {}
        raise
    models = {v["VariantName"]: v["ModelName"] for v in config.get("ProductionVariants", [])}
    weights = {v["VariantName"]: float(v.get("CurrentWeight") or 0) for v in endpoint.get("ProductionVariants", [])}
    total = sum(weights.values()) or 1.0
    status = endpoint.get("EndpointStatus", "")
    serving: dict[str, list[str]] = {}
    for variant, weight in weights.items():
        model = sagemaker.describe_model(ModelName=models[variant])
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        label = f"{endpoint_name}/{variant} {100 * weight / total:.0f} % ({status})"
        serving.setdefault(container.get("ModelDataUrl", ""), []).append(label)
    return serving


def snapshot_of(describe: dict[str, Any] | None) -> str | None:
    """The curated snapshot a training job read: its ``train`` channel without the ``split=`` folder."""
    for channel in (describe or {}).get("InputDataConfig", []):
        if channel.get("ChannelName") == "train":
            uri = str(channel["DataSource"]["S3DataSource"]["S3Uri"]).rstrip("/")
            return uri.rsplit("/", 1)[0] if uri.rsplit("/", 1)[-1].startswith("split=") else uri
    return None


def _in_lake(uri: str | None, served: ServedLake) -> str | None:
    """A lake URI as its key (``curated/features/snapshot=...``); other URIs as they are."""
    root = served.root + "/"
    return uri[len(root) :] if uri and uri.startswith(root) else uri


def version_rows(
    packages: list[dict[str, Any]],
    serving: dict[str, list[str]],
    training_job: Callable[[str], dict[str, Any] | None],
    served: ServedLake,
) -> list[VersionRow]:
    """The rows of :func:`mlops.registry.list_packages`' packages, newest first."""
    rows = []
    for package in sorted(packages, key=lambda p: p["version"], reverse=True):
        metadata = package.get("metadata") or {}
        job = metadata.get("training_job") or None
        rows.append(
            VersionRow(
                version=int(package["version"]),
                status=str(package["approval_status"]),
                map=package.get("map"),
                created=str(package.get("created") or ""),
                model_data_url=str(package.get("model_data_url") or ""),
                training_job=job,
                run_id=metadata.get("run_id") or None,
                snapshot=_in_lake(snapshot_of(training_job(job)) if job else None, served),
                evaluation_key=served.key_of(metadata.get("evaluation_report") or ""),
                serving=tuple(serving.get(package.get("model_data_url") or "", [])),
            )
        )
    return rows
