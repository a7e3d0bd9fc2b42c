"""WHICH layers are sparse and how dense each one is.

A distribution turns the weight shapes of a network's layers into one density per layer:

- ``uniform``: every sparse layer gets the same density;
- ``erdos_renyi`` (SET, Mocanu et al. 2018): density ∝ (n_in + n_out) / (n_in · n_out), scaled by ε;
- ``erk`` (Erdős–Rényi-Kernel, RigL, Evci et al. 2020): the same with the kernel dimensions added
  to the numerator and denominator (identical to ``erdos_renyi`` for linear layers).

With the ER kinds, either ε is given (one value, or one per layer as in Sokar et al. 2022,
where ε = 7 for the input layer and 64 for the hidden layer gives ≈50% sparsity), or a global
``density`` is given and ε is solved for so that the sparse layers hold exactly that fraction of
their weights; layers whose density would exceed 1 are made dense and ε is solved again (as in
RigL). Layers named in ``dense_layers`` are dense; ``overrides`` pin a layer's density.

``min_fan_in`` (sparse_rl's own, not from a paper) puts a floor under every sparse layer's
density from its input count alone: at least ``k`` active connections per output unit on
average, ``density = min(1, max(density, k / n_in))`` (:func:`fan_in_floor`). A layer with few
inputs (a clean observation of 9 features) becomes dense; a layer with many (the same task with
441 noise features appended) keeps the distribution's density.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

from sparse_rl._util.validation import check_choice, check_density

Shape = tuple[int, ...]


def _er_score(shape: Shape) -> float:
    """(n_out + n_in) / (n_out · n_in): the Erdős–Rényi density per unit of ε."""
    n_out, n_in = shape[0], shape[1]
    return (n_out + n_in) / (n_out * n_in)


def _erk_score(shape: Shape) -> float:
    """(Σ dims) / (Π dims): the ERK density per unit of ε (kernel dims included)."""
    return sum(shape) / math.prod(shape)


SCORES: dict[str, Callable[[Shape], float] | None] = {
    "uniform": None,
    "erdos_renyi": _er_score,
    "erk": _erk_score,
}
DISTRIBUTIONS = tuple(SCORES)


def _solve_epsilon(shapes: Mapping[str, Shape], score: Callable[[Shape], float], density: float) -> dict[str, float]:
    """Densities ``min(1, ε·score)`` whose active weights sum to ``density`` of all weights."""
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    budget = density * sum(sizes.values())
    dense: set[str] = set()
    while True:
        free = [name for name in shapes if name not in dense]
        if not free:
            return dict.fromkeys(shapes, 1.0)
        remaining = budget - sum(sizes[name] for name in dense)
        epsilon = remaining / sum(score(shapes[name]) * sizes[name] for name in free)
        saturated = {name for name in free if epsilon * score(shapes[name]) >= 1.0}
        if not saturated:
            out = {name: epsilon * score(shapes[name]) for name in free}
            out.update(dict.fromkeys(dense, 1.0))
            return {name: out[name] for name in shapes}
        dense |= saturated


def check_min_fan_in(value: object) -> int | None:
    """``value`` if it is ``None`` or an integer >= 1, else ``ValueError``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"min_fan_in must be an integer >= 1 (active connections per output unit), got {value!r}")
    return value


def fan_in_floor(density: float, in_features: int, min_fan_in: int | None) -> float:
    """``density`` raised, if need be, so that a layer of ``in_features`` inputs keeps at least
    ``min_fan_in`` active connections per output unit on average: ``min(1, max(density,
    min_fan_in / in_features))``; ``density`` unchanged when ``min_fan_in`` is ``None``.

    With ``min_fan_in = k`` a layer of ``n_in <= k`` inputs is dense, and one of ``n_in >= k / density``
    inputs keeps ``density``; between, its ``round(density · n_in · n_out)`` connections are
    exactly ``k · n_out``.

    :param density: the density the distribution gave, in (0, 1]
    :param in_features: the layer's number of inputs
    :param min_fan_in: ``k``, or ``None`` for no floor
    """
    check_density(density)
    if check_min_fan_in(min_fan_in) is None:
        return density
    if in_features <= min_fan_in:
        return 1.0
    return max(density, min_fan_in / in_features)


