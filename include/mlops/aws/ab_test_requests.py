"""Requests of the A/B test (DAG mlops_ab_test): the analysis processing job and the promotion.

- CreateProcessingJob running ``ab_job.py`` (:mod:`mlops.monitoring.ab_job`) on the window's captured
  traffic of both variants and the curated snapshot's matured labels, on the monitoring processing
  instance (the same image and role as the drift job);
- UpdateEndpointWeightsAndCapacities moving all traffic to the winner.

Pure functions; ``tests/aws/test_ab_test_requests.py`` validates them against botocore and the local
stand-ins (the local processing runner, :class:`mlops.serving.manager.LocalSageMaker`) execute the same dicts.
"""

from __future__ import annotations

from typing import Any

from mlops.aws.monitoring_requests import FAILURE_FILE, MAX_INPUTS, capture_inputs, monitoring_job_request
from mlops.aws.sagemaker_requests import CODE_DIR, PROCESSING
from mlops.aws.sagemaker_requests import processing_input as _input
from mlops.config import PipelineConfig

AB_ENTRY_POINT = "ab_job.py"


def ab_job_request(
    config: PipelineConfig,
    *,
    name: str,
    image_uri: str,
    role_arn: str,
    code_uri: str,
    capture_root: str,
    capture_folders: list[str],
    labels_uri: str | None,
    output_uri: str,
    window_start: str,
    window_end: str,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """CreateProcessingJob of the A/B analysis over one window (labels: the curated snapshot, when there is one)."""
    serving, rule = config.serving, config.serving.ab_test
    champion, challenger = serving.ab_roles()
    inputs = [_input("code", code_uri, CODE_DIR)]
    if labels_uri:
        inputs.append(_input("labels", labels_uri.rstrip("/") + "/", f"{PROCESSING}/input/labels"))
    inputs += capture_inputs(capture_root, serving.endpoint_name, capture_folders, MAX_INPUTS - len(inputs))
    options = {
        "--capture": f"{PROCESSING}/input/capture",
        "--labels": f"{PROCESSING}/input/labels",
        "--output": f"{PROCESSING}/output",
        "--endpoint-name": serving.endpoint_name,
        "--champion": champion,
        "--challenger": challenger,
        "--window-start": window_start,
        "--window-end": window_end,
        "--join-key": rule.join_key,
        "--bootstrap-samples": str(rule.bootstrap_samples),
        "--confidence": str(rule.confidence),
        "--seed": str(rule.seed),
        "--failure-file": FAILURE_FILE,
    }
    return monitoring_job_request(
        config,
        name=name,
        inputs=inputs,
        output=("ab-test", output_uri, f"{PROCESSING}/output"),
        image_uri=image_uri,
        entry_point=AB_ENTRY_POINT,
        arguments=[item for pair in options.items() for item in pair],
        role_arn=role_arn,
        tags=tags,
    )


def promotion_request(endpoint_name: str, *, winner: str, loser: str) -> dict[str, Any]:
    """UpdateEndpointWeightsAndCapacities: all traffic to ``winner``; ``loser`` stays deployed at weight 0."""
    return {
        "EndpointName": endpoint_name,
        "DesiredWeightsAndCapacities": [
            {"VariantName": winner, "DesiredWeight": 1.0},
            {"VariantName": loser, "DesiredWeight": 0.0},
        ],
    }
