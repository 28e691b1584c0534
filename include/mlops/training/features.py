"""The feature spec: which curated columns the model reads, and how they are typed.

The spec is derived from the training data (every column except the key, the label, the
split and partition columns), stored in the model artifact as ``feature_spec.json`` and
used unchanged by evaluation and inference. Numeric columns (int, float, decimal, bool)
become float32 — ONNX tree ensembles compare in float32, so the native model is trained on
the same values the ONNX model sees. String columns become categoricals.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

KEY = "order_id"
LABEL = "label"
SPLIT = "split"
MISSING_CATEGORY = "__missing__"
RESERVED = (KEY, LABEL, SPLIT)


@dataclass(frozen=True)
class FeatureSpec:
    """Model inputs in order, with the label classes the model predicts."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    classes: tuple[str, ...]
    ignored: tuple[str, ...] = field(default=())
    key: str = KEY
    label: str = LABEL
    boolean: tuple[str, ...] = field(default=())  # numeric columns that are booleans (inference takes true/false)

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        raw = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})

    def save(self, path: Path) -> None:
        path.write_text(self.to_json())

    @classmethod
    def load(cls, path: Path) -> FeatureSpec:
        return cls.from_json(path.read_text())


def _is_numeric(dtype: pa.DataType) -> bool:
    return (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_decimal(dtype)
        or (pa.types.is_boolean(dtype))
    )


def _is_categorical(dtype: pa.DataType) -> bool:
    if pa.types.is_dictionary(dtype):
        return _is_categorical(dtype.value_type)
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)


def read_channel(path: str | Path) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Read every Parquet file under a channel folder; return the frame and its hive partition columns."""
    root = Path(path)
    dataset = ds.dataset(str(root), format="parquet", partitioning="hive", exclude_invalid_files=True)
    partitions = tuple(
        dict.fromkeys(
            part.split("=", 1)[0]
            for file in dataset.files
            for part in Path(file).relative_to(root).parent.parts
            if "=" in part
        )
    )
    table = dataset.to_table()
    if table.num_rows == 0:
        raise ValueError(f"channel {path} holds no rows; check that the curated features were written there")
    return table.to_pandas(), partitions


def select_split(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    """Rows of one split when the frame still carries the split column (channel = whole table)."""
    if SPLIT not in frame.columns:
        return frame
    rows = frame[frame[SPLIT].astype(str) == split]
    if rows.empty:
        raise ValueError(f"no rows with {SPLIT}={split!r}; splits present: {sorted(frame[SPLIT].astype(str).unique())}")
    return rows


def derive_spec(schema: pa.Schema, classes: list[str], partition_columns: tuple[str, ...] = ()) -> FeatureSpec:
    """The feature spec of a curated table's schema: numeric and categorical columns, others ignored.

    Identifier columns (``*_id``) are ignored: they name rows rather than describe them.
    """
    numeric, categorical, ignored, boolean = [], [], [], []
    for column in schema:
        if column.name in RESERVED or column.name in partition_columns:
            continue
        if column.name.endswith("_id"):
            ignored.append(column.name)  # an identifier names a row; as a feature it lets the model memorise
        elif _is_numeric(column.type):
            numeric.append(column.name)
            if pa.types.is_boolean(column.type):
                boolean.append(column.name)
        elif _is_categorical(column.type):
            categorical.append(column.name)
        else:
            ignored.append(column.name)
    if not numeric and not categorical:
        raise ValueError(f"no numeric or string feature columns besides {RESERVED}; schema: {schema}")
    return FeatureSpec(
        tuple(numeric), tuple(categorical), tuple(sorted(classes)), tuple(ignored), boolean=tuple(boolean)
    )


def spec_from_frame(frame: pd.DataFrame, partition_columns: tuple[str, ...] = ()) -> FeatureSpec:
    """Derive the spec from a training frame (its Arrow schema and its label values)."""
    if LABEL not in frame.columns:
        raise ValueError(f"training data has no {LABEL!r} column; columns: {list(frame.columns)}")
    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    classes = sorted(frame[LABEL].dropna().astype(str).unique())
    if len(classes) < 2:
        raise ValueError(f"training data has {len(classes)} label class(es) {classes}; need at least 2")
    return derive_spec(schema, classes, partition_columns)


def model_inputs(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The frame the model reads: spec columns in order, numeric as float32, categoricals as str."""
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        raise ValueError(f"input lacks feature column(s) {missing}; the model expects {list(spec.columns)}")
    out: dict[str, Any] = {}
    for column in spec.numeric:
        out[column] = pd.to_numeric(frame[column].astype("object"), errors="coerce").astype("float32")
    for column in spec.categorical:
        values = frame[column].astype("object")
        out[column] = values.where(values.notna(), MISSING_CATEGORY).astype(str)
    return pd.DataFrame(out, index=frame.index)


def labels(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """The label column as strings; rows with an unknown class raise."""
    values = frame[spec.label].astype(str).to_numpy()
    unknown = sorted(set(values) - set(spec.classes))
    if unknown:
        raise ValueError(f"label values {unknown} are not among the model's classes {list(spec.classes)}")
    return values
