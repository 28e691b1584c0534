"""The model registry: a SQLite registry with SageMaker ModelPackage semantics, and the calls the
pipeline and the CLI make. Every function takes a ``client`` that is either
:class:`SqliteModelRegistry` or ``boto3.client("sagemaker")`` — they answer the same calls.

CLI entry points (wired by ``mlops`` CLI): :func:`approve`, :func:`reject`, :func:`list_packages`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops.registry.sqlite import APPROVAL_STATUSES, RegistryError, SqliteModelRegistry

__all__ = [
    "APPROVAL_STATUSES",
    "RegistryError",
    "SqliteModelRegistry",
    "approve",
    "ensure_group",
    "find_package_by_model_data",
    "latest_approved",
    "list_packages",
    "local_registry",
    "package_arn",
    "reject",
    "set_approval",
]


def local_registry(path: Path | str | None = None) -> SqliteModelRegistry:
    """The local registry at ``path`` or ``<MLOPS_HOME>/registry/registry.sqlite``."""
    from mlops.config import mlops_home

    return SqliteModelRegistry(path or mlops_home() / "registry" / "registry.sqlite")


def _is_missing(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return isinstance(exc, RegistryError) or code in ("ValidationException", "ResourceNotFound")


def ensure_group(client: Any, group: str, description: str = "Order outcome classifier (ONNX)") -> str:
    """Create the model package group unless it exists; return its ARN."""
    try:
        return client.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"]
    except Exception as exc:
        if not _is_missing(exc):
            raise
    from mlops.aws.sagemaker_requests import model_package_group_request

    return client.create_model_package_group(**model_package_group_request(group, description))["ModelPackageGroupArn"]


def list_packages(group: str, client: Any | None = None, status: str | None = None) -> list[dict[str, Any]]:
    """Every version of ``group`` (newest first), described: version, status, mAP, model data, ARN."""
    client = client or local_registry()
    kwargs: dict[str, Any] = {"ModelPackageGroupName": group, "SortBy": "CreationTime", "SortOrder": "Descending"}
    if status:
        kwargs["ModelApprovalStatus"] = status
    try:
        summaries = client.list_model_packages(**kwargs)["ModelPackageSummaryList"]
    except Exception as exc:
        if _is_missing(exc):
            return []
        raise
    out = []
    for summary in summaries:
        described = client.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        metadata = described.get("CustomerMetadataProperties", {})
        containers = described.get("InferenceSpecification", {}).get("Containers", [{}])
        out.append(
            {
                "version": int(described["ModelPackageVersion"]),
                "arn": described["ModelPackageArn"],
                "approval_status": described["ModelApprovalStatus"],
                "map": float(metadata["map"]) if "map" in metadata else None,
                "model_data_url": containers[0].get("ModelDataUrl"),
                "evaluation_uri": described.get("ModelMetrics", {})
                .get("ModelQuality", {})
                .get("Statistics", {})
                .get("S3Uri"),
                "metadata": metadata,
                "created": str(described.get("CreationTime")),
            }
        )
    return out


def latest_approved(client: Any, group: str) -> dict[str, Any] | None:
    """The newest Approved version of ``group`` (the champion), or None."""
    approved = list_packages(group, client, status="Approved")
    return max(approved, key=lambda p: p["version"]) if approved else None


def find_package_by_model_data(client: Any, group: str, model_data_url: str) -> dict[str, Any] | None:
    """The version already registered for this exact model artifact (re-registration is a no-op)."""
    return next((p for p in list_packages(group, client) if p["model_data_url"] == model_data_url), None)


def package_arn(client: Any, group: str, version: int) -> str:
    """The ARN of ``group``/``version``; raises RegistryError naming the versions that exist."""
    packages = list_packages(group, client)
    for package in packages:
        if package["version"] == int(version):
            return package["arn"]
    known = sorted(p["version"] for p in packages)
    raise RegistryError(f"{group} has no version {version}; versions: {known or 'none'}")


def set_approval(
    group: str, version: int, status: str, *, description: str | None = None, client: Any | None = None
) -> dict[str, Any]:
    """Move ``group``/``version`` to ``status``; return the updated package summary."""
    from mlops.aws.sagemaker_requests import update_approval_request

    client = client or local_registry()
    arn = package_arn(client, group, version)
    client.update_model_package(**update_approval_request(arn, status, description))
    return next(p for p in list_packages(group, client) if p["arn"] == arn)


def approve(group: str, version: int, *, description: str | None = None, client: Any | None = None) -> dict[str, Any]:
    """Approve a version (PendingManualApproval -> Approved): it becomes the champion."""
    return set_approval(group, version, "Approved", description=description or "approved via mlops CLI", client=client)


def reject(group: str, version: int, *, description: str | None = None, client: Any | None = None) -> dict[str, Any]:
    """Reject a version; a rejected champion stops being the champion."""
    return set_approval(group, version, "Rejected", description=description or "rejected via mlops CLI", client=client)
