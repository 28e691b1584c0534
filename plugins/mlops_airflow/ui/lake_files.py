"""Which lake objects the UI serves, and reading them: ``file://`` locally, ``s3://`` on aws.

Only keys under the lake's report, monitoring and model prefixes are served (``reports/``,
``monitoring/``, ``models/`` by default; ``lake.*_prefix`` in ``include/pipeline.yaml``). A key
is checked before anything is read: no absolute or empty parts, no ``.``/``..``, no backslash or
control characters; locally the resolved path must stay inside its prefix folder, so a symlink
cannot lead out of the lake. Standard library only: S3 goes through the client passed in (the
provider's ``S3Hook`` client in the API server).
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mlops.lake import Lake

SERVED_PREFIX_FIELDS = ("reports_prefix", "monitoring_prefix", "models_prefix")
MAX_KEY_LENGTH = 1024
MAX_OBJECT_BYTES = 32 * 1024 * 1024
MAX_LISTED_PAGES = 50
TEXT_TYPES = ("text/html", "application/json", "text/plain", "text/css")


class UnsafeKey(ValueError):
    """A key the UI refuses to serve; the message says why."""


class ObjectMissing(LookupError):
    """Nothing at that key."""


class ObjectTooLarge(ValueError):
    """The object is larger than the UI serves."""


@dataclass(frozen=True)
class ServedLake:
    """The lake root and the key prefixes under it the UI may read."""

    root: str
    prefixes: tuple[str, ...]

    @classmethod
    def of(cls, lake: Lake) -> ServedLake:
        """The served part of ``lake``: its report, monitoring and model prefixes."""
        return cls(root=lake.root.rstrip("/"), prefixes=tuple(getattr(lake.layout, f) for f in SERVED_PREFIX_FIELDS))

    def check(self, key: str) -> str:
        """``key`` when it is a well-formed key under a served prefix; raise :class:`UnsafeKey` naming why."""
        if not key or len(key) > MAX_KEY_LENGTH:
            raise UnsafeKey("empty or overlong key")
        if key.startswith("/") or "\\" in key or any(ord(c) < 32 or ord(c) == 127 for c in key):
            raise UnsafeKey("absolute key, backslash or control character")
        if any(part in ("", ".", "..") for part in key.split("/")):
            raise UnsafeKey("empty, '.' or '..' path segment")
        if self.prefix_of(key) is None:
            raise UnsafeKey(f"not under {', '.join(p + '/' for p in self.prefixes)}")
        return key

    def prefix_of(self, key: str) -> str | None:
        """The served prefix ``key`` lies under, or None."""
        return next((p for p in self.prefixes if key.startswith(p.rstrip("/") + "/")), None)

    def key_of(self, uri: str) -> str | None:
        """The served key of a lake URI, or None when it is outside the root or the served prefixes."""
        root = self.root + "/"
        if not isinstance(uri, str) or not uri.startswith(root):
            return None
        key = uri[len(root) :]
        try:
            return self.check(key)
        except UnsafeKey:
            return None

    def uri(self, key: str) -> str:
        """The lake URI of a served key."""
        return f"{self.root}/{self.check(key)}"


def content_type(key: str) -> str:
    """The media type a key is served with (HTML and JSON as UTF-8 text)."""
    guessed = mimetypes.guess_type(key)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed in TEXT_TYPES else guessed


def read_object(served: ServedLake, key: str, s3: Any = None, max_bytes: int = MAX_OBJECT_BYTES) -> bytes:
    """The bytes at ``key``; UnsafeKey, ObjectMissing or ObjectTooLarge otherwise."""
    key = served.check(key)
    if served.root.startswith("s3://"):
        return _read_s3(served.root, key, s3, max_bytes)
    return _read_local(served, key, max_bytes)


def _read_local(served: ServedLake, key: str, max_bytes: int) -> bytes:
    parsed = urlparse(served.root)
    if parsed.scheme != "file":
        raise UnsafeKey(f"the lake root {served.root!r} is neither file:// nor s3://")
    base = Path(unquote(parsed.path))
    allowed = (base / str(served.prefix_of(key))).resolve()
    path = (base / key).resolve()
    if not path.is_relative_to(allowed):
        raise UnsafeKey("the path leads out of its prefix folder")
    if not path.is_file():
        raise ObjectMissing(key)
    if path.stat().st_size > max_bytes:
        raise ObjectTooLarge(f"{key} is larger than {max_bytes} bytes")
    return path.read_bytes()


def _read_s3(root: str, key: str, s3: Any, max_bytes: int) -> bytes:
    if s3 is None:
        raise ValueError("reading an s3:// lake needs an S3 client")
    parsed = urlparse(root)
    bucket, object_key = parsed.netloc, "/".join(p for p in (parsed.path.strip("/"), key) if p)
    try:
        head = s3.head_object(Bucket=bucket, Key=object_key)
    except Exception as exc:  # botocore ClientError: 404 / NoSuchKey / 403 without ListBucket
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            raise ObjectMissing(key) from None
        raise
    if int(head.get("ContentLength", 0)) > max_bytes:
        raise ObjectTooLarge(f"{key} is larger than {max_bytes} bytes")
    return s3.get_object(Bucket=bucket, Key=object_key)["Body"].read()


def html_pages_below(served: ServedLake, folder_key: str, s3: Any = None, limit: int = MAX_LISTED_PAGES) -> list[str]:
    """The keys of the ``.html`` files below a served folder (at most ``limit``, sorted): the pages of a
    site such as Data Docs, whose own index builds its tables with scripts from CDNs."""
    prefix = served.check(folder_key.rstrip("/") + "/index.html").rsplit("/", 1)[0] + "/"
    if served.root.startswith("s3://"):
        parsed = urlparse(served.root)
        root_key = parsed.path.strip("/")
        full = "/".join(p for p in (root_key, prefix) if p)
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=parsed.netloc, Prefix=full):
            keys += [item["Key"][len(root_key) + 1 if root_key else 0 :] for item in page.get("Contents", [])]
    else:
        base = Path(unquote(urlparse(served.root).path))
        folder = base / prefix
        keys = [p.relative_to(base).as_posix() for p in folder.rglob("*.html")] if folder.is_dir() else []
    return sorted(k for k in keys if k.endswith(".html"))[:limit]


def within_published(served: ServedLake, key: str, published: set[str]) -> bool:
    """True when ``key`` is one of ``published`` or lies in the folder of one (a report's images,
    the pages of Data Docs): a run's files are those next to or below what the run reported.
    A file right under a served prefix vouches for itself only, never for the whole prefix."""
    for item in published:
        folder = item.rsplit("/", 1)[0] + "/"
        whole_prefix = folder == f"{str(served.prefix_of(item)).rstrip('/')}/"
        if key == item or (not whole_prefix and key.startswith(folder)):
            return True
    return False
