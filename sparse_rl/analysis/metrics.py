"""Connectivity metrics of input layers: pure functions of masks, weights and the real features.

An input layer's weight has shape ``(out_features, in_features)``; every metric here is per input
*column* (one observation feature, or for a critic one action dimension after the observation):

- **in-degree**: the number of active connections of the column (a dense layer has
  ``out_features`` everywhere, which says nothing; for dense layers only the strength is reported);
- **strength**: the sum of ``|w|`` over the column's active connections (QuickSelection's
  importance of an input neuron, Atashgahi et al. 2022);
- **real share**: the share of all the layer's connections (or of its total strength) that land on
  real features;
- **ranking**: the observation features sorted by strength, strongest first, and the precision and
  recall of "the top-k features are the real ones".

:class:`FeatureConnectivity` holds one network's per-feature vectors and derives the summary
metrics from them; it is what snapshots store and what the plots draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch

from sparse_rl.sparse.connectivity import (  # noqa: F401 - re-exported: the analysis API names them
    FilteringMetrics,
    InputColumns,
    _as_numpy,
    _check_2d,
    column_filtering_metrics,
    filtering_keys,
    in_degree,
    rank_features,
    real_share,
    share_on,
    strength,
    topk_precision_recall,
)

#: Kinds of input columns, as stored in :attr:`FeatureConnectivity.column_kinds`.
NOISE, REAL, ACTION = 0, 1, 2
KIND_NAMES = {NOISE: "noise", REAL: "real", ACTION: "action"}


def column_kinds(n_inputs: int, real_mask: np.ndarray | None, n_observation: int | None = None) -> np.ndarray:
    """The kind of every input column: :data:`REAL`, :data:`NOISE` or :data:`ACTION`.

    The first ``n_observation`` columns are observation features (real where ``real_mask`` says so;
    all real when ``real_mask`` is ``None``); the remaining ones are a critic's action dimensions.

    :param n_inputs: the layer's in_features
    :param real_mask: boolean over the observation features, or ``None``
    :param n_observation: number of observation features (default: ``len(real_mask)``, or all inputs)
    :return: int8 array of length n_inputs
    """
    if n_observation is None:
        n_observation = n_inputs if real_mask is None else int(np.asarray(real_mask).size)
    if not 0 <= n_observation <= n_inputs:
        raise ValueError(f"the layer has {n_inputs} inputs, fewer than the {n_observation} observation features")
    kinds = np.full(n_inputs, ACTION, dtype=np.int8)
    if real_mask is None:
        kinds[:n_observation] = REAL
    else:
        real = np.asarray(real_mask, dtype=bool).reshape(-1)
        if real.size != n_observation:
            raise ValueError(f"real_mask has {real.size} entries for {n_observation} observation features")
        kinds[:n_observation] = np.where(real, REAL, NOISE)
    return kinds


@dataclass(frozen=True)
class FeatureConnectivity:
    """The per-input-column connectivity of one network's input layer, and metrics derived from it.

    Real share counts a critic's action columns as real (as the training logs do), so that it is
    the share of connections that do *not* sit on noise. The ranking and top-k metrics cover the
    observation features only (the actions are always given).

    :param network: the network's name (``actor``, ``qf0``…)
    :param strength: sum of ``|w|`` per input column, float32
    :param in_degree: active connections per input column (int), or ``None`` for a dense layer
    :param out_features: the layer's number of outputs (a column's maximum in-degree)
    :param n_observation: number of observation features; columns after them are action dimensions
    :param real_mask: boolean over the observation features (True = real), or ``None`` if unknown
    """

    network: str
    strength: np.ndarray
    in_degree: np.ndarray | None
    out_features: int
    n_observation: int
    real_mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.in_degree is not None and self.in_degree.shape != self.strength.shape:
            raise ValueError(f"in_degree shape {self.in_degree.shape} != strength shape {self.strength.shape}")
        column_kinds(self.n_inputs, self.real_mask, self.n_observation)  # validates the sizes

    # -- shape and kinds ----------------------------------------------------------------------
    @property
    def is_sparse(self) -> bool:
        """Whether the layer is sparse (in-degree is informative)."""
        return self.in_degree is not None

    @property
    def n_inputs(self) -> int:
        """The layer's in_features."""
        return int(self.strength.size)

    @property
    def n_actions(self) -> int:
        """Number of action columns (0 for an actor)."""
        return self.n_inputs - self.n_observation

    @cached_property
    def column_kinds(self) -> np.ndarray:
        """:data:`REAL`, :data:`NOISE` or :data:`ACTION` per input column (all observation features
        are real when the real mask is unknown)."""
        return column_kinds(self.n_inputs, self.real_mask, self.n_observation)

    @property
    def n_real(self) -> int:
        """Number of real observation features (all of them when unknown)."""
        return self.n_observation if self.real_mask is None else int(np.asarray(self.real_mask).sum())

    @property
    def nnz(self) -> int | None:
        """Active connections of the layer (``None`` for a dense layer)."""
        return None if self.in_degree is None else int(self.in_degree.sum())

    @property
    def density(self) -> float:
        """Fraction of the layer's possible connections that are active (1 for a dense layer)."""
        if self.in_degree is None:
            return 1.0
        return float(self.in_degree.sum()) / max(1, self.n_inputs * self.out_features)

    # -- shares -------------------------------------------------------------------------------
    def _not_noise(self) -> np.ndarray:
        return self.column_kinds != NOISE

    def real_share(self) -> float | None:
        """Share of the layer's connections on real features and actions (``None`` if dense)."""
        if self.in_degree is None:
            return None
        return share_on(self.in_degree, self._not_noise())

    def strength_real_share(self) -> float:
        """Share of the layer's total strength on real features and actions."""
        return share_on(self.strength, self._not_noise())

    def chance_share(self) -> float:
        """The share of columns that are real or actions: the real share of a uniformly random
        topology, to compare :meth:`real_share` with."""
        return float(self._not_noise().mean()) if self.n_inputs else 0.0

    def in_degree_action(self) -> float | None:
        """Mean in-degree of a critic's action columns (``None`` if dense or an actor); the real and
        noise columns' are registered filtering metrics (``in_degree_real``, ``in_degree_noise``)."""
        if self.in_degree is None or not self.n_actions:
            return None
        return float(self.in_degree[self.n_observation:].mean())

    def mean_strength(self, kind: int) -> float | None:
        """Mean strength of the columns of one kind (``None`` if there is no such column)."""
        selected = self.column_kinds == kind
        return float(self.strength[selected].mean()) if selected.any() else None

    # -- ranking ------------------------------------------------------------------------------
    def ranking(self) -> np.ndarray:
        """Observation features by strength, strongest first."""
        return rank_features(self.strength[: self.n_observation])

    def topk(self, k: int | None = None) -> tuple[float, float] | None:
        """Precision and recall of "the top-``k`` features by strength are the real ones"; ``k``
        defaults to the number of real features (then precision equals recall). ``None`` when the
        real mask is unknown or there is no real feature."""
        if self.real_mask is None or self.n_real == 0 or self.n_observation == 0:
            return None
        k = self.n_real if k is None else k
        return topk_precision_recall(self.ranking(), self.real_mask, k)

    def filtering(self) -> FilteringMetrics | None:
        """Every registered filtering metric (:data:`~sparse_rl.sparse.connectivity.FILTERING_METRICS`)
        of this layer, as training logs them; ``None`` for a dense layer or an unknown real mask."""
        if self.in_degree is None or self.real_mask is None:
            return None
        return column_filtering_metrics(InputColumns(self.in_degree.astype(np.float64), self.strength,
                                                     np.asarray(self.real_mask, dtype=bool), self.out_features))

    def summary(self) -> dict[str, Any]:
        """The scalar metrics as a JSON-friendly dict (``None`` where not defined, ``nan`` where a
        registered metric is): the layer's shape and shares, then every registered filtering metric
        (:func:`~sparse_rl.sparse.connectivity.filtering_keys`) not already named."""
        topk = self.topk()
        filtering = self.filtering()
        summary = {
            "network": self.network,
            "sparse": self.is_sparse,
            "n_inputs": self.n_inputs,
            "n_observation": self.n_observation,
            "n_real": self.n_real if self.real_mask is not None else None,
            "n_actions": self.n_actions,
            "out_features": self.out_features,
            "density": self.density,
            "nnz": self.nnz,
            "real_share": self.real_share(),
            "chance_share": self.chance_share() if self.real_mask is not None else None,
            "strength_real_share": self.strength_real_share() if self.real_mask is not None else None,
            "in_degree_action": self.in_degree_action(),
            "mean_strength_real": self.mean_strength(REAL) if self.real_mask is not None else None,
            "mean_strength_noise": self.mean_strength(NOISE),
            "topk_k": self.n_real if topk is not None else None,
            "topk_precision": None if topk is None else topk[0],
            "topk_recall": None if topk is None else topk[1],
        }
        for key in filtering_keys():
            summary.setdefault(key, None if filtering is None else filtering.values[key])
        return summary

    def feature_rows(self) -> list[dict[str, Any]]:
        """One dict per input column: index, kind, in-degree, strength and strength rank (1 = strongest
        observation feature; actions are not ranked)."""
        kinds = self.column_kinds
        ranks = np.zeros(self.n_observation, dtype=np.int64)
        ranks[self.ranking()] = np.arange(1, self.n_observation + 1)
        rows = []
        for i in range(self.n_inputs):
            rows.append({
                "network": self.network,
                "feature": i,
                "kind": KIND_NAMES[int(kinds[i])] if self.real_mask is not None or kinds[i] == ACTION else "unknown",
                "in_degree": None if self.in_degree is None else int(self.in_degree[i]),
                "strength": float(self.strength[i]),
                "strength_rank": int(ranks[i]) if i < self.n_observation else None,
            })
        return rows

    def with_real_mask(self, real_mask: np.ndarray | None) -> FeatureConnectivity:
        """The same connectivity judged against another real mask."""
        return FeatureConnectivity(self.network, self.strength, self.in_degree, self.out_features,
                                   self.n_observation, real_mask)


