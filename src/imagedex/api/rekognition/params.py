"""Checks on request members, each failing with InvalidParameterException naming the member
(boto3 checks types before sending; other clients may not)."""

from __future__ import annotations

import math
from typing import Any

from imagedex.api.rekognition.errors import RekognitionError


def _invalid(message: str) -> RekognitionError:
    return RekognitionError("InvalidParameterException", message)


def number(
    params: dict[str, Any],
    name: str,
    low: float,
    high: float | None,
    *,
    integer: bool = False,
    where: str = "",
) -> float | None:
    """The member as a number within [low, high], None when absent."""
    value = params.get(name)
    if value is None:
        return None
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(f"{where}{name} must be {kind}")
    if integer and not float(value).is_integer():
        raise _invalid(f"{where}{name} must be {kind}")
    if not math.isfinite(value) or value < low or (high is not None and value > high):
        span = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
        raise _invalid(f"{where}{name} must be {span}, not {value}")
    return float(value)


def structure(params: dict[str, Any], name: str, where: str = "") -> dict[str, Any]:
    """The member as an object ({} when absent)."""
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(f"{where}{name} must be an object")
    return value


def string_list(params: dict[str, Any], name: str, where: str = "") -> list[str]:
    value = params.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"{where}{name} must be a list of strings")
    return value


def box(value: Any, where: str) -> tuple[float, float, float, float]:
    """A BoundingBox member as (left, top, width, height) fractions."""
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be an object")
    left, top, width, height = (
        number(value, name, 0, 1, where=f"{where}.") or 0.0
        for name in ("Left", "Top", "Width", "Height")
    )
    return left, top, width, height
