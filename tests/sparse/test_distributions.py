"""Layer density distributions: uniform, Erdős–Rényi, ERK, overrides and dense layers."""

from __future__ import annotations

import math

import pytest

from sparse_rl.sparse.distributions import layer_densities

SHAPES = {"input": (256, 17), "hidden": (256, 256), "output": (6, 256)}


def _global_density(densities: dict[str, float], shapes: dict[str, tuple[int, int]]) -> float:
    total = sum(math.prod(shape) for shape in shapes.values())
    return sum(densities[name] * math.prod(shape) for name, shape in shapes.items()) / total


def test_uniform_gives_every_layer_the_density() -> None:
    assert layer_densities(SHAPES, density=0.3) == {"input": 0.3, "hidden": 0.3, "output": 0.3}


def test_erdos_renyi_with_per_layer_epsilon_follows_sokar() -> None:
    # Sokar et al. 2022 (TD3): ε 7 for the input layer, 64 for the 256×256 hidden layer.
    densities = layer_densities(SHAPES, distribution="erdos_renyi", epsilon={"input": 7, "hidden": 64},
                                dense_layers=["output"])
    assert densities["input"] == pytest.approx(7 * (17 + 256) / (17 * 256))
    assert densities["hidden"] == pytest.approx(0.5)
    assert densities["output"] == 1.0


@pytest.mark.parametrize("distribution", ["erdos_renyi", "erk"])
@pytest.mark.parametrize("density", [0.05, 0.1, 0.5])
def test_er_kinds_spread_the_global_density_exactly(distribution: str, density: float) -> None:
    densities = layer_densities(SHAPES, density=density, distribution=distribution)
    assert _global_density(densities, SHAPES) == pytest.approx(density)
    assert all(0 < value <= 1 for value in densities.values())
    # Smaller layers (relative to their fan-in + fan-out) are denser.
    assert densities["input"] > densities["hidden"]


def test_saturated_layers_become_dense_and_the_rest_is_resolved() -> None:
    shapes = {"tiny": (4, 3), "big": (512, 512)}
    densities = layer_densities(shapes, density=0.2, distribution="erk")
    assert densities["tiny"] == 1.0
    assert _global_density(densities, shapes) == pytest.approx(0.2)


def test_overrides_and_dense_layers_are_kept() -> None:
    densities = layer_densities(SHAPES, density=0.1, overrides={"input": 0.5}, dense_layers=["output"])
    assert densities == {"input": 0.5, "hidden": 0.1, "output": 1.0}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"density": 0.1, "distribution": "gaussian"}, "unknown distribution 'gaussian'.*known: erdos_renyi, erk"),
        ({"density": 0.0}, r"density must be in \(0, 1\]"),
        ({"density": 1.2, "distribution": "erk"}, r"density must be in \(0, 1\]"),
        ({"distribution": "uniform"}, "needs a density"),
        ({"density": 0.1, "dense_layers": ["nope"]}, "dense_layers names layer 'nope'"),
        ({"density": 0.1, "overrides": {"input": 2.0}}, "density of layer 'input'"),
        ({"distribution": "erk", "epsilon": -1.0}, "epsilon must be > 0"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        layer_densities(SHAPES, **kwargs)
