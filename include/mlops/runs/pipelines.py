"""Pipelines as config files in Git: ``pipelines/*.yaml`` name a DAG and its Params; apply runs what changed.

    # pipelines/train-weekly-candidate.yaml
    dag_id: mlops_train
    description: challenger with more trees
    conf:
      hyperparameters: {n_estimators: 800}
      map_threshold: 0.42

``mlops runs apply pipelines/`` validates every file first (the file and the key are named on
any error; nothing is triggered while one file is invalid), then starts a run for each pipeline
whose content changed since it was last applied, and records what it applied. Running it again
starts nothing. On AWS, CodePipeline runs the same command against MWAA when a commit touches
``pipelines/``; the applied state lives next to the artifacts (an ``s3://`` state URI).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from mlops.config import load_yaml
from mlops.runs.params import validate_conf
from mlops.runs.requests import RunRequestError, check_dag_id

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
FIELDS = {"dag_id", "conf", "description"}


class PipelineFileError(ValueError):
    """A pipeline file is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Pipeline:
    """One pipeline file: its name (the file stem), the DAG, the run's conf, and a digest of both."""

    name: str
    path: Path
    dag_id: str
    conf: dict[str, Any]
    description: str

    @property
    def digest(self) -> str:
        canonical = json.dumps({"dag_id": self.dag_id, "conf": self.conf}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def load_pipeline(path: Path) -> Pipeline:
    """Parse one file; raise PipelineFileError naming the file and the key."""
    if not _NAME.match(path.stem):
        raise PipelineFileError(
            f"{path}: the file name must be lower-case letters, digits and '-' (it names the pipeline)"
        )
    try:
        raw = load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise PipelineFileError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise PipelineFileError(f"{path}: must be a mapping with dag_id and conf")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise PipelineFileError(f"{path}: unknown key {unknown[0]!r}; a pipeline has {', '.join(sorted(FIELDS))}")
    try:
        dag_id = check_dag_id(raw.get("dag_id"))
    except RunRequestError as exc:
        raise PipelineFileError(f"{path}: dag_id: {exc}") from None
    conf = raw.get("conf") or {}
    if not isinstance(conf, dict):
        raise PipelineFileError(f"{path}: conf must be a mapping of {dag_id}'s Params")
    return Pipeline(path.stem, path, dag_id, conf, str(raw.get("description") or ""))


def load_pipelines(folder: Path, schemas: Callable[[str], Mapping[str, Mapping[str, Any]]]) -> list[Pipeline]:
    """Every ``*.yaml`` of ``folder``, each validated against its DAG's Params (``schemas(dag_id)``)."""
    if not folder.is_dir():
        raise PipelineFileError(f"{folder} is not a folder of pipeline files")
    pipelines = []
    for path in sorted(folder.glob("*.yaml")):
        pipeline = load_pipeline(path)
        try:
            validate_conf(pipeline.conf, schemas(pipeline.dag_id), pipeline.dag_id)
        except RunRequestError as exc:
            raise PipelineFileError(f"{path}: {exc.field}: {exc}") from None
        pipelines.append(pipeline)
    return pipelines


def changed(pipelines: list[Pipeline], applied: Mapping[str, Mapping[str, Any]]) -> list[Pipeline]:
    """The pipelines whose content differs from what was last applied under their name."""
    return [p for p in pipelines if (applied.get(p.name) or {}).get("digest") != p.digest]


def record(applied: dict[str, Any], pipeline: Pipeline, run: Mapping[str, Any]) -> dict[str, Any]:
    """``applied`` with ``pipeline``'s run recorded (digest, dag, run id, time)."""
    applied[pipeline.name] = {
        "digest": pipeline.digest,
        "dag_id": pipeline.dag_id,
        "run_id": run["run_id"],
        "applied_at": datetime.now(UTC).isoformat(),
    }
    return applied
