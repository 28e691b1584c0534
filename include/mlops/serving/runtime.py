"""Plain functions over local endpoints for the ``mlops`` CLI, the demo summary and smoke tests.

Calls go through boto3's ``sagemaker-runtime`` client with ``endpoint_url`` set to the local
router, the same call a user replays. boto3 signs requests, so it needs some credentials;
the local server ignores them (``LOCAL_CREDENTIALS``).
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any
from urllib.parse import urlparse

LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local", "region_name": "us-east-1"}
EXAMPLE_MEMBERS = ("input_example.json", "code/input_example.json")


def runtime_client(endpoint_url: str | None, **kwargs: Any) -> Any:
    """A boto3 sagemaker-runtime client; with ``endpoint_url`` it talks to a local endpoint."""
    import boto3
    from botocore.config import Config

    options = {**LOCAL_CREDENTIALS, **kwargs} if endpoint_url else kwargs
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=endpoint_url,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        **options,
    )


def read_archive_member(archive: bytes, names: tuple[str, ...]) -> bytes | None:
    """The first of ``names`` found in a model.tar.gz, else None."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
        for name in names:
            if name in members and (handle := tar.extractfile(members[name])) is not None:
                return handle.read()
    return None


def read_local_archive(model_data_url: str) -> bytes:
    parsed = urlparse(model_data_url)
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"{model_data_url} is not a local file; read it with the S3 hook on the aws target")
    with open(parsed.path if parsed.scheme else model_data_url, "rb") as handle:
        return handle.read()


def sample_request(archive: bytes) -> dict[str, Any]:
    """A request body for smoke tests: the package's ``input_example.json``, else one row built from
    ``feature_spec.json`` (numeric 1.0, categorical "unknown")."""
    example = read_archive_member(archive, EXAMPLE_MEMBERS)
    if example is not None:
        return json.loads(example)
    spec_bytes = read_archive_member(archive, ("feature_spec.json",))
    if spec_bytes is None:
        raise ValueError(
            "the model package has neither input_example.json nor feature_spec.json; pass the DAG's "
            "sample_request param"
        )
    spec = json.loads(spec_bytes)
    if "features" in spec:
        row = {f["name"]: (1.0 if f["type"] == "numeric" else "unknown") for f in spec["features"]}
    else:
        row = {
            **{name: 1.0 for name in spec.get("numeric", [])},
            **{name: "unknown" for name in spec.get("categorical", [])},
        }
    return {"instances": [row]}


def check_predictions(body: bytes, rows: int) -> dict[str, Any]:
    """Parse a JSON prediction answer and check the output contract; raise ValueError naming the problem."""
    payload = json.loads(body)
    predictions = payload.get("predictions") if isinstance(payload, dict) else None
    if not isinstance(predictions, list) or len(predictions) != rows:
        raise ValueError(f"expected {{'predictions': [...]}} with {rows} item(s), got {str(payload)[:200]}")
    for i, item in enumerate(predictions):
        probabilities = item.get("probabilities") if isinstance(item, dict) else None
        if not isinstance(probabilities, dict) or "label" not in item:
            raise ValueError(f"predictions[{i}] lacks label/probabilities: {item!r}")
        if abs(sum(probabilities.values()) - 1.0) > 1e-3:
            raise ValueError(f"predictions[{i}] probabilities sum to {sum(probabilities.values()):.4f}, not 1")
    return payload


def invoke(
    client: Any,
    endpoint_name: str,
    body: dict[str, Any] | str | bytes,
    content_type: str = "application/json",
    accept: str = "application/json",
    target_variant: str | None = None,
    target_model: str | None = None,
) -> dict[str, Any]:
    """InvokeEndpoint (``target_model``: a multi-model endpoint's model); returns the response, body decoded."""
    payload = json.dumps(body) if isinstance(body, dict) else body
    kwargs: dict[str, Any] = {
        "EndpointName": endpoint_name,
        "Body": payload,
        "ContentType": content_type,
        "Accept": accept,
    }
    if target_variant:
        kwargs["TargetVariant"] = target_variant
    if target_model:
        kwargs["TargetModel"] = target_model
    response = client.invoke_endpoint(**kwargs)
    raw = response["Body"].read()
    try:
        decoded: Any = json.loads(raw)
    except ValueError:
        decoded = raw.decode("utf-8", "replace")
    return {
        "ContentType": response.get("ContentType"),
        "InvokedProductionVariant": response.get("InvokedProductionVariant"),
        "Body": decoded,
    }