def layer_connectivity(layer: torch.nn.Module, network: str, n_observation: int | None = None,
                       real_mask: np.ndarray | None = None) -> FeatureConnectivity:
    """The per-column connectivity of one linear layer (``nn.Linear`` or ``SparseLinear``).

    A ``SparseLinear`` below density 1 reports in-degree and masked strength; anything else is
    dense and reports the strength only. Sparse layers are read through ``active_positions()`` /
    ``active_values()`` when they have them (every storage backend does; a compressed one never
    builds its dense weight or mask), else through ``weight`` and ``mask``.

    :param layer: a module with a 2-D ``weight`` (and, if sparse, a boolean ``mask``)
    :param network: the network's name
    :param n_observation: observation features among the inputs (default: all, or the real mask's size)
    :param real_mask: boolean over the observation features, or ``None``
    """
    sparse = hasattr(layer, "mask") and float(getattr(layer, "target_density", 0.0)) < 1.0
    n_inputs = int(getattr(layer, "in_features", 0)) or int(layer.weight.shape[1])
    out_features = int(getattr(layer, "out_features", 0)) or int(layer.weight.shape[0])
    if not sparse:
        degree, strengths = None, strength(layer.weight)
    elif callable(getattr(layer, "active_positions", None)) and callable(getattr(layer, "active_values", None)):
        with torch.no_grad():
            columns = (layer.active_positions() % n_inputs).cpu()
            values = layer.active_values().detach().abs().to(torch.float64).cpu()
        degree = torch.bincount(columns, minlength=n_inputs).numpy().astype(np.int64)
        strengths = torch.bincount(columns, weights=values, minlength=n_inputs).numpy().astype(np.float32)
    else:
        degree, strengths = in_degree(layer.mask), strength(layer.weight, layer.mask)
    if n_observation is None:
        n_observation = n_inputs if real_mask is None else int(np.asarray(real_mask).size)
    return FeatureConnectivity(
        network=network,
        strength=strengths,
        in_degree=degree,
        out_features=out_features,
        n_observation=n_observation,
        real_mask=None if real_mask is None else np.asarray(real_mask, dtype=bool).copy(),
    )


