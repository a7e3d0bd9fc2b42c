"""Tiny agent settings shared by the agent tests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

TINY: dict[str, Any] = dict(learning_starts=100, batch_size=32, policy_kwargs=dict(net_arch=[32, 32]), seed=0,
                            device="cpu")


@pytest.fixture
def tiny() -> Callable[..., dict[str, Any]]:
    """Make fresh keyword arguments for a tiny, fast, seeded agent (a new copy each call: SB3 mutates
    policy_kwargs), with ``overrides`` applied."""

    def make(**overrides: Any) -> dict[str, Any]:
        kwargs = copy.deepcopy(TINY)
        kwargs.update(overrides)
        return kwargs

    return make
