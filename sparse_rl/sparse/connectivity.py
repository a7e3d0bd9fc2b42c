"""Per-input-column connectivity of a layer: pure functions of its mask, weight and which inputs
are real (torch and numpy only, below the agents so that training and analysis share them).

- **in-degree**: active connections of a column;
- **strength**: the sum of ``|w|`` over its active connections (QuickSelection's importance of an
  input neuron, Atashgahi et al. 2022);
- **real share**: the share of the layer's connections on real columns;
- **ranking**: features by strength, strongest first, and the precision of "the top-k are real";
- :func:`filtering_metrics`: the filtering summary of Grooten et al. (AAMAS 2023): the mean
  in-degree of real vs noise columns (their figure's metric), with the top-``n_real`` precision of
  the strength ranking and the fill of the real columns.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch


def _as_numpy(array: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def _check_2d(array: np.ndarray, name: str) -> None:
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (out_features, in_features), got shape {array.shape}")


def in_degree(mask: torch.Tensor | np.ndarray) -> np.ndarray:
    """Active connections per input column: the column sums of a boolean mask.

    :param mask: boolean (or 0/1) mask of shape (out_features, in_features)
    :return: int64 array of length in_features
    """
    if isinstance(mask, torch.Tensor):
        _check_2d(mask, "mask")
        return mask.detach().to(torch.bool).sum(dim=0).cpu().numpy().astype(np.int64)
    array = np.asarray(mask)
    _check_2d(array, "mask")
    return array.astype(bool).sum(axis=0).astype(np.int64)


def strength(weight: torch.Tensor | np.ndarray, mask: torch.Tensor | np.ndarray | None = None) -> np.ndarray:
    """Sum of ``|w|`` over each input column's (active) connections.

    :param weight: weight of shape (out_features, in_features)
    :param mask: optional boolean mask of the same shape; inactive entries are left out
    :return: float32 array of length in_features
    """
    if isinstance(weight, torch.Tensor):
        _check_2d(weight, "weight")
        with torch.no_grad():
            absolute = weight.detach().abs()
            if mask is not None:
                mask_t = torch.as_tensor(_as_numpy(mask) if not isinstance(mask, torch.Tensor) else mask,
                                         device=absolute.device)
                if mask_t.shape != absolute.shape:
                    raise ValueError(f"mask shape {tuple(mask_t.shape)} != weight shape {tuple(absolute.shape)}")
                absolute = absolute * mask_t.to(torch.bool)
            return absolute.sum(dim=0, dtype=torch.float64).cpu().numpy().astype(np.float32)
    array = np.abs(np.asarray(weight, dtype=np.float64))
    _check_2d(array, "weight")
    if mask is not None:
        mask_a = _as_numpy(mask).astype(bool)
        if mask_a.shape != array.shape:
            raise ValueError(f"mask shape {mask_a.shape} != weight shape {array.shape}")
        array = array * mask_a
    return array.sum(axis=0).astype(np.float32)


def real_share(mask: torch.Tensor | np.ndarray, real_columns: np.ndarray | torch.Tensor) -> float:
    """The share of a layer's active connections whose input column is a real feature.

    :param mask: the layer's boolean mask, shape (out_features, in_features)
    :param real_columns: boolean, length in_features, True at real input features
    :return: a share in [0, 1]; 0 for a layer without connections
    """
    return share_on(in_degree(mask), real_columns)


def share_on(per_column: np.ndarray, columns: np.ndarray | torch.Tensor) -> float:
    """The share of a per-column total (in-degree, strength) that falls on the selected columns.

    :param per_column: non-negative values, one per input column
    :param columns: boolean selection of the same length
    :return: ``sum(per_column[columns]) / sum(per_column)``, 0 when the total is 0
    """
    values = np.asarray(per_column, dtype=np.float64)
    selected = _as_numpy(columns).astype(bool).reshape(-1)
    if selected.size != values.size:
        raise ValueError(f"the column selection has {selected.size} entries, the layer has {values.size} inputs")
    total = values.sum()
    return float(values[selected].sum() / total) if total > 0 else 0.0


def rank_features(strengths: np.ndarray | torch.Tensor) -> np.ndarray:
    """Feature indices sorted by strength, strongest first (QuickSelection's ranking); ties keep the
    lower index first.

    :param strengths: one value per feature
    :return: int64 array, a permutation of ``range(len(strengths))``
    """
    values = _as_numpy(strengths).astype(np.float64).reshape(-1)
    return np.argsort(-values, kind="stable").astype(np.int64)


def topk_precision_recall(ranking: np.ndarray, real_mask: np.ndarray, k: int) -> tuple[float, float]:
    """Precision and recall of "the top-``k`` ranked features are the real ones".

    :param ranking: feature indices, best first (e.g. from :func:`rank_features`)
    :param real_mask: boolean, True at the real features (indexed like the features)
    :param k: how many top features to select, 1 <= k <= len(ranking)
    :return: ``(precision, recall)``: real features among the top k / k, and / number of real
        features (recall is 0 when there are no real features)
    """
    real = np.asarray(real_mask, dtype=bool).reshape(-1)
    order = np.asarray(ranking, dtype=np.int64).reshape(-1)
    if not 1 <= k <= order.size:
        raise ValueError(f"k must be in [1, {order.size}], got {k}")
    hits = int(real[order[:k]].sum())
    n_real = int(real.sum())
    return hits / k, (hits / n_real if n_real else 0.0)


@dataclass(frozen=True)
class FilteringMetrics:
    """How well one input layer has found the real features (observation columns only; a critic's
    action columns count in neither group, except in :attr:`real_share`).

    :param in_degree_real: mean in-degree of the real observation columns (Grooten et al.'s metric)
    :param in_degree_noise: mean in-degree of the noise columns (``nan`` without noise)
    :param real_fill: active connections of the real columns / their possible ones
        (``n_real × out_features``): 1.0 when every real feature is fully connected
    :param topk_precision: share of real features among the ``n_real`` strongest observation
        features (1.0: the strength ranking puts every real feature first)
    :param real_share: share of all the layer's connections on real columns, actions counted as
        real (at density d and noise fraction f its ceiling is about ``(1 − f) / d``: read it with
        the in-degree, not alone)
    """

    in_degree_real: float
    in_degree_noise: float
    real_fill: float
    topk_precision: float
    real_share: float

    @property
    def in_degree_ratio(self) -> float:
        """``in_degree_real / in_degree_noise`` (``nan`` without noise, ``inf`` when noise columns
        have no connection left)."""
        if math.isnan(self.in_degree_noise):
            return math.nan
        return self.in_degree_real / self.in_degree_noise if self.in_degree_noise > 0 else math.inf

    def as_dict(self) -> dict[str, float]:
        """The metrics and the ratio, by name."""
        return {**asdict(self), "in_degree_ratio": self.in_degree_ratio}


#: the names :meth:`FilteringMetrics.as_dict` gives, in order
FILTERING_KEYS = ("in_degree_real", "in_degree_noise", "in_degree_ratio", "real_fill", "topk_precision",
                  "real_share")


def filtering_metrics(mask: torch.Tensor | np.ndarray, weight: torch.Tensor | np.ndarray,
                      real_observation: np.ndarray, actions_as_real: bool = False) -> FilteringMetrics:
    """The filtering summary of one input layer.

    :param mask: the layer's boolean mask, shape (out_features, in_features)
    :param weight: its weight, same shape (inactive entries are ignored)
    :param real_observation: boolean over the observation columns (the first ``len`` inputs; any
        further inputs, a critic's actions, are neither real nor noise)
    :param actions_as_real: count a critic's action columns (the inputs after the observation) as
        real in :attr:`~FilteringMetrics.in_degree_real`, as Grooten et al.'s code does
        (``count_weights``: the mean over the real state columns and the action columns); the
        default counts the observation's real columns only, so that actor and critics are read on
        the same columns. Only the in-degree of the real columns (and the ratio) changes.
    """
    real = np.asarray(real_observation, dtype=bool).reshape(-1)
    degrees = in_degree(mask).astype(np.float64)
    n_observation = real.size
    if degrees.size < n_observation:
        raise ValueError(f"the layer has {degrees.size} inputs, fewer than the {n_observation} observation features")
    observed = degrees[:n_observation]
    out_features = int(np.asarray(mask.shape)[0])
    n_real = int(real.sum())
    noise = ~real
    degree_real = float(observed[real].mean()) if n_real else math.nan
    if actions_as_real and degrees.size > n_observation:
        degree_real = float(np.concatenate([observed[real], degrees[n_observation:]]).mean())
    degree_noise = float(observed[noise].mean()) if noise.any() else math.nan
    fill = float(observed[real].sum() / (n_real * out_features)) if n_real and out_features else math.nan
    if n_real:
        ranking = rank_features(strength(weight, mask)[:n_observation])
        precision = topk_precision_recall(ranking, real, n_real)[0]
    else:
        precision = math.nan
    columns = np.concatenate([real, np.ones(degrees.size - n_observation, dtype=bool)])
    return FilteringMetrics(degree_real, degree_noise, fill, precision, share_on(degrees, columns))
