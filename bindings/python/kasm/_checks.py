"""Argument checks shared by the wrappers: wrong types fail with a TypeError naming the argument
before anything reaches C++ (pybind11's own message lists overloads and is hard to read)."""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional


def check_str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def check_optional_str(value: Any, name: str) -> Optional[str]:
    if value is None:
        return None
    return check_str(value, name)


def check_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


def check_str_map(value: Any, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping of str to str, not {type(value).__name__}")
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"{name} must map str to str; got {type(k).__name__} -> {type(v).__name__}")
    return dict(value)


def model_json(value: Any, name: str) -> str:
    """A model (a mapping in the library's JSON form) as JSON text."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping (the model's JSON form), not {type(value).__name__}")
    try:
        return json.dumps(dict(value))
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} is not JSON-serialisable: {e}") from None
