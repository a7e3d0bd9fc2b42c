"""Argument checks shared by every layer: each raises a ``ValueError`` that names the argument, the
value it got and what is allowed; an unknown name gets a "did you mean" hint
(:func:`did_you_mean`, the one place that asks :mod:`difflib`)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_matches(value: object, options: Iterable[str], *, n: int = 1, cutoff: float = 0.6) -> list[str]:
    """The (at most ``n``) options closest to ``value``, best first (:func:`difflib.get_close_matches`)."""
    return difflib.get_close_matches(str(value), list(options), n=n, cutoff=cutoff)


def did_you_mean(
    value: object, options: Iterable[str], *, cutoff: float = 0.6, template: str = " (did you mean {!r}?)"
) -> str:
    """A hint naming the option closest to ``value`` (``template`` formatted with it), or ``""``."""
    close = close_matches(value, options, cutoff=cutoff)
    return template.format(close[0]) if close else ""


def unknown_choice(what: str, value: object, known: Iterable[str]) -> str:
    """The message for an unknown ``what``: ``unknown what 'x' (did you mean 'y'?); known: a, b``."""
    options = sorted(known)
    return f"unknown {what} {value!r}{did_you_mean(value, options)}; known: {', '.join(options)}"


def check_keys(keys: Iterable[str], accepted: Iterable[str], message: str,
               hint_template: str = " (did you mean {!r}?)", **fields: object) -> None:
    """Raise ``ValueError`` for the first of ``keys`` not in ``accepted``; ``message`` is formatted
    with ``key`` (repr), ``hint`` (:func:`did_you_mean` with ``hint_template``), ``accepted``
    (comma-joined, or ``none``) and ``fields``."""
    valid = list(accepted)
    for key in keys:
        if key not in valid:
            raise ValueError(message.format(key=repr(key), hint=did_you_mean(key, valid, template=hint_template),
                                             accepted=", ".join(valid) or "none", **fields))


def check_density(density: float, name: str = "density") -> float:
    """Return ``density`` as a float if it is a number (not a bool or a string) in (0, 1], else raise
    ``ValueError``."""
    if isinstance(density, (bool, str, bytes)):
        raise ValueError(f"{name} must be a number in (0, 1], got {density!r}")
    try:
        value = float(density)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in (0, 1], got {density!r}") from None
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {density!r}")
    return value


def check_fraction(value: float, name: str) -> float:
    """Return ``value`` as a float if it is a number (not a bool) in [0, 1), else raise ``ValueError``
    naming ``name``."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}") from None
    if not 0.0 <= number < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return number


def check_drop_fraction(drop_fraction: float, name: str = "drop_fraction") -> float:
    """Return ``drop_fraction`` as a float if it lies in [0, 1), else raise ``ValueError``."""
    return check_fraction(drop_fraction, name)


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
    raise ValueError(unknown_choice(name, value, options))


def check_layer_size(value: int, name: str) -> int:
    """Return ``value`` if it is an integer >= 1 (a layer's ``in_features`` / ``out_features``; numpy
    integers included), else raise ``ValueError`` naming ``name``."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)
