"""Load a SageMaker model package the way SageMaker's framework containers do.

``model.tar.gz`` is extracted into a model directory (``/opt/ml/model`` on SageMaker), then
``code/<SAGEMAKER_PROGRAM>`` (default ``code/inference.py``) is imported from it and its
handler functions are called:

- ``model_fn(model_dir) -> model`` once at start-up;
- ``input_fn(request_body: bytes, content_type: str) -> data`` per request;
- ``predict_fn(data, model) -> prediction``;
- ``output_fn(prediction, accept: str) -> bytes | str | (body, content_type)``.

A module may instead define ``transform_fn(model, request_body, content_type, accept)``.
There are no defaults: a package without ``code/inference.py`` or without one of these
functions is a start-up error naming what is missing. ``code/requirements.txt`` is installed
by SageMaker at container start; the local stand-in runs offline, so it only checks that each
listed distribution is already installed and logs the ones that are not.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import re
import shutil
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

from mlops.serving.errors import ModelPackageError

log = logging.getLogger(__name__)

HANDLER_FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn")
DEFAULT_PROGRAM = "inference.py"
DEFAULT_ACCEPT = "application/json"


def fetch_model_data(model_data_url: str, dest: Path) -> Path:
    """Copy ``model.tar.gz`` from a ``file://``/``s3://`` URL or a path to ``dest``; return the local file."""
    parsed = urlparse(model_data_url)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / "model.tar.gz"
    if parsed.scheme == "s3":
        import boto3

        boto3.client("s3").download_file(parsed.netloc, parsed.path.lstrip("/"), str(target))
        return target
    source = Path(parsed.path) if parsed.scheme == "file" else Path(model_data_url)
    if not source.exists():
        raise ModelPackageError(f"model data {model_data_url} does not exist; check ModelDataUrl of the model")
    if source.is_dir():
        return source
    shutil.copyfile(source, target)
    return target


def extract_model(model_data_url: str, model_dir: Path) -> Path:
    """Extract the package at ``model_data_url`` into ``model_dir`` (a directory URL is used as is)."""
    archive = fetch_model_data(model_data_url, model_dir.parent / f"{model_dir.name}.download")
    if archive.is_dir():
        return archive
    if not tarfile.is_tarfile(archive):
        raise ModelPackageError(f"model data {model_data_url} is not a tar.gz archive")
    if model_dir.exists():
        shutil.rmtree(model_dir)
    model_dir.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(model_dir, filter="data")
    archive.unlink()
    return model_dir


def _load_module(path: Path) -> ModuleType:
    code_dir = str(path.parent)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)  # inference.py may import helpers shipped next to it, as on SageMaker
    name = f"mlops_model_code_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelPackageError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ModelPackageError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def missing_requirements(requirements_file: Path) -> list[str]:
    """Distributions named in ``code/requirements.txt`` that are not installed here."""
    missing = []
    for line in requirements_file.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name = re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0]
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


@dataclass
class ModelHandler:
    """The loaded package: its model and its four handler functions."""

    model_dir: Path
    model: Any
    input_fn: Callable[[bytes, str], Any] | None
    predict_fn: Callable[[Any, Any], Any] | None
    output_fn: Callable[[Any, str], Any] | None
    transform_fn: Callable[[Any, bytes, str, str], Any] | None = None
    default_accept: str = DEFAULT_ACCEPT
    module_name: str = ""  # the imported code/inference.py in sys.modules (a multi-model container unloads it)

    @classmethod
    def load(
        cls, model_dir: Path, program: str = DEFAULT_PROGRAM, default_accept: str = DEFAULT_ACCEPT
    ) -> ModelHandler:
        """Import ``code/<program>`` from ``model_dir`` and call its ``model_fn``."""
        script = model_dir / "code" / program
        if not script.is_file():
            raise ModelPackageError(
                f"model package has no code/{program} (looked for {script}); the package must ship "
                "code/inference.py defining model_fn, input_fn, predict_fn and output_fn"
            )
        requirements = script.parent / "requirements.txt"
        if requirements.is_file() and (missing := missing_requirements(requirements)):
            log.warning("code/requirements.txt lists packages not installed here: %s", ", ".join(missing))
        module = _load_module(script)
        transform_fn = getattr(module, "transform_fn", None)
        needed = ("model_fn",) if transform_fn else HANDLER_FUNCTIONS
        absent = [name for name in needed if not callable(getattr(module, name, None))]
        if absent:
            raise ModelPackageError(f"code/{program} does not define {', '.join(absent)}; see mlops.serving.handler")
        try:
            model = module.model_fn(str(model_dir))
        except Exception as exc:
            raise ModelPackageError(f"model_fn({model_dir}) failed: {type(exc).__name__}: {exc}") from exc
        return cls(
            model_dir=model_dir,
            model=model,
            input_fn=getattr(module, "input_fn", None),
            predict_fn=getattr(module, "predict_fn", None),
            output_fn=getattr(module, "output_fn", None),
            transform_fn=transform_fn,
            default_accept=default_accept,
            module_name=module.__name__,
        )

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> tuple[bytes, str]:
        """Run one request through the handler chain; returns (response body, content type)."""
        if not accept or accept == "*/*":
            accept = self.default_accept
        if self.transform_fn is not None:
            result = self.transform_fn(self.model, body, content_type, accept)
        else:
            result = self.output_fn(self.predict_fn(self.input_fn(body, content_type), self.model), accept)
        response_type = accept
        if isinstance(result, tuple):
            result, response_type = result
        if isinstance(result, str):
            result = result.encode()
        return bytes(result), response_type
