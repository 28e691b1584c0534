"""A SQLite model registry with SageMaker Model Registry semantics.

Methods take and return what boto3's ``sagemaker`` client does for the same calls
(``create_model_package_group``, ``create_model_package``, ``describe_model_package``,
``list_model_packages``, ``update_model_package``), so code written against this class runs
unchanged against ``boto3.client("sagemaker")``. Versions increment per group from 1;
``ModelApprovalStatus`` moves between PendingManualApproval, Approved and Rejected.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
ACCOUNT = "000000000000"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_package_groups (
    name TEXT PRIMARY KEY, arn TEXT NOT NULL, description TEXT, created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_packages (
    arn TEXT PRIMARY KEY,
    group_name TEXT NOT NULL REFERENCES model_package_groups(name),
    version INTEGER NOT NULL,
    approval_status TEXT NOT NULL,
    approval_description TEXT,
    model_data_url TEXT,
    request TEXT NOT NULL,
    created TEXT NOT NULL,
    modified TEXT NOT NULL,
    UNIQUE (group_name, version)
);
"""


class RegistryError(ValueError):
    """A registry call was invalid (unknown group/package, bad status); the message says which."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SqliteModelRegistry:
    """The local Model Registry; one SQLite file (``<MLOPS_HOME>/registry/registry.sqlite`` by default)."""

    def __init__(self, path: Path | str, region: str = "local") -> None:
        self.path = Path(path)
        self.region = region
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON")
        return db

    def _group_arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT}:model-package-group/{name}"

    def _package_arn(self, group: str, version: int) -> str:
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT}:model-package/{group}/{version}"

    def create_model_package_group(
        self, *, ModelPackageGroupName: str, ModelPackageGroupDescription: str = "", **_: Any
    ) -> dict[str, Any]:
        arn = self._group_arn(ModelPackageGroupName)
        with closing(self._connect()) as db:
            try:
                db.execute(
                    "INSERT INTO model_package_groups VALUES (?, ?, ?, ?)",
                    (ModelPackageGroupName, arn, ModelPackageGroupDescription, _now()),
                )
            except sqlite3.IntegrityError:
                raise RegistryError(f"model package group {ModelPackageGroupName!r} already exists") from None
        return {"ModelPackageGroupArn": arn}

    def describe_model_package_group(self, *, ModelPackageGroupName: str) -> dict[str, Any]:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM model_package_groups WHERE name = ?", (ModelPackageGroupName,)).fetchone()
        if row is None:
            raise RegistryError(f"model package group {ModelPackageGroupName!r} does not exist")
        return {
            "ModelPackageGroupName": row["name"],
            "ModelPackageGroupArn": row["arn"],
            "ModelPackageGroupDescription": row["description"],
            "CreationTime": row["created"],
            "ModelPackageGroupStatus": "Completed",
        }

    def create_model_package(self, **request: Any) -> dict[str, Any]:
        """Register the next version in ``ModelPackageGroupName`` (the group must exist)."""
        group = request.get("ModelPackageGroupName")
        if not group:
            raise RegistryError(
                "create_model_package needs ModelPackageGroupName (unversioned packages are not supported)"
            )
        status = request.get("ModelApprovalStatus", "PendingManualApproval")
        if status not in APPROVAL_STATUSES:
            raise RegistryError(f"ModelApprovalStatus {status!r} must be one of {APPROVAL_STATUSES}")
        containers = request.get("InferenceSpecification", {}).get("Containers", [])
        model_data_url = containers[0].get("ModelDataUrl") if containers else None
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                if not db.execute("SELECT 1 FROM model_package_groups WHERE name = ?", (group,)).fetchone():
                    raise RegistryError(f"model package group {group!r} does not exist; create it first")
                version = db.execute(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM model_packages WHERE group_name = ?", (group,)
                ).fetchone()[0]
                arn, now = self._package_arn(group, version), _now()
                db.execute(
                    "INSERT INTO model_packages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (arn, group, version, status, None, model_data_url, json.dumps(request), now, now),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return {"ModelPackageArn": arn}

    def _row(self, name: str) -> sqlite3.Row:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM model_packages WHERE arn = ?", (name,)).fetchone()
        if row is None:
            raise RegistryError(f"model package {name!r} does not exist")
        return row

    def describe_model_package(self, *, ModelPackageName: str) -> dict[str, Any]:
        row = self._row(ModelPackageName)
        request = json.loads(row["request"])
        out = {
            **{k: v for k, v in request.items() if k != "ModelApprovalStatus"},
            "ModelPackageName": row["group_name"],
            "ModelPackageGroupName": row["group_name"],
            "ModelPackageVersion": row["version"],
            "ModelPackageArn": row["arn"],
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": row["approval_status"],
            "CreationTime": row["created"],
            "LastModifiedTime": row["modified"],
        }
        if row["approval_description"]:
            out["ApprovalDescription"] = row["approval_description"]
        return out

    def list_model_packages(
        self,
        *,
        ModelPackageGroupName: str,
        ModelApprovalStatus: str | None = None,
        SortBy: str = "CreationTime",
        SortOrder: str = "Descending",
        MaxResults: int = 100,
        **_: Any,
    ) -> dict[str, Any]:
        query = "SELECT * FROM model_packages WHERE group_name = ?"
        params: list[Any] = [ModelPackageGroupName]
        if ModelApprovalStatus:
            query += " AND approval_status = ?"
            params.append(ModelApprovalStatus)
        query += f" ORDER BY version {'DESC' if SortOrder == 'Descending' else 'ASC'} LIMIT ?"
        params.append(int(MaxResults))
        with closing(self._connect()) as db:
            rows = db.execute(query, params).fetchall()
        return {
            "ModelPackageSummaryList": [
                {
                    "ModelPackageName": r["group_name"],
                    "ModelPackageGroupName": r["group_name"],
                    "ModelPackageVersion": r["version"],
                    "ModelPackageArn": r["arn"],
                    "CreationTime": r["created"],
                    "ModelPackageStatus": "Completed",
                    "ModelApprovalStatus": r["approval_status"],
                }
                for r in rows
            ]
        }

    def update_model_package(
        self,
        *,
        ModelPackageArn: str,
        ModelApprovalStatus: str | None = None,
        ApprovalDescription: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        if ModelApprovalStatus not in APPROVAL_STATUSES:
            raise RegistryError(f"ModelApprovalStatus {ModelApprovalStatus!r} must be one of {APPROVAL_STATUSES}")
        self._row(ModelPackageArn)
        with closing(self._connect()) as db:
            db.execute(
                "UPDATE model_packages SET approval_status = ?, approval_description = ?, modified = ? WHERE arn = ?",
                (ModelApprovalStatus, ApprovalDescription, _now(), ModelPackageArn),
            )
        return {"ModelPackageArn": ModelPackageArn}
