"""Argument checks shared by the sparse core: each raises a ``ValueError`` that names the argument,
the value it got and what is allowed."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def check_density(density: float, name: str = "density") -> float:
    """Return ``density`` as a float if it lies in (0, 1], else raise ``ValueError``."""
    try:
        value = float(density)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in (0, 1], got {density!r}") from None
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {density!r}")
    return value


def check_drop_fraction(drop_fraction: float, name: str = "drop_fraction") -> float:
    """Return ``drop_fraction`` as a float if it lies in [0, 1), else raise ``ValueError``."""
    try:
        value = float(drop_fraction)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1), got {drop_fraction!r}") from None
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {drop_fraction!r}")
    return value


def check_positive_int(value: int, name: str) -> int:
    """Return ``value`` if it is an integer >= 1, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def check_non_negative_int(value: int, name: str) -> int:
    """Return ``value`` if it is an integer >= 0, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return value


def check_choice(value: str, allowed: Iterable[str], name: str) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ``ValueError`` listing them (and the
    closest match when there is one)."""
    options = sorted(allowed)
    if value in options:
        return value
    close = difflib.get_close_matches(str(value), options, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown {name} {value!r}{hint}; known: {', '.join(options)}")
