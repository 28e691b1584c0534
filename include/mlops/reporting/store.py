"""Where the per-minute aggregates live: DynamoDB, or a SQLite table that executes the same requests.

Both stores take the request dicts of :mod:`mlops.reporting.requests`: ``update_item(**request)``
and ``query(**request)``. :class:`SqliteTable` understands exactly the expressions those builders
write (``SET #a = :v ADD #b :w, ...`` and ``pk = :pk AND #m BETWEEN :a AND :b``) and refuses others.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops.reporting import requests

DEFAULT_TABLE = "realtime-metrics"
_CLAUSE = re.compile(r"\b(SET|ADD)\b")


class SqliteTable:
    """A local stand-in of the DynamoDB aggregates table (UpdateItem SET/ADD and Query)."""

    def __init__(self, path: Path | str, table: str = DEFAULT_TABLE) -> None:
        self.path, self.table = Path(path), table
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS aggregates (pk TEXT NOT NULL, minute TEXT NOT NULL, "
                "attribute TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (pk, minute, attribute))"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    @staticmethod
    def _parse(expression: str) -> list[tuple[str, str, str]]:
        """[(action, name placeholder, value placeholder)] of a ``SET ... ADD ...`` expression."""
        parts = _CLAUSE.split(expression.strip())
        if parts[0].strip():
            raise ValueError(f"unsupported UpdateExpression {expression!r}")
        out = []
        for action, body in zip(parts[1::2], parts[2::2], strict=True):
            for item in filter(None, (s.strip() for s in body.split(","))):
                tokens = item.replace("=", " ").split()
                if len(tokens) != 2:
                    raise ValueError(f"unsupported clause {item!r} in {expression!r}")
                out.append((action, tokens[0], tokens[1]))
        return out

    def update_item(
        self,
        *,
        TableName: str,
        Key: dict[str, Any],
        UpdateExpression: str,
        ExpressionAttributeNames: dict[str, str],
        ExpressionAttributeValues: dict[str, Any],
    ) -> dict[str, Any]:
        pk, minute = Key["pk"]["S"], Key["minute"]["S"]
        rows = []
        for action, name, value in self._parse(UpdateExpression):
            number = float(ExpressionAttributeValues[value]["N"])
            rows.append((action, pk, minute, ExpressionAttributeNames.get(name, name), number))
        with self._lock, self._connect() as db:
            for action, *values in rows:
                update = "value + excluded.value" if action == "ADD" else "excluded.value"
                db.execute(
                    "INSERT INTO aggregates VALUES (?, ?, ?, ?) ON CONFLICT (pk, minute, attribute) "  # nosec B608  # identifiers from the project's own schema constants, values bound as parameters
                    f"DO UPDATE SET value = {update}",
                    values,
                )
        return {}

    def query(
        self,
        *,
        TableName: str,
        KeyConditionExpression: str,
        ExpressionAttributeNames: dict[str, str],
        ExpressionAttributeValues: dict[str, Any],
    ) -> dict[str, Any]:
        if KeyConditionExpression != "pk = :pk AND #m BETWEEN :a AND :b":
            raise ValueError(f"unsupported KeyConditionExpression {KeyConditionExpression!r}")
        values = {k: v["S"] for k, v in ExpressionAttributeValues.items()}
        with self._connect() as db:
            rows = db.execute(
                "SELECT minute, attribute, value FROM aggregates WHERE pk = ? AND minute BETWEEN ? AND ? "
                "ORDER BY minute, attribute",
                (values[":pk"], values[":a"], values[":b"]),
            ).fetchall()
        items: dict[str, dict[str, Any]] = {}
        for minute, attribute, value in rows:
            item = items.setdefault(minute, {"pk": {"S": values[":pk"]}, "minute": {"S": minute}})
            item[attribute] = {"N": repr(value)}
        return {"Items": list(items.values()), "Count": len(items)}


class Store:
    """A table (DynamoDB client or SqliteTable) plus its name and the aggregates' TTL."""

    def __init__(self, client: Any, table: str, ttl_days: int = 30) -> None:
        self.client, self.table, self.ttl_days = client, table, ttl_days

    def add(self, pk: str, minute: str, counters: dict[str, float]) -> None:
        self.client.update_item(**requests.update_item_request(self.table, pk, minute, counters, self.ttl_days))

    def items(self, pk: str, first_minute: str, last_minute: str) -> list[dict[str, Any]]:
        request = requests.query_request(self.table, pk, first_minute, last_minute)
        out, start = [], None
        while True:
            response = self.client.query(**request, **({"ExclusiveStartKey": start} if start else {}))
            out += [requests.item_values(i) for i in response.get("Items", [])]
            start = response.get("LastEvaluatedKey")
            if not start:
                return out


def default_sqlite_path() -> Path:
    home = os.environ.get("MLOPS_HOME") or str(Path(__file__).resolve().parents[3] / ".mlops")
    return Path(home) / "reporting" / "realtime.sqlite"


def dynamodb_store(table: str, ttl_days: int = 30, client: Any = None) -> Store:
    if client is None:
        import boto3

        client = boto3.client("dynamodb")
    return Store(client, table, ttl_days)


def sqlite_store(path: Path | str | None = None, ttl_days: int = 30) -> Store:
    return Store(SqliteTable(path or default_sqlite_path()), DEFAULT_TABLE, ttl_days)


def store_from_env(environ: dict[str, str] | None = None) -> Store:
    """The Lambda's store: DynamoDB ``METRICS_TABLE`` when set, else SQLite (``MLOPS_REPORTING_DB`` or the default)."""
    env = os.environ if environ is None else environ
    ttl = int(env.get("AGGREGATE_TTL_DAYS", "30"))
    if env.get("METRICS_TABLE"):
        return dynamodb_store(env["METRICS_TABLE"], ttl)
    return sqlite_store(env.get("MLOPS_REPORTING_DB") or None, ttl)


def open_store(reporting: Any, dynamodb: Any = None) -> Store:
    """The store of the pipeline config's ``reporting`` section (DynamoDB table if set, else SQLite).

    ``dynamodb``: the DynamoDB client (e.g. the provider hook's on an Airflow worker), or a
    zero-argument factory of one, called only when the table is DynamoDB; default boto3's.
    """
    if reporting.dynamodb_table:
        client = dynamodb() if callable(dynamodb) and not hasattr(dynamodb, "meta") else dynamodb
        return dynamodb_store(reporting.dynamodb_table, reporting.ttl_days, client)
    return sqlite_store(reporting.sqlite_path, reporting.ttl_days)


def read_window(store: Store, pks: list[str], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Every aggregate of ``pks`` whose minute is in ``[start, end]``, ordered by pk and minute."""
    first, last = start.strftime("%Y-%m-%dT%H:%MZ"), end.strftime("%Y-%m-%dT%H:%MZ")
    return [row for pk in pks for row in store.items(pk, first, last)]
