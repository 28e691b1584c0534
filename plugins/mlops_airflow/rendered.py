"""Typed values from rendered template fields: the one place a Param's string becomes a bool or a number.

A templated operator argument reaches ``execute`` as the text Jinja rendered: ``"{{ params.force }}"``
is ``"True"``, an empty Param is ``""`` or ``"None"``. The same argument may also arrive typed (set in
Python, or resolved from an XCom). These functions accept both, treat an empty value as "not set" (the
caller's default applies), and name the argument when the value is not of its type.
"""

from __future__ import annotations

import json
from typing import Any

UNSET_TEXT = ("", "none", "null")
TRUE_TEXT = ("true", "1", "yes", "on")
FALSE_TEXT = ("false", "0", "no", "off")


def is_unset(value: Any) -> bool:
    """``None``, or a rendered empty Param (``""``, ``"None"``, ``"null"``)."""
    return value is None or (isinstance(value, str) and value.strip().lower() in UNSET_TEXT)


def as_bool(value: Any, default: bool = False, name: str = "value") -> bool:
    """A flag: ``True``/``"true"``/``"1"``/``"yes"``/``"on"`` (and their opposites); unset gives ``default``."""
    if is_unset(value):
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_TEXT:
        return True
    if text in FALSE_TEXT:
        return False
    raise ValueError(f"{name}={value!r} is not a boolean; use true or false")


def as_float(value: Any, default: float | None = None, name: str = "value") -> float | None:
    """A number; unset gives ``default``."""
    if is_unset(value):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a number") from None


def as_dict(value: Any) -> dict[str, Any]:
    """A dict that may arrive rendered as JSON text; unset gives ``{}``."""
    if is_unset(value):
        return {}
    return dict(json.loads(value) if isinstance(value, str) else value)


def as_json(value: Any) -> Any:
    """A JSON document that may arrive as text (a request body); unset gives ``None``."""
    if is_unset(value):
        return None
    return json.loads(value) if isinstance(value, str) else value
