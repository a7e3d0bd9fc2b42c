"""JSON helpers: plain data from numpy scalars and arrays, paths, tuples and non-finite floats."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np


def to_jsonable(value: Any, *, finite: bool = True) -> Any:
    """``value`` as plain JSON data: mappings (keys as str), lists and tuples (as lists), numpy
    arrays (``tolist``) and scalars (``item``), paths (as str).

    :param finite: write NaN and infinities as ``None`` (strict JSON); ``False`` keeps them (Python's
        ``json`` writes ``NaN``/``Infinity`` and reads them back)
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, finite=finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, finite=finite) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist(), finite=finite)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, PurePath):
        return str(value)
    if finite and isinstance(value, float) and not math.isfinite(value):
        return None
    return value