def input_layer_connectivity(
    model_or_policy: Any, real_mask: np.ndarray | None = None
) -> dict[str, FeatureConnectivity]:
    """The connectivity of the input layer of every online network (``actor``, ``qf0``, ``qf1``…)
    of an SB3 SAC/TD3 model (sparse or dense) or of its policy.

    :param model_or_policy: an SB3 off-policy actor-critic model, or its ``policy``
    :param real_mask: boolean over the observation features; default: the model's
        ``real_feature_mask()`` if it has one (the training env's), else unknown
    :return: one :class:`FeatureConnectivity` per network, by name
    """
    from sparse_rl.agents.networks import input_layers  # the agents package imports this module

    policy = getattr(model_or_policy, "policy", model_or_policy)
    if real_mask is None and callable(getattr(model_or_policy, "real_feature_mask", None)):
        real_mask = model_or_policy.real_feature_mask()
    n_observation = observation_size(policy)
    if real_mask is not None and np.asarray(real_mask).size != n_observation:
        raise ValueError(f"real_mask has {np.asarray(real_mask).size} entries, the observation has {n_observation}")
    return {name: layer_connectivity(layer, name, n_observation, real_mask)
            for name, layer in input_layers(policy).items()}


def observation_size(policy: Any) -> int:
    """Number of observation features a policy's networks see (its flattened observation space).

    :param policy: an SB3 policy
    """
    space = policy.observation_space
    return int(np.prod(space.shape)) if space.shape else 1
