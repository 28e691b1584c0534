"""Lake objects that arrived since the last check: the fresh-objects evidence of the replication check.

One rule (:func:`is_fresh`), two listers: :func:`count_fresh_s3_objects` pages ListObjectsV2 with
the boto3 client it is given (the aws worker: standard library and boto3 only) and
:func:`mlops.replication.lake_io.list_fresh_objects` walks any lake through pyarrow (local).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from mlops.aws.dms_requests import list_objects_request


def as_utc(moment: datetime | None) -> datetime | None:
    """``moment`` as an aware datetime; a naive one is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def is_fresh(name: str, modified: datetime | None, since: datetime | None) -> bool:
    """True for a visible object modified after ``since`` (every one when None).

    Hidden names (``_``/``.``) and folder markers (keys ending in ``/``, so an empty name) are not objects.
    """
    if not name or name.startswith(("_", ".")):
        return False
    cutoff = as_utc(since)
    if cutoff is None:
        return True
    stamp = as_utc(modified)
    return stamp is not None and stamp > cutoff


def count_fresh_s3_objects(s3_client: Any, uri: str, since: datetime | None) -> int:
    """How many objects under ``s3://bucket/prefix`` are fresh, listed with ``s3_client`` (boto3)."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"{uri!r} is not an s3://bucket/prefix URI; the aws lake root is s3://<aws.lake_bucket>")
    request = list_objects_request(parsed.netloc, parsed.path.lstrip("/"))
    fresh = 0
    while True:
        page = s3_client.list_objects_v2(**request)
        for item in page.get("Contents", []):
            fresh += is_fresh(item["Key"].rsplit("/", 1)[-1], item.get("LastModified"), since)
        if not page.get("IsTruncated"):
            return fresh
        request = {**request, "ContinuationToken": page["NextContinuationToken"]}