def _check_layer_names(names: Iterable[str], shapes: Mapping[str, Shape], argument: str) -> None:
    for name in names:
        if name not in shapes:
            raise ValueError(f"{argument} names layer {name!r}, which does not exist; layers: {', '.join(shapes)}")


def layer_densities(
    shapes: Mapping[str, Shape],
    density: float | None = None,
    distribution: str = "uniform",
    epsilon: float | Mapping[str, float] | None = None,
    overrides: Mapping[str, float] | None = None,
    dense_layers: Iterable[str] = (),
    min_fan_in: int | None = None,
) -> dict[str, float]:
    """One density per layer, in (0, 1].

    :param shapes: layer name → weight shape (out_features, in_features[, kernel...])
    :param density: the global density of the layers that are neither dense nor overridden
        (required for ``uniform``, and for the ER kinds unless ``epsilon`` is given)
    :param distribution: ``uniform``, ``erdos_renyi`` or ``erk``
    :param epsilon: the ER scale ε, one value or one per layer (ER kinds only); with ε a layer's
        density is ``min(1, ε · (n_in + n_out) / (n_in · n_out))``
    :param overrides: layer name → density, pinned regardless of the distribution
    :param dense_layers: layers kept dense (density 1.0)
    :param min_fan_in: ``k``: every layer not in ``dense_layers`` (overridden ones included) gets
        at least ``k`` active connections per output unit, ``min(1, max(density, k / n_in))``
        (:func:`fan_in_floor`), applied after the distribution (so the layers together may hold
        more than ``density`` of their weights); ``None``: no floor
    :return: layer name → density, in the order of ``shapes``
    """
    check_choice(distribution, DISTRIBUTIONS, "distribution")
    overrides = dict(overrides or {})
    dense_layers = list(dense_layers)
    _check_layer_names(overrides, shapes, "overrides")
    _check_layer_names(dense_layers, shapes, "dense_layers")
    for name, value in overrides.items():
        check_density(value, f"density of layer {name!r}")

    result: dict[str, float] = {name: 1.0 for name in dense_layers}
    result.update({name: float(value) for name, value in overrides.items() if name not in result})
    free = {name: shape for name, shape in shapes.items() if name not in result}
    score = SCORES[distribution]

    if free:
        if score is None:
            if epsilon is not None:
                raise ValueError("epsilon applies to the 'erdos_renyi' and 'erk' distributions, not 'uniform'")
            if density is None:
                raise ValueError("the 'uniform' distribution needs a density in (0, 1]")
            result.update(dict.fromkeys(free, check_density(density)))
        elif epsilon is not None:
            if isinstance(epsilon, Mapping):
                _check_layer_names(epsilon, shapes, "epsilon")
                missing = [name for name in free if name not in epsilon]
                if missing:
                    raise ValueError(f"epsilon has no value for layer(s) {', '.join(missing)}")
            for name, shape in free.items():
                eps = float(epsilon[name] if isinstance(epsilon, Mapping) else epsilon)
                if eps <= 0:
                    raise ValueError(f"epsilon must be > 0, got {eps!r} for layer {name!r}")
                result[name] = min(1.0, eps * score(shape))
        else:
            if density is None:
                raise ValueError(f"the {distribution!r} distribution needs a density in (0, 1] or an epsilon")
            result.update(_solve_epsilon(free, score, check_density(density)))
    if check_min_fan_in(min_fan_in) is not None:
        for name, shape in shapes.items():
            if name not in dense_layers:
                result[name] = fan_in_floor(result[name], shape[1], min_fan_in)
    return {name: result[name] for name in shapes}
