"""The shared helpers of sparse_rl._util: checks with hints, the registry, JSON cleaning."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sparse_rl._util.jsonutil import to_jsonable
from sparse_rl._util.registry import Registry
from sparse_rl._util.validation import check_choice, check_keys, did_you_mean


def test_did_you_mean_and_choices() -> None:
    assert did_you_mean("sett", ["set", "rigl"]) == " (did you mean 'set'?)"
    assert did_you_mean("zzz", ["set", "rigl"]) == ""
    assert did_you_mean("sett", ["set"], template="; did you mean {!r}?") == "; did you mean 'set'?"
    assert check_choice("set", ["set", "rigl"], "algorithm") == "set"
    with pytest.raises(ValueError, match=r"unknown algorithm 'sett' \(did you mean 'set'\?\); known: rigl, set"):
        check_choice("sett", ["set", "rigl"], "algorithm")
    with pytest.raises(ValueError, match=r"bad 'stdd' \(did you mean 'std'\?\); ok: std"):
        check_keys({"stdd": 1}, ["std"], "bad {key}{hint}; ok: {accepted}")


def test_registry_registers_and_builds() -> None:
    registry: Registry[type] = Registry("widget", "knob")

    @registry.register
    class Widget:
        name = "widget"

        def __init__(self, size: int = 1) -> None:
            self.size = size

    assert registry.build("widget", size=3).size == 3
    with pytest.raises(ValueError, match=r"unknown widget 'widgit' \(did you mean 'widget'\?\)"):
        registry.lookup("widgit")
    expected = r"unknown knob 'sise' of widget 'widget' \(did you mean 'size'\?\); accepted: size"
    with pytest.raises(ValueError, match=expected):
        registry.build("widget", sise=3)
    copy = registry.copy()
    assert isinstance(copy, Registry) and copy == registry and copy is not registry

    class Nameless:
        name = ""

    with pytest.raises(ValueError, match="non-empty class attribute 'name'"):
        registry.register(Nameless)


def test_to_jsonable() -> None:
    data = {1: (np.float32(0.5), np.arange(2)), "p": Path("a/b"), "x": math.nan, "y": np.float64("inf")}
    assert to_jsonable(data) == {"1": [0.5, [0, 1]], "p": "a/b", "x": None, "y": None}
    kept = to_jsonable({"x": math.nan}, finite=False)
    assert math.isnan(kept["x"])
