"""Source schema changes, met the way DMS meets them in CDC.

The replicator reads each source table as the database defines it now (:func:`reflect_table`),
records the columns it replicated (name and Arrow type, :func:`column_types`) and compares
them with the source before every CDC batch (:func:`diff_columns`):

- a column *added* at the end flows on: later files carry it, earlier files read it as NULL,
  and the change counts as a DDL in the table statistics (DMS's ``AppliedDdls``);
- a column *dropped*, *renamed* or *retyped* cannot be applied to files already written, so
  replication stops with a :class:`SchemaChangeError` that names each change and the fix: a
  reload of the table (``mlops replicate --reload TABLE``; DAG Param ``reload_tables``;
  DMS's ``ReloadTables``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, MetaData, Table

from mlops.replication.checks import reload_fix
from mlops.replication.lake_io import arrow_type

ColumnTypes = list[tuple[str, str]]


def reflect_table(conn: Connection, name: str) -> Table:
    """The source table ``name`` as the database defines it now (columns, types, primary key)."""
    return Table(name, MetaData(), autoload_with=conn)


def column_types(table: Table) -> ColumnTypes:
    """(name, Arrow type) of every column of ``table``, in table order; ValueError for unmappable types."""
    return [(column.name, str(arrow_type(column))) for column in table.columns]


@dataclass(frozen=True)
class ColumnChange:
    """One difference between the replicated columns of a table and its source columns now."""

    table: str
    kind: str  # added | dropped | renamed | retyped
    column: str
    detail: str

    def describe(self) -> str:
        """E.g. ``orders: column shipping_fee was renamed to fee``."""
        return f"{self.table}: column {self.column} was {self.kind}{' ' + self.detail if self.detail else ''}"


def diff_columns(table: str, replicated: ColumnTypes, current: ColumnTypes) -> list[ColumnChange]:
    """The changes that turn the ``replicated`` columns into the ``current`` ones.

    A column missing at a position where a new column of the same type now stands is taken as
    renamed; new columns after the replicated ones are added; every other difference is a drop,
    an addition in the middle or a type change.
    """
    before, after = dict(replicated), dict(current)
    changes: list[ColumnChange] = []
    for position, (name, kind) in enumerate(replicated):
        if name in after:
            if after[name] != kind:
                changes.append(ColumnChange(table, "retyped", name, f"from {kind} to {after[name]}"))
            continue
        same_place = current[position] if position < len(current) else None
        if same_place and same_place[0] not in before and same_place[1] == kind:
            changes.append(ColumnChange(table, "renamed", name, f"to {same_place[0]}"))
        else:
            changes.append(ColumnChange(table, "dropped", name, ""))
    renamed_to = {c.detail.removeprefix("to ") for c in changes if c.kind == "renamed"}
    for position, (name, kind) in enumerate(current):
        if name in before or name in renamed_to:
            continue
        where = "" if position >= len(replicated) else f"at position {position + 1}, not at the end"
        changes.append(ColumnChange(table, "added", name, f"({kind}){' ' + where if where else ''}"))
    return changes


def appended_columns(changes: Sequence[ColumnChange], replicated: ColumnTypes) -> bool:
    """True when every change is a column added after the replicated ones (what CDC can carry on)."""
    return all(c.kind == "added" and "not at the end" not in c.detail for c in changes) and bool(replicated)


class SchemaChangeError(RuntimeError):
    """The source schema changed in a way the files already in the lake cannot follow."""

    def __init__(self, changes: Sequence[ColumnChange]) -> None:
        self.changes = list(changes)
        tables = list(dict.fromkeys(c.table for c in self.changes))
        lines = "; ".join(c.describe() for c in self.changes)
        super().__init__(
            f"the source schema changed since the tables were loaded ({lines}); CDC cannot apply "
            f"{'this change' if len(self.changes) == 1 else 'these changes'} to the files already in the lake, "
            f"so replication stopped before applying anything. {reload_fix(tables)[0].upper()}{reload_fix(tables)[1:]}"
        )
