"""What a replication batch did: :class:`BatchResult`, built for one batch or merged over a drain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from time import perf_counter

import pyarrow as pa
import pyarrow.compute as pc

from mlops.replication.lake_io import OP_COLUMN


@dataclass(frozen=True)
class BatchResult:
    """What one replication batch (or a drain of several) did (JSON-friendly apart from ``started``).

    ``rows`` counts rows written to the lake; ``changes`` the captured changes consumed (applied,
    quarantined, or skipped because a reload already holds them).
    """

    kind: str
    rows: int
    inserts: int
    updates: int
    deletes: int
    checkpoint: int
    started: datetime
    elapsed_seconds: float
    rows_per_second: float
    resumed: bool = False
    tables: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    validation: dict[str, str] = field(default_factory=dict)
    changes: int = 0
    quarantined: int = 0
    batches: int = 1
    pending_changes: int | None = None


def count_ops(tables: Sequence[pa.Table]) -> dict[str, int]:
    """Inserts, updates and deletes (``Op`` I/U/D) over the rows of ``tables``."""
    counts = {"I": 0, "U": 0, "D": 0}
    for table in tables:
        for item in pc.value_counts(table[OP_COLUMN]).to_pylist():
            counts[item["values"]] += item["counts"]
    return counts


def result(
    kind: str,
    tables: dict[str, int],
    ops: dict[str, int],
    files: list[str],
    checkpoint: int,
    started: datetime,
    clock: float,
    resumed: bool = False,
) -> BatchResult:
    """The result of a batch that started at ``started`` (``clock``: its ``perf_counter()``)."""
    rows = sum(tables.values())
    elapsed = perf_counter() - clock
    return BatchResult(
        kind=kind,
        rows=rows,
        inserts=ops.get("I", 0),
        updates=ops.get("U", 0),
        deletes=ops.get("D", 0),
        checkpoint=checkpoint,
        started=started,
        elapsed_seconds=round(elapsed, 3),
        rows_per_second=round(rows / elapsed, 1) if elapsed > 0 and rows else 0.0,
        resumed=resumed,
        tables=tables,
        files=files,
    )


def merged(batches: list[BatchResult], started: datetime, clock: float, pending: int, checkpoint: int) -> BatchResult:
    """One result for the CDC batches of a drain."""
    tables: dict[str, int] = {}
    for batch in batches:
        for name, rows in batch.tables.items():
            tables[name] = tables.get(name, 0) + rows
    ops = {
        "I": sum(b.inserts for b in batches),
        "U": sum(b.updates for b in batches),
        "D": sum(b.deletes for b in batches),
    }
    files = [f for b in batches for f in b.files]
    total = result("cdc", tables, ops, files, checkpoint, started, clock, any(b.resumed for b in batches))
    return replace(
        total,
        changes=sum(b.changes for b in batches),
        quarantined=sum(b.quarantined for b in batches),
        batches=len(batches),
        pending_changes=pending,
    )
