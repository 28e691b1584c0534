"""The curated table's snapshots on ``file://`` or ``s3://``: staged output swapped in behind an atomic pointer.

Layout under the curated URI (see ``include/mlops/etl/README.md``)::

    _current.json                      pointer to the newest snapshot (written last: the commit)
    snapshots/<snapshot_id>/...        one folder per swap; the current one and the one before it are kept
    snapshots/<snapshot_id>/_manifest.json

:class:`LakeFiles` is the little storage it needs: plain file I/O on ``file://``, an S3 client on
``s3://`` (boto3's default in a Glue job, the provider hook's client on the Airflow worker).
Standard library only, so the Glue jobs can ship it in their code bundle.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from typing import Any
from urllib.parse import urlparse

POINTER_NAME = "_current.json"
MANIFEST_NAME = "_manifest.json"
KEEP_SNAPSHOTS = 2  # the current one and the one before it (EDA compares against it)


def run_key_safe(run_key: str) -> str:
    """A run id (``scheduled__2025-01-01T00:00:00+00:00``) as a key segment safe on S3 and disks."""
    safe = re.sub(r"[^A-Za-z0-9_.=-]+", "-", run_key).strip("-.")
    if not safe:
        raise ValueError(f"run key {run_key!r} has no usable characters")
    return safe


class LakeFiles:
    """The few storage operations the swap needs, on ``file://`` or ``s3://`` URIs."""

    def __init__(self, s3_client: Any = None) -> None:
        """``s3_client``: an S3 client, a zero-argument factory of one (called on first ``s3://`` use), or
        ``None`` (also from the factory) for boto3's default client."""
        self._s3 = s3_client

    @staticmethod
    def _split(uri: str) -> tuple[str, str, str]:
        parsed = urlparse(uri)
        return parsed.scheme, parsed.netloc, parsed.path

    def s3(self) -> Any:
        if callable(self._s3) and not hasattr(self._s3, "get_object"):
            self._s3 = self._s3()
        if self._s3 is None:
            import boto3  # only on the aws target (Glue has it)

            self._s3 = boto3.client("s3")
        return self._s3

    def read_text(self, uri: str) -> str | None:
        scheme, bucket, path = self._split(uri)
        if scheme == "file":
            return open(path, encoding="utf-8").read() if os.path.exists(path) else None
        try:
            return self.s3().get_object(Bucket=bucket, Key=path.lstrip("/"))["Body"].read().decode("utf-8")
        except self.s3().exceptions.NoSuchKey:
            return None

    def write_text_atomic(self, uri: str, text: str) -> None:
        """Readers see the old or the new content, never a mix: temp + os.replace, or one S3 PUT."""
        scheme, bucket, path = self._split(uri)
        if scheme == "file":
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp-{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        else:
            self.s3().put_object(Bucket=bucket, Key=path.lstrip("/"), Body=text.encode("utf-8"))

    def list_children(self, uri: str) -> list[str]:
        """Names of the direct sub-folders of ``uri``."""
        scheme, bucket, path = self._split(uri)
        if scheme == "file":
            return (
                sorted(n for n in os.listdir(path) if os.path.isdir(os.path.join(path, n)))
                if os.path.isdir(path)
                else []
            )
        prefix = path.strip("/") + "/"
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
        return sorted(p["Prefix"][len(prefix) :].rstrip("/") for page in pages for p in page.get("CommonPrefixes", []))

    def _keys(self, bucket: str, prefix: str) -> list[str]:
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def move_tree(self, src: str, dst: str) -> None:
        """Rename a folder (local, atomic) or copy then delete its objects (S3)."""
        scheme, bucket, src_path = self._split(src)
        _, dst_bucket, dst_path = self._split(dst)
        if scheme == "file":
            os.makedirs(os.path.dirname(dst_path), exist_ok=True)
            os.rename(src_path, dst_path)
            return
        src_prefix, dst_prefix = src_path.strip("/") + "/", dst_path.strip("/") + "/"
        keys = self._keys(bucket, src_prefix)
        for key in keys:
            self.s3().copy_object(
                Bucket=dst_bucket, Key=dst_prefix + key[len(src_prefix) :], CopySource={"Bucket": bucket, "Key": key}
            )
        self.delete_tree(src)

    def merge_tree(self, src: str, dst: str) -> None:
        """Move every Parquet file under ``src`` to the same relative path under ``dst``, keeping what ``dst``
        holds already (an append), then remove ``src``."""
        scheme, bucket, src_path = self._split(src)
        _, _, dst_path = self._split(dst)
        if scheme == "file":
            for folder, _dirs, names in os.walk(src_path):
                for name in (n for n in names if n.endswith(".parquet")):
                    rel = os.path.relpath(os.path.join(folder, name), src_path)
                    os.renames(os.path.join(folder, name), os.path.join(dst_path, rel))
            shutil.rmtree(src_path, ignore_errors=True)
            return
        src_prefix, dst_prefix = src_path.strip("/") + "/", dst_path.strip("/") + "/"
        for key in (k for k in self._keys(bucket, src_prefix) if k.endswith(".parquet")):
            rel = key[len(src_prefix) :]
            self.s3().copy_object(Bucket=bucket, Key=dst_prefix + rel, CopySource={"Bucket": bucket, "Key": key})
        self.delete_tree(src)

    def put_tree(self, local_dir: str, uri: str) -> None:
        """Copy every file under the local folder ``local_dir`` to the prefix ``uri`` (same relative keys)."""
        scheme, bucket, path = self._split(uri)
        if scheme == "file":
            shutil.copytree(local_dir, path, dirs_exist_ok=True)
            return
        for folder, _dirs, names in os.walk(local_dir):
            for name in names:
                rel = os.path.relpath(os.path.join(folder, name), local_dir).replace(os.sep, "/")
                self.s3().upload_file(os.path.join(folder, name), bucket, f"{path.strip('/')}/{rel}")

    def delete(self, uri: str) -> None:
        """Remove one file or object (nothing happens if it does not exist)."""
        scheme, bucket, path = self._split(uri)
        if scheme == "file":
            if os.path.exists(path):
                os.remove(path)
        else:
            self.s3().delete_object(Bucket=bucket, Key=path.lstrip("/"))

    def delete_tree(self, uri: str) -> None:
        scheme, bucket, path = self._split(uri)
        if scheme == "file":
            shutil.rmtree(path, ignore_errors=True)
            return
        keys = self._keys(bucket, path.strip("/") + "/")
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self.s3().delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})


