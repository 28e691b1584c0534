"""Step caching, as in Kubeflow Pipelines and SageMaker Pipelines.

A job's cache key is the SHA-256 of its request without the per-run fields (job name, output
location, tags) plus a fingerprint of every input it reads (each object's key, size and
MD5/ETag): the data snapshot, the code bundle, the hyperparameters, the image and the
instance settings. A hit returns the earlier job's Describe*Job answer, whose outputs are
reused. Entries live in the lake (``models/_cache/<kind>/<key>.json``) so the aws target's
ephemeral workers share them; an entry whose outputs have gone is a miss.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlops.training import lake_io

PER_RUN_FIELDS = (
    "TrainingJobName",
    "ProcessingJobName",
    "OutputDataConfig",
    "ProcessingOutputConfig",
    "Tags",
    "RoleArn",
    "VpcConfig",  # where the job runs, not what it computes
    "NetworkConfig",
)


def job_kind(request: dict[str, Any]) -> str:
    if "TrainingJobName" in request:
        return "training"
    if "ProcessingJobName" in request:
        return "processing"
    raise ValueError("request is neither CreateTrainingJob nor CreateProcessingJob")


def input_uris(request: dict[str, Any]) -> list[str]:
    """Every URI the job reads: channels and the code bundle, or processing inputs."""
    if job_kind(request) == "training":
        uris = [c["DataSource"]["S3DataSource"]["S3Uri"] for c in request.get("InputDataConfig", [])]
        submit = request.get("HyperParameters", {}).get("sagemaker_submit_directory")
        return [*uris, json.loads(submit)] if submit else uris
    return [i["S3Input"]["S3Uri"] for i in request.get("ProcessingInputs", [])]


def output_uris(describe: dict[str, Any]) -> list[str]:
    """What a finished job produced (checked before a cache hit is trusted)."""
    if "TrainingJobName" in describe:
        return [describe["ModelArtifacts"]["S3ModelArtifacts"]]
    return [o["S3Output"]["S3Uri"] for o in describe.get("ProcessingOutputConfig", {}).get("Outputs", [])]


def fingerprint(uri: str, s3: Any = None) -> str:
    """SHA-256 over the (key, size, MD5/ETag) of every object under ``uri``."""
    listing = [(o.key, o.size, o.etag) for o in lake_io.list_objects(uri, s3)]
    if not listing:
        raise FileNotFoundError(f"step input {uri} is empty or missing")
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def cache_key(request: dict[str, Any], s3: Any = None) -> tuple[str, dict[str, str]]:
    """The job's cache key and the input fingerprints it covers."""
    stable = {k: v for k, v in request.items() if k not in PER_RUN_FIELDS}
    prints = {uri: fingerprint(uri, s3) for uri in input_uris(request)}
    payload = json.dumps({"kind": job_kind(request), "request": stable, "inputs": prints}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest(), prints


@dataclass(frozen=True)
class StepCache:
    """Cache entries under ``root_uri`` (``Lake.models('_cache')``)."""

    root_uri: str
    s3: Any = None

    def entry_uri(self, kind: str, key: str) -> str:
        return lake_io.join(self.root_uri, kind, f"{key}.json")

    def lookup(self, kind: str, key: str) -> dict[str, Any] | None:
        """The cached Describe*Job answer for ``key``, or None (no entry, or its outputs are gone)."""
        uri = self.entry_uri(kind, key)
        if not lake_io.exists(uri, self.s3):
            return None
        entry = json.loads(lake_io.read_bytes(uri, self.s3))
        if not all(lake_io.exists(out, self.s3) for out in output_uris(entry["describe"])):
            return None
        return entry

    def store(self, kind: str, key: str, describe: dict[str, Any], inputs: dict[str, str]) -> str:
        """Record a Completed job under ``key``; return the entry URI."""
        entry = {
            "key": key,
            "kind": kind,
            "inputs": inputs,
            "stored": datetime.now(UTC).isoformat(),
            "describe": describe,
        }
        return lake_io.write_bytes(
            self.entry_uri(kind, key), json.dumps(entry, indent=2, default=str).encode(), self.s3
        )
