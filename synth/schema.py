"""Checks for the values read from the user's files (session, presets, effect chains): each returns the value in
the type the program uses, or raises SchemaError naming the file and the field, so nothing wrongly typed, out of
range or non-finite gets past the boundary where a file is read."""
from __future__ import annotations

import math
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class SchemaError(ValueError):
    """A value in a file that is the wrong type or out of range: 'FILE: FIELD must be …, not …'."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def fail(where: str, field: str, wants: str, value: Any) -> SchemaError:
    return SchemaError(f"{where}: '{field}' must be {wants}, not {_show(value)}")


def obj(value: Any, where: str, field: str = "the file") -> dict:
    if not isinstance(value, dict):
        raise fail(where, field, "a JSON object", value)
    return value


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer with hundreds of digits
        return False


def number(value: Any, where: str, field: str, lo: float = -math.inf, hi: float = math.inf,
           clamp: bool = False) -> float:
    """A finite number (not a bool) in [lo, hi]; with clamp, one outside the range is brought into it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        raise fail(where, field, "a finite number", value)
    if lo <= value <= hi:
        return float(value)
    if clamp:
        return float(min(max(value, lo), hi))
    raise fail(where, field, f"between {lo:g} and {hi:g}", value)


def integer(value: Any, where: str, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise fail(where, field, f"a whole number from {lo} to {hi}", value)
    return value


def boolean(value: Any, where: str, field: str) -> bool:
    if not isinstance(value, bool):
        raise fail(where, field, "true or false", value)
    return value


def string(value: Any, where: str, field: str, max_len: int = 1000, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise fail(where, field, f"text of at most {max_len} characters", value)
    return value


def items(value: Any, where: str, field: str, check: Callable[[Any, str], T], max_len: int = 1000) -> list[T]:
    """A list whose every element passes check(element, its field name)."""
    if not isinstance(value, list) or len(value) > max_len:
        raise fail(where, field, f"a list of at most {max_len}", value)
    return [check(v, f"{field}[{i}]") for i, v in enumerate(value)]