def next_snapshot_id(existing: list[str], run_key: str) -> str:
    """``run_key`` the first time, then ``run_key.2``, ``run_key.3``: never reuse a visible folder."""
    if run_key not in existing:
        return run_key
    attempt = 2
    while f"{run_key}.{attempt}" in existing:
        attempt += 1
    return f"{run_key}.{attempt}"


def swap_in(files: LakeFiles, staged_uri: str, curated_uri: str, run_key: str, manifest: dict[str, Any]) -> dict:
    """Move the staged output to a new snapshot and make it current (the pointer write commits)."""
    snapshots = f"{curated_uri.rstrip('/')}/snapshots"
    previous = json.loads(files.read_text(f"{curated_uri.rstrip('/')}/{POINTER_NAME}") or "null")
    snapshot_id = next_snapshot_id(files.list_children(snapshots), run_key)
    snapshot_uri = f"{snapshots}/{snapshot_id}"
    pointer = {
        **manifest,
        "snapshot_id": snapshot_id,
        "uri": snapshot_uri,
        "previous": {k: previous[k] for k in ("snapshot_id", "uri", "rows", "splits")} if previous else None,
    }
    files.move_tree(staged_uri, snapshot_uri)
    files.write_text_atomic(f"{snapshot_uri}/{MANIFEST_NAME}", json.dumps(pointer, indent=2, sort_keys=True))
    files.write_text_atomic(f"{curated_uri.rstrip('/')}/{POINTER_NAME}", json.dumps(pointer, indent=2, sort_keys=True))
    keep = {snapshot_id, previous["snapshot_id"] if previous else None}
    for stale in files.list_children(snapshots):
        if stale not in keep:
            files.delete_tree(f"{snapshots}/{stale}")
    return pointer


def read_current(curated_uri: str, files: LakeFiles | None = None) -> dict[str, Any] | None:
    """The current snapshot's pointer (``None`` before the first successful run)."""
    text = (files or LakeFiles()).read_text(f"{curated_uri.rstrip('/')}/{POINTER_NAME}")
    return json.loads(text) if text else None
