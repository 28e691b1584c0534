"""LightGBM hyperparameters: names, types and defaults, checked where they enter.

Standard library only: the pipeline config validates ``training.hyperparameters`` with it at
load time, the training DAG checks its ``hyperparameters`` Param with it before any job starts,
and ``train.py`` (inside the SageMaker job) coerces the strings SageMaker passes with it.
"""

from __future__ import annotations

from typing import Any

HYPERPARAMETER_TYPES: dict[str, type] = {
    "n_estimators": int,
    "learning_rate": float,
    "num_leaves": int,
    "max_depth": int,
    "min_child_samples": int,
    "subsample": float,
    "colsample_bytree": float,
    "reg_lambda": float,
    "class_weight": str,
    "seed": int,
    "early_stopping_rounds": int,
    "early_stopping_min_delta": float,
    "n_jobs": int,
    "max_train_rows": int,
}
DEFAULT_HYPERPARAMETERS: dict[str, Any] = {
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "max_depth": -1,
    "min_child_samples": 20,
    "subsample": 0.9,
    "colsample_bytree": 0.9,
    "reg_lambda": 0.0,
    "class_weight": "none",
    "seed": 42,
    "early_stopping_rounds": 30,
    "early_stopping_min_delta": 0.0,  # a validation logloss gain below this does not count as an improvement
    "n_jobs": 0,
    "max_train_rows": 0,  # 0 = every training row; else a seeded random sample of this many (a training budget)
}


def coerce_value(name: str, value: Any) -> Any:
    """``value`` (a number, or the string SageMaker passes) as hyperparameter ``name``'s type; raise naming both."""
    if name not in HYPERPARAMETER_TYPES:
        raise ValueError(f"unknown hyperparameter {name!r}; known: {', '.join(sorted(HYPERPARAMETER_TYPES))}")
    kind = HYPERPARAMETER_TYPES[name]
    if kind is str:
        if isinstance(value, str) and value:
            return value
    elif not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if number is not None and number == number and abs(number) != float("inf"):
            if kind is float:
                return number
            if number.is_integer():
                return int(number)
    raise ValueError(f"hyperparameter {name}={value!r} is not a valid {kind.__name__}")


def coerce_hyperparameters(raw: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with ``raw``, each value typed; an unknown name or a mistyped value raises."""
    typed = {**DEFAULT_HYPERPARAMETERS, **{name: coerce_value(name, value) for name, value in raw.items()}}
    if typed["max_train_rows"] < 0:
        rows = typed["max_train_rows"]
        raise ValueError(f"hyperparameter max_train_rows={rows} must be 0 (every row) or a row count")
    if typed["early_stopping_min_delta"] < 0:
        delta = typed["early_stopping_min_delta"]
        raise ValueError(f"hyperparameter early_stopping_min_delta={delta} must be 0 (any gain counts) or positive")
    return typed
