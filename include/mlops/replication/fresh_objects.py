"""Lake objects that arrived since the last check: the fresh-objects evidence of the replication check.

One rule (:func:`is_fresh`), two listers: :func:`fresh_s3_objects_by_table` pages ListObjectsV2 with
the boto3 client it is given (the aws worker: standard library and boto3 only) and
:func:`mlops.replication.lake_io.fresh_objects_by_table` walks any lake through pyarrow (local).
The replication check compares them per table with the changes DMS applied
(:mod:`mlops.replication.source_changes`).

On S3 the listing stays small however long DMS has been writing: CDC files sit in date folders
(``<table>/YYYY/MM/DD/``), which sort chronologically and before the ``LOAD`` files, so each
table is listed from the date folder of the day before ``since`` on (a file written after
``since`` into an older folder would mean a CDC lag of a day, which the lag check fails anyway).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from mlops.aws.dms_requests import DATE_PARTITION_FORMAT, list_objects_request


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


def _pages(s3_client: Any, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    while True:
        page = s3_client.list_objects_v2(**request)
        yield page
        if not page.get("IsTruncated"):
            return
        request = {**request, "ContinuationToken": page["NextContinuationToken"]}


def _count(s3_client: Any, request: dict[str, Any], since: datetime | None) -> int:
    return sum(
        is_fresh(item["Key"].rsplit("/", 1)[-1], item.get("LastModified"), since)
        for page in _pages(s3_client, request)
        for item in page.get("Contents", [])
    )


def fresh_s3_objects_by_table(s3_client: Any, uri: str, since: datetime | None) -> dict[str, int]:
    """Fresh objects per table folder under ``s3://bucket/prefix`` (the raw schema folder), listed with boto3."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"{uri!r} is not an s3://bucket/prefix URI; the aws lake root is s3://<aws.lake_bucket>")
    bucket, root = parsed.netloc, parsed.path.strip("/")
    cutoff = as_utc(since)
    first_day = (cutoff - timedelta(days=1)).strftime(DATE_PARTITION_FORMAT) if cutoff else None
    tables = [
        folder["Prefix"]
        for page in _pages(s3_client, list_objects_request(bucket, root, folders_only=True))
        for folder in page.get("CommonPrefixes", [])
    ]
    return {
        table.rstrip("/").rsplit("/", 1)[-1]: _count(
            s3_client, list_objects_request(bucket, table, start_after=first_day), cutoff
        )
        for table in tables
    }


def count_fresh_s3_objects(s3_client: Any, uri: str, since: datetime | None) -> int:
    """How many objects under ``s3://bucket/prefix`` (the raw schema folder) are fresh, listed with boto3."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"{uri!r} is not an s3://bucket/prefix URI; the aws lake root is s3://<aws.lake_bucket>")
    if as_utc(since) is None:
        return _count(s3_client, list_objects_request(parsed.netloc, parsed.path.strip("/")), None)
    return sum(fresh_s3_objects_by_table(s3_client, uri, since).values())
