"""A multi-model container: target models under one prefix, loaded on first use, least recently used out.

SageMaker's multi-model endpoints (``Mode: MultiModel``) serve every ``model.tar.gz`` under the
model's ``ModelDataUrl`` prefix: a request names one with ``TargetModel`` (header
``X-Amzn-SageMaker-Target-Model``, a key relative to the prefix); the container downloads and
loads it on the first request ("cold"), keeps it for the next ones ("warm") and unloads the least
recently used models when memory runs short. This backend does the same in one model server:

- a target model is fetched from ``<prefix><TargetModel>``, extracted and loaded with the same
  handler contract as a single-model container (:mod:`mlops.serving.handler`); concurrent requests
  for a cold model wait for one load; loads run off the event loop, so warm models keep serving;
- at most ``max_models`` models and ``max_bytes`` bytes of extracted model files stay loaded
  (the files ``model_fn`` reads are what the model holds in memory); a new model evicts the least
  recently used ones, and a model larger than ``max_bytes`` on its own is refused with 507, the status
  SageMaker's containers answer for a model that does not fit;
- a request without a target model, with a key outside the prefix, or naming a model that is not
  under the prefix gets 400 ``ValidationError`` naming it (SageMaker answers a missing target model
  with a client error: the object cannot be downloaded).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import shutil
import sys
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlops.serving.app import Outcome, Request, error_outcome
from mlops.serving.errors import ModelPackageError, status_for

log = logging.getLogger("mlops.serving.multimodel")
SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


@dataclass
class LoadedModel:
    """One target model in memory: its handler, its footprint and where its files are."""

    name: str
    handler: Any
    size_bytes: int
    directory: Path


class ModelCache:
    """LRU bookkeeping of loaded target models, bounded by count and by bytes."""

    def __init__(self, max_models: int, max_bytes: int) -> None:
        if max_models < 1 or max_bytes < 1:
            raise ValueError(f"max_models ({max_models}) and max_bytes ({max_bytes}) must be positive")
        self.max_models, self.max_bytes = max_models, max_bytes
        self.entries: OrderedDict[str, LoadedModel] = OrderedDict()

    @property
    def size_bytes(self) -> int:
        return sum(m.size_bytes for m in self.entries.values())

    def get(self, name: str) -> LoadedModel | None:
        """The loaded model (now the most recently used), or None."""
        model = self.entries.get(name)
        if model is not None:
            self.entries.move_to_end(name)
        return model

    def put(self, model: LoadedModel) -> list[LoadedModel]:
        """Add ``model``; returns the least recently used models evicted to stay within both bounds."""
        self.entries[model.name] = model
        self.entries.move_to_end(model.name)
        evicted = []
        while len(self.entries) > self.max_models or self.size_bytes > self.max_bytes:
            _, oldest = self.entries.popitem(last=False)
            evicted.append(oldest)
        return evicted

    def describe(self) -> dict[str, Any]:
        return {
            "loaded": list(self.entries),
            "size_bytes": self.size_bytes,
            "max_models": self.max_models,
            "max_bytes": self.max_bytes,
        }


def directory_bytes(directory: Path) -> int:
    """Bytes of the files under ``directory`` (a loaded model's footprint)."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def load_target_model(model_data_url: str, model_dir: Path, program: str) -> tuple[Any, int]:
    """Fetch, extract and load one target model; returns (handler, bytes of its files)."""
    from mlops.serving.handler import ModelHandler, extract_model

    directory = extract_model(model_data_url, model_dir)
    return ModelHandler.load(directory, program=program), directory_bytes(directory)


def target_model_url(prefix: str, target_model: str) -> str:
    """``<prefix>/<target_model>``; raises ValueError for a key that could leave the prefix."""
    if not SAFE_KEY.fullmatch(target_model) or ".." in target_model.split("/") or "//" in target_model:
        raise ValueError(
            f"TargetModel {target_model!r} is not a model key under the endpoint's prefix: use letters, digits, "
            "'.', '_', '-' and '/' (e.g. v3.tar.gz), without '..'"
        )
    return f"{prefix.rstrip('/')}/{target_model}"


def target_model_exists(url: str) -> bool:
    """True when the object exists (a local file, or an S3 object the container's role can read)."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        import boto3
        from botocore.exceptions import ClientError

        try:
            boto3.client("s3").head_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
        except ClientError:
            return False
        return True
    return Path(parsed.path if parsed.scheme == "file" else url).is_file()


def available_models(prefix: str, limit: int = 10) -> list[str]:
    """Up to ``limit`` target model keys under a local prefix (for error messages)."""
    parsed = urlparse(prefix)
    if parsed.scheme not in ("", "file"):
        return []
    root = Path(parsed.path if parsed.scheme else prefix)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.tar.gz"))[:limit] if root.is_dir() else []


class MultiModelBackend:
    """The backend of a ``Mode: MultiModel`` container (see the module docstring)."""

    def __init__(
        self,
        prefix: str,
        work_dir: Path,
        *,
        variant: str,
        max_models: int,
        max_bytes: int,
        program: str = "inference.py",
        loader: Callable[[str, Path, str], tuple[Any, int]] = load_target_model,
    ) -> None:
        self.prefix, self.work_dir, self.variant, self.program = prefix, work_dir, variant, program
        self.cache = ModelCache(max_models, max_bytes)
        self.loader = loader
        self.loads = 0
        self._loading = asyncio.Lock()  # one load at a time: handler imports touch sys.path / sys.modules
        work_dir.mkdir(parents=True, exist_ok=True)

    def healthy(self) -> bool:
        return True

    async def invoke(self, request: Request) -> Outcome:
        if request.target_model is None:
            return self._refuse(
                "this is a multi-model endpoint and the request is missing a target model header: pass TargetModel "
                f"(X-Amzn-SageMaker-Target-Model), e.g. one of {available_models(self.prefix) or 'the models under'} "
                f"{self.prefix}"
            )
        model = self.cache.get(request.target_model)
        if model is None:
            loaded = await self._load(request.target_model)
            if isinstance(loaded, Outcome):
                return loaded
            model = loaded
        try:
            body, content_type = model.handler.invoke(request.body, request.content_type, request.accept)
        except Exception as exc:
            status, code = status_for(exc)
            if status >= 500:
                log.exception("model error in target model %s", model.name)
            return error_outcome(status, code, str(exc) or type(exc).__name__, self.variant)
        return Outcome(200, body, content_type, self.variant)

    async def _load(self, name: str) -> LoadedModel | Outcome:
        """Load target model ``name`` (once, however many requests wait for it); an Outcome says why not."""
        async with self._loading:
            if (model := self.cache.get(name)) is not None:
                return model  # another request loaded it while this one waited
            try:
                url = target_model_url(self.prefix, name)
            except ValueError as exc:
                return self._refuse(str(exc))
            if not target_model_exists(url):
                return self._refuse(
                    f"target model {name} not found: no object at {url}; models under the prefix: "
                    f"{available_models(self.prefix) or 'none listed'}"
                )
            self.loads += 1
            directory = self.work_dir / f"m{self.loads:06d}"
            try:
                handler, size = await asyncio.to_thread(self.loader, url, directory, self.program)
            except ModelPackageError as exc:
                shutil.rmtree(directory, ignore_errors=True)
                shutil.rmtree(directory.with_name(f"{directory.name}.download"), ignore_errors=True)
                return error_outcome(500, "ModelError", f"target model {name} cannot load: {exc}", self.variant)
            return self._admit(LoadedModel(name, handler, size, directory))

    def _admit(self, model: LoadedModel) -> LoadedModel | Outcome:
        if model.size_bytes > self.cache.max_bytes:
            self._unload(model)
            return error_outcome(
                507,
                "InsufficientStorage",
                f"target model {model.name} needs {model.size_bytes} bytes, more than the container's "
                f"{self.cache.max_bytes} (serving.multi_model.max_bytes); raise it or split the model",
                self.variant,
            )
        for evicted in self.cache.put(model):
            log.info("unloading target model %s (least recently used)", evicted.name)
            self._unload(evicted)
        log.info("loaded target model %s (%d bytes): %s", model.name, model.size_bytes, self.cache.describe())
        return model

    def _unload(self, model: LoadedModel) -> None:
        """Drop a model: its handler module, its code folder on sys.path, its files."""
        module_name = getattr(model.handler, "module_name", None)
        if module_name:
            sys.modules.pop(module_name, None)
        code_dir = str(model.directory / "code")
        if code_dir in sys.path:
            sys.path.remove(code_dir)
        model.handler = None
        shutil.rmtree(model.directory, ignore_errors=True)
        shutil.rmtree(model.directory.with_name(f"{model.directory.name}.download"), ignore_errors=True)
        gc.collect()

    def _refuse(self, message: str) -> Outcome:
        return error_outcome(400, "ValidationError", message, self.variant)
