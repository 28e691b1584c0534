"""Delayed ground truth: each order's terminal status, from the DMS-replicated ``orders`` table (job code).

The raw table (``raw/dms/<schema>/orders/``) holds DMS's full load and CDC files; an order's latest
state is its last change by ``dms_change_seq`` (``dms_commit_ts`` breaks ties), deletes removed,
the rule :mod:`mlops.etl.build_features` applies. An order is labelled once that state is terminal
(delivered, returned or cancelled); the label is keyed by the order id as text, which is the
inference id the traffic sends (:mod:`mlops.monitoring.traffic`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

KEY = "order_id"
STATUS = "status"
CHANGE_COLUMNS = ("Op", "dms_change_seq", "dms_commit_ts")
TERMINAL = ("delivered", "returned", "cancelled")


def read_orders(folder: Path) -> pd.DataFrame:
    """``order_id``, ``status`` and the change columns of every Parquet file under ``folder``."""
    import pyarrow.dataset as ds

    files = sorted(str(p) for p in folder.rglob("*.parquet") if not p.name.startswith((".", "_")))
    if not files:
        return pd.DataFrame({KEY: pd.Series(dtype="object"), STATUS: pd.Series(dtype="object")})
    dataset = ds.dataset(files, format="parquet")
    wanted = [c for c in (KEY, STATUS, *CHANGE_COLUMNS) if c in dataset.schema.names]
    missing = {KEY, STATUS} - set(wanted)
    if missing:
        raise ValueError(f"{folder} has no {sorted(missing)} column: pass the raw DMS orders table as ground truth")
    return dataset.to_table(columns=wanted).to_pandas()


def latest_terminal(changes: pd.DataFrame, classes: Sequence[str] = TERMINAL) -> pd.DataFrame:
    """Each order's latest state (its last change; deletes removed) where that state is terminal."""
    changes = changes.copy()
    if "dms_commit_ts" in changes.columns:  # DMS writes it as 'yyyy-MM-dd HH:mm:ss.SSSSSS' text
        changes["dms_commit_ts"] = pd.to_datetime(changes["dms_commit_ts"], format="ISO8601", utc=True)
    order = [c for c in ("dms_change_seq", "dms_commit_ts") if c in changes.columns]
    latest = changes.sort_values(order, kind="stable") if order else changes
    latest = latest.drop_duplicates(KEY, keep="last")
    if "Op" in latest.columns:
        latest = latest[latest["Op"] != "D"]
    return latest[latest[STATUS].isin(list(classes))]


def terminal_labels(changes: pd.DataFrame, classes: Sequence[str] = TERMINAL) -> pd.Series:
    """Label (terminal status) per order id as text, from the latest state of each order."""
    done = latest_terminal(changes, classes)
    return pd.Series(done[STATUS].astype(str).to_numpy(), index=done[KEY].astype(str).to_numpy(), name="label")


def labelled_after(changes: pd.DataFrame, cutoff: str) -> int | None:
    """How many orders reached their terminal status (the commit of their latest change) after ``cutoff``
    (ISO 8601): labelled data a model trained on data up to ``cutoff`` has not seen. None without commit times."""
    if "dms_commit_ts" not in changes.columns:
        return None
    done = latest_terminal(changes)
    after = pd.Timestamp(cutoff)
    after = after.tz_localize("UTC") if after.tzinfo is None else after.tz_convert("UTC")
    return int((done["dms_commit_ts"] > after).sum())
