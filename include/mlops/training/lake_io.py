"""Byte-level reads and writes of lake URIs: ``file://`` on the local target, ``s3://`` on aws.

Dispatch is on the URI scheme (as fsspec does), not on the target. ``s3://`` uses the S3 client
passed in (or a zero-argument factory of one, called only when an s3:// URI is touched), else
boto3's default client (default credential chain, ``AWS_ENDPOINT_URL`` honoured).
Local writes are atomic: a temporary file in the same folder, then a rename.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


@dataclass(frozen=True)
class ObjectInfo:
    """One object under a prefix: key relative to the prefix, size, and a content fingerprint."""

    key: str
    size: int
    etag: str


def _split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _local(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise ValueError(f"{uri!r}: only file:// and s3:// lake URIs are supported")
    return Path(parsed.path)


def _s3(client: Any) -> Any:
    """The S3 client: the one given, or built by a zero-argument factory given, or boto3's default."""
    if client is not None:
        return client() if callable(client) and not hasattr(client, "get_object") else client
    import boto3

    return boto3.client("s3")


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def join(uri: str, *parts: str) -> str:
    """``join('s3://b/models', 'x', 'y.json')`` -> ``s3://b/models/x/y.json``."""
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts if p)])


def read_bytes(uri: str, s3: Any = None) -> bytes:
    if is_s3(uri):
        bucket, key = _split_s3(uri)
        return _s3(s3).get_object(Bucket=bucket, Key=key)["Body"].read()
    return _local(uri).read_bytes()


def write_bytes(uri: str, data: bytes, s3: Any = None) -> str:
    """Write one object (atomically on local paths); return the URI."""
    if is_s3(uri):
        bucket, key = _split_s3(uri)
        _s3(s3).put_object(Bucket=bucket, Key=key, Body=data)
        return uri
    path = _local(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
    return uri


def exists(uri: str, s3: Any = None) -> bool:
    """True when the object exists, or (for a prefix) when anything is under it."""
    if is_s3(uri):
        bucket, key = _split_s3(uri)
        return _s3(s3).list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount", 0) > 0
    path = _local(uri)
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def list_objects(uri: str, s3: Any = None) -> list[ObjectInfo]:
    """Every object under a prefix (or the one object), sorted by key; etag = MD5 locally, S3's ETag on s3."""
    if is_s3(uri):
        bucket, prefix = _split_s3(uri)
        out = []
        for page in _s3(s3).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                rel = item["Key"][len(prefix) :].lstrip("/")
                out.append(ObjectInfo(rel, int(item["Size"]), str(item["ETag"]).strip('"')))
        return sorted(out, key=lambda o: o.key)
    root = _local(uri)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    out = []
    for path in files:
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
        rel = "" if path == root else path.relative_to(root).as_posix()
        out.append(ObjectInfo(rel, path.stat().st_size, digest.hexdigest()))
    return out


def upload_tree(files: dict[str, bytes], prefix_uri: str, s3: Any = None) -> list[str]:
    """Write ``relative path -> bytes`` under a prefix; return the URIs."""
    return [write_bytes(join(prefix_uri, rel), data, s3) for rel, data in sorted(files.items())]


def copy_tree_local(source: Path, destination_uri: str) -> Path:
    """Publish a local folder to a file:// prefix: copy to a staging sibling, then swap it in."""
    target = _local(destination_uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging-"))
    shutil.copytree(source, staging, dirs_exist_ok=True)
    if target.exists():
        retired = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.replace(target, retired / "tree")
        os.replace(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, target)
    return target
