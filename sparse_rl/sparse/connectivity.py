"""Per-input-column connectivity of a layer: pure functions of its mask, weight and which inputs
are real (torch and numpy only, below the agents so that training and analysis share them).

- **in-degree**: active connections of a column;
- **strength**: the sum of ``|w|`` over its active connections (QuickSelection's importance of an
  input neuron, Atashgahi et al. 2022);
- **real share**: the share of the layer's connections on real columns;
- **ranking**: features by strength, strongest first, and the precision of "the top-k are real";
- **filtering metrics**: how well a layer has found the real features, one registered function each
  (:data:`FILTERING_METRICS`, :func:`register_filtering_metric`) over a layer's
  :class:`InputColumns`, all of them in one record, :class:`FilteringMetrics`: the mean in-degree of
  real vs noise columns (Grooten et al., AAMAS 2023: their figure's metric), the top-``n_real``
  precision of the strength ranking, the fill of the real columns, the real share. Training logs
  them, the analysis summarises and draws them, the benchmark tabulates and draws them, all by
  iterating the registry: a new metric is one registered function here (and its test).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

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


# --------------------------------------------------------------------------------------------------
# filtering metrics: one record type and a registry of metric functions


@dataclass(frozen=True)
class InputColumns:
    """One input layer seen per column: what every filtering metric reads.

    :param in_degree: active connections per input column (observation columns first, then a
        critic's action columns)
    :param strength: sum of ``|w|`` per input column, same length
    :param real: boolean over the observation columns (the first ``len(real)`` inputs); further
        inputs (a critic's actions) are neither real nor noise
    :param out_features: the layer's outputs (an input column's possible connections)
    :param actions_as_real: count a critic's action columns as real in ``in_degree_real``
    """

    in_degree: np.ndarray
    strength: np.ndarray
    real: np.ndarray
    out_features: int
    actions_as_real: bool = False

    @property
    def n_observation(self) -> int:
        """Observation columns."""
        return int(self.real.size)

    @property
    def n_real(self) -> int:
        """Real observation columns."""
        return int(self.real.sum())

    @property
    def observed(self) -> np.ndarray:
        """The in-degrees of the observation columns."""
        return self.in_degree[: self.n_observation]


#: a filtering metric: a function of one layer's :class:`InputColumns`, ``nan`` where undefined
FilteringMetric = Callable[[InputColumns], float]


@dataclass(frozen=True)
class RegisteredMetric:
    """A filtering metric in the registry: its function, and how tables and figures name it.

    :param name: its name (columns ``<name>_<network>`` of logs and tables)
    :param function: computes it from one layer's :class:`InputColumns`
    :param label: a short description, for a figure's title or legend (default: the name)
    :param panel: metrics read together share a panel (figures draw them on one axis, the panel
        its title); default: the label, a panel of its own
    :param unit: what the value counts, for an axis label
    :param percent: a share in [0, 1], shown as a percentage
    """

    name: str
    function: FilteringMetric
    label: str
    panel: str
    unit: str = ""
    percent: bool = False

    def __call__(self, columns: InputColumns) -> float:
        return self.function(columns)


#: the filtering metrics by name, in the order of logs, tables and figures: training logs them
#: (``sparsity/<network>/<name>``, ``topology.csv``, ``metrics.csv`` as ``<name>_<network>``), the
#: analysis summaries and figures and the benchmark's columns (``<name>_actor``, ``<name>_critic``)
#: and figures iterate it
FILTERING_METRICS: dict[str, RegisteredMetric] = {}


def register_filtering_metric(name: str, *, label: str | None = None, panel: str | None = None, unit: str = "",
                              percent: bool = False) -> Callable[[FilteringMetric], FilteringMetric]:
    """Register a filtering metric under ``name`` (a decorator returning the function unchanged); a
    new metric is one such function. The keywords say how figures show it (:class:`RegisteredMetric`)."""
    def register(function: FilteringMetric) -> FilteringMetric:
        if name in FILTERING_METRICS:
            raise ValueError(f"filtering metric {name!r} is already registered")
        shown = label or name
        FILTERING_METRICS[name] = RegisteredMetric(name, function, shown, panel or shown, unit, percent)
        return function
    return register


def filtering_keys() -> tuple[str, ...]:
    """The registered metrics' names, in order (columns ``<name>_<network>`` of logs and tables);
    read at each call, so that a metric registered later is in every table made after it."""
    return tuple(FILTERING_METRICS)


_IN_DEGREE_PANEL = "mean in-degree of a real vs a noise feature"
_CONNECTIONS = "active connections per feature"


@register_filtering_metric("in_degree_real", label="real", panel=_IN_DEGREE_PANEL, unit=_CONNECTIONS)
def _in_degree_real(columns: InputColumns) -> float:
    """Mean in-degree of the real observation columns (Grooten et al.'s metric); with
    ``actions_as_real``, of the real and the action columns together, as their code's
    ``count_weights`` does."""
    real = columns.observed[columns.real]
    if columns.actions_as_real and columns.in_degree.size > columns.n_observation:
        return float(np.concatenate([real, columns.in_degree[columns.n_observation:]]).mean())
    return float(real.mean()) if real.size else math.nan


@register_filtering_metric("in_degree_noise", label="noise", panel=_IN_DEGREE_PANEL, unit=_CONNECTIONS)
def _in_degree_noise(columns: InputColumns) -> float:
    """Mean in-degree of the noise columns (``nan`` without noise)."""
    noise = columns.observed[~columns.real]
    return float(noise.mean()) if noise.size else math.nan


@register_filtering_metric("in_degree_ratio", label="mean in-degree of a real / of a noise feature",
                           unit="ratio")
def _in_degree_ratio(columns: InputColumns) -> float:
    """``in_degree_real / in_degree_noise`` (``nan`` without noise, ``inf`` when noise columns have
    no connection left)."""
    real, noise = _in_degree_real(columns), _in_degree_noise(columns)
    if math.isnan(noise):
        return math.nan
    return real / noise if noise > 0 else math.inf


@register_filtering_metric("real_fill", label="fill of the real features (active / possible connections)",
                           unit="fill", percent=True)
def _real_fill(columns: InputColumns) -> float:
    """Active connections of the real columns / their possible ones (``n_real × out_features``):
    1.0 when every real feature is fully connected."""
    if not columns.n_real or not columns.out_features:
        return math.nan
    return float(columns.observed[columns.real].sum() / (columns.n_real * columns.out_features))


@register_filtering_metric("topk_precision", label="top-k features by strength are real: precision (k = # real)",
                           unit="precision")
def _topk_precision(columns: InputColumns) -> float:
    """Share of real features among the ``n_real`` strongest observation features (1.0: the
    strength ranking puts every real feature first)."""
    if not columns.n_real:
        return math.nan
    ranking = rank_features(columns.strength[: columns.n_observation])
    return topk_precision_recall(ranking, columns.real, columns.n_real)[0]


@register_filtering_metric("real_share", label="share of input connections on real features",
                           unit="share of connections", percent=True)
def _real_share(columns: InputColumns) -> float:
    """Share of all the layer's connections on real columns, actions counted as real (at density d
    and noise fraction f its ceiling is about ``(1 − f) / d``: read it with the in-degree, not
    alone)."""
    extra = np.ones(columns.in_degree.size - columns.n_observation, dtype=bool)
    return share_on(columns.in_degree, np.concatenate([columns.real, extra]))


@dataclass(frozen=True)
class FilteringMetrics:
    """How well one input layer has found the real features: the value of every registered metric
    (:data:`FILTERING_METRICS`), by name; also readable as attributes (``metrics.real_share``).

    :param values: metric name -> value (``nan`` where undefined)
    """

    values: Mapping[str, float]

    def __getattr__(self, name: str) -> float:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__!r} has no metric {name!r}; known: {', '.join(values)}")

    def as_dict(self) -> dict[str, float]:
        """The metrics by name, in the registry's order."""
        return dict(self.values)


def column_filtering_metrics(columns: InputColumns) -> FilteringMetrics:
    """Every registered filtering metric of one layer's columns."""
    return FilteringMetrics({name: float(metric(columns)) for name, metric in FILTERING_METRICS.items()})


def filtering_metrics(mask: torch.Tensor | np.ndarray, weight: torch.Tensor | np.ndarray,
                      real_observation: np.ndarray, actions_as_real: bool = False) -> FilteringMetrics:
    """The filtering summary of one input layer (every registered metric).

    :param mask: the layer's boolean mask, shape (out_features, in_features)
    :param weight: its weight, same shape (inactive entries are ignored)
    :param real_observation: boolean over the observation columns (the first ``len`` inputs; any
        further inputs, a critic's actions, are neither real nor noise)
    :param actions_as_real: count a critic's action columns (the inputs after the observation) as
        real in ``in_degree_real``, as Grooten et al.'s code does (``count_weights``: the mean over
        the real state columns and the action columns); the default counts the observation's real
        columns only, so that actor and critics are read on the same columns. Only the in-degree of
        the real columns (and the ratio) changes.
    """
    real = np.asarray(real_observation, dtype=bool).reshape(-1)
    degrees = in_degree(mask).astype(np.float64)
    if degrees.size < real.size:
        raise ValueError(f"the layer has {degrees.size} inputs, fewer than the {real.size} observation features")
    out_features = int(np.asarray(mask.shape)[0])
    return column_filtering_metrics(InputColumns(degrees, strength(weight, mask), real, out_features,
                                                 actions_as_real))
