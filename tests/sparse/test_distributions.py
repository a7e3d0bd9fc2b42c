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


# -- min_fan_in: a floor of connections per output unit from the input count (fit_input) ---------------


def test_fan_in_floor_hand_worked() -> None:
    from sparse_rl.sparse.distributions import fan_in_floor

    # k = 32 at ANF's density 0.2: dense up to 32 inputs, 32 / n_in up to 160, then 0.2.
    assert fan_in_floor(0.2, 9, 32) == 1.0  # InvertedDoublePendulum without noise
    assert fan_in_floor(0.2, 32, 32) == 1.0
    assert fan_in_floor(0.2, 45, 32) == pytest.approx(32 / 45)  # the same at f = 0.8
    assert fan_in_floor(0.2, 160, 32) == 0.2
    assert fan_in_floor(0.2, 450, 32) == 0.2  # at f = 0.98: strength_filter's density exactly
    assert fan_in_floor(0.5, 45, 32) == pytest.approx(32 / 45)
    assert fan_in_floor(0.9, 45, 32) == 0.9  # never below the distribution's density
    assert fan_in_floor(0.2, 9, None) == 0.2


@pytest.mark.parametrize("n_out", [1, 7, 32, 256])
@pytest.mark.parametrize("k", [1, 16, 32, 90])
def test_min_fan_in_gives_exact_connection_counts_within_bounds(k: int, n_out: int) -> None:
    from sparse_rl.sparse.distributions import fan_in_floor
    from sparse_rl.sparse.layers.base import active_count

    for n_in in range(1, 1200):
        density = fan_in_floor(0.2, n_in, k)
        assert 0.2 <= density <= 1.0
        count = active_count(n_in * n_out, density)  # what a SparseLinear at that density keeps
        assert count == max(min(k, n_in) * n_out, active_count(n_in * n_out, 0.2)), (n_in, n_out)


def test_layer_densities_floor_sparse_layers_only() -> None:
    shapes = {"input": (256, 9), "hidden": (256, 256), "output": (1, 256)}
    assert layer_densities(shapes, density=0.2, dense_layers=["output"], min_fan_in=32) == {
        "input": 1.0, "hidden": 0.2, "output": 1.0}
    noisy = {"input": (256, 45), "hidden": (256, 256), "output": (1, 256)}
    densities = layer_densities(noisy, density=0.2, dense_layers=["hidden", "output"], min_fan_in=32,
                                overrides={"input": 0.1})
    assert densities == {"input": pytest.approx(32 / 45), "hidden": 1.0, "output": 1.0}  # overrides floored too
    assert layer_densities(noisy, density=0.2, min_fan_in=None) == layer_densities(noisy, density=0.2)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "32"])
def test_min_fan_in_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(ValueError, match="min_fan_in must be an integer >= 1"):
        layer_densities(SHAPES, density=0.2, min_fan_in=bad)  # type: ignore[arg-type]
