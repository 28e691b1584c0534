"""The local online store: the latest record per entity of each feature group, in one SQLite file.

It takes the same ``PutRecord`` dicts and answers the same ``BatchGetRecord`` dicts as SageMaker Feature
Store's runtime (:mod:`mlops.aws.feature_store_requests` builds them), so the endpoint's lookup code is the
same on both targets. Like the real online store, a record older (by event time) than the one held is not
written. Standard library only: the Glue job fills it (:mod:`mlops.etl.build_features`) and the model
package's ``inference.py`` reads it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from typing import Any

ENV_PATH = "MLOPS_ONLINE_STORE"  # the endpoint finds the local store's file here
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS records (group_name TEXT NOT NULL, record_id TEXT NOT NULL, "
    "event_time REAL NOT NULL, record TEXT NOT NULL, PRIMARY KEY (group_name, record_id))"
)
UPSERT = (
    "INSERT INTO records VALUES (?, ?, ?, ?) ON CONFLICT (group_name, record_id) DO UPDATE SET "
    "event_time = excluded.event_time, record = excluded.record WHERE excluded.event_time >= records.event_time"
)


class OnlineStore:
    """``put_record`` / ``batch_get_record`` over a SQLite file (created on first write)."""

    def __init__(self, path: str, identifiers: dict[str, tuple[str, str]] | None = None) -> None:
        """``identifiers``: group name -> (record identifier, event time) feature names, needed to write."""
        self.path, self.identifiers = path, identifiers or {}
        self._reader: sqlite3.Connection | None = None  # opened on the first read, kept (an endpoint reads per request)
        self._reader_identity = 0  # the inode the reader has open

    def _connect(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        con = sqlite3.connect(self.path, timeout=30)
        con.execute(SCHEMA)
        return con

    def put_records(self, requests: Iterable[dict[str, Any]]) -> int:
        """Apply PutRecord requests in one transaction; returns how many were given."""
        rows = [self._row(request) for request in requests]
        with closing(self._connect()) as con, con:  # one transaction: all of them or none; then closed
            con.executemany(UPSERT, rows)
        return len(rows)

    def put_record(self, **request: Any) -> dict[str, Any]:
        """PutRecord (boto3's keyword form)."""
        self.put_records([request])
        return {}

    def _row(self, request: dict[str, Any]) -> tuple[str, str, float, str]:
        group = request["FeatureGroupName"]
        if group not in self.identifiers:
            raise ValueError(
                f"feature group {group!r} is not known to this online store; known: {sorted(self.identifiers)}"
            )
        values = {v["FeatureName"]: v["ValueAsString"] for v in request["Record"]}
        record_id, event_time = self.identifiers[group]
        return group, values[record_id], float(values[event_time]), json.dumps(values, sort_keys=True)

    def batch_get_record(self, **request: Any) -> dict[str, Any]:
        """BatchGetRecord (boto3's keyword form): the records found (an unknown identifier is left out)."""
        records = []
        con = self._read_connection()
        for ask in request["Identifiers"]:
            group, ids = ask["FeatureGroupName"], list(ask["RecordIdentifiersValueAsString"])
            marks = ",".join("?" * len(ids))
            query = f"SELECT record_id, record FROM records WHERE group_name = ? AND record_id IN ({marks})"  # nosec B608  # placeholders only
            found = dict(con.execute(query, [group, *ids]).fetchall())
            for record_id in ids:
                if record_id not in found:
                    continue
                values = json.loads(found[record_id])
                record = [{"FeatureName": k, "ValueAsString": v} for k, v in values.items()]
                found_record = {"FeatureGroupName": group, "RecordIdentifierValueAsString": record_id, "Record": record}
                records.append(found_record)
        return {"Records": records, "Errors": [], "UnprocessedIdentifiers": []}

    def _read_connection(self) -> sqlite3.Connection:
        """A read-only connection, kept while the file stays the same: every query in autocommit mode sees the
        last committed writes (the features job upserts in place), so an endpoint does not pay a connect per
        request; a store file replaced or recreated (a fresh local state) is reopened."""
        try:
            identity = os.stat(self.path).st_ino
        except FileNotFoundError:
            raise FileNotFoundError(
                f"online store {self.path} does not exist; run the features DAG to fill it"
            ) from None
        if self._reader is None or self._reader_identity != identity:
            if self._reader is not None:
                self._reader.close()
            self._reader = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._reader_identity = identity
        return self._reader