# ---- local endpoints: functions for the `mlops` CLI and the demo --------------------------------


def _manager() -> Any:
    from mlops.serving.manager import LocalSageMaker

    return LocalSageMaker()


def list_endpoints() -> list[dict[str, Any]]:
    """Every local endpoint with its status and invocation URL."""
    return _manager().list_endpoints()["Endpoints"]


def describe_endpoint(endpoint_name: str) -> dict[str, Any]:
    return _manager().describe_endpoint(endpoint_name)


def invoke_endpoint(
    endpoint_name: str,
    body: dict[str, Any] | str | bytes,
    content_type: str = "application/json",
    accept: str = "application/json",
    target_variant: str | None = None,
    target_model: str | None = None,
) -> dict[str, Any]:
    """Invoke a local endpoint through boto3 sagemaker-runtime (restarting it first if it was stopped)."""
    manager = _manager()
    manager.ensure_running(endpoint_name)
    port = manager.describe_endpoint(endpoint_name)["LocalPort"]
    client = runtime_client(f"http://127.0.0.1:{port}")
    return invoke(client, endpoint_name, body, content_type, accept, target_variant, target_model)


def delete_endpoint(endpoint_name: str) -> None:
    """Stop a local endpoint's processes and forget it (its captured data stays in the lake)."""
    _manager().delete_endpoint(endpoint_name)


def start_endpoint(endpoint_name: str) -> dict[str, Any]:
    """Restart a local endpoint stopped by `make stop`, on its current endpoint config."""
    return _manager().ensure_running(endpoint_name)


def replay_commands(
    invocation_url: str, endpoint_name: str, request: dict[str, Any], target_model: str | None = None
) -> dict[str, str]:
    """curl and boto3 one-liners that replay ``request`` (with ``target_model`` on a multi-model endpoint)."""
    body = json.dumps(request)
    base_url = invocation_url.split("/endpoints/", 1)[0]
    header = f" -H 'X-Amzn-SageMaker-Target-Model: {target_model}'" if target_model else ""
    argument = f"TargetModel='{target_model}', " if target_model else ""
    return {
        "curl": f"curl -s -X POST {invocation_url} -H 'Content-Type: application/json'{header} -d '{body}'",
        "boto3": (
            f"boto3.client('sagemaker-runtime', endpoint_url='{base_url}', region_name='us-east-1', "
            "aws_access_key_id='local', aws_secret_access_key='local')"
            f".invoke_endpoint(EndpointName='{endpoint_name}', {argument}"
            f"ContentType='application/json', Body='{body}')['Body'].read()"
        ),
    }


def target_models(model_data_url: str) -> list[str]:
    """The target models under a local multi-model prefix (``v3.tar.gz``, ``segments/eu.tar.gz``, ...), sorted."""
    from mlops.serving.multimodel import available_models

    return available_models(model_data_url, limit=1000)


def endpoint_summary(endpoint_name: str, request: dict[str, Any] | None = None) -> dict[str, Any]:
    """For the demo summary: URL, status, variants, a sample request and its live response, replay commands.

    On a multi-model endpoint the sample goes to the newest target model under the prefix (``target_model``).
    """
    description = _manager().ensure_running(endpoint_name)  # a stopped endpoint restarts on its port
    container = _manager().describe_model(description["ProductionVariants"][0]["ModelName"])["PrimaryContainer"]
    target_model, archive_url = None, container["ModelDataUrl"]
    if container.get("Mode") == "MultiModel":
        names = target_models(archive_url)
        if not names:
            raise ValueError(f"multi-model endpoint {endpoint_name} has no target model under {archive_url}")
        target_model = max(names, key=lambda n: (len(n), n))  # v10 after v9
        archive_url = archive_url.rstrip("/") + "/" + target_model
    if request is None:
        request = sample_request(read_local_archive(archive_url))
    response = invoke_endpoint(endpoint_name, request, target_model=target_model)
    url = description["LocalInvocationUrl"]
    return {
        "endpoint_name": endpoint_name,
        "status": description["EndpointStatus"],
        "invocation_url": url,
        "variants": {v["VariantName"]: v["CurrentWeight"] for v in description["ProductionVariants"]},
        **({"target_model": target_model} if target_model else {}),
        "sample_request": request,
        "sample_response": response["Body"],
        "invoked_variant": response["InvokedProductionVariant"],
        "replay": replay_commands(url, endpoint_name, request, target_model),
    }
