"""Statistics over seeds and learning curves: bootstrap confidence intervals, the interquartile
mean (IQM) and the area under a learning curve. Pure NumPy functions.

The IQM is the mean of the middle 50% of the values (Agarwal et al., NeurIPS 2021, "Deep RL at
the edge of the statistical precipice"): the values are sorted and ``floor(0.25 · n)`` are cut
from each end, as ``scipy.stats.trim_mean(values, 0.25)`` does; for fewer than 4 values nothing is
cut and it is the mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy >= 2.0 renamed trapz

#: bootstrap resamples used by default (the percentile interval is stable to ~0.5% of its width)
N_RESAMPLES = 10_000


def bootstrap_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95, n_resamples: int = N_RESAMPLES,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``values``.

    :param values: one number per seed (NaNs are dropped)
    :param confidence: the interval's coverage, in (0, 1)
    :param n_resamples: bootstrap resamples (each draws ``len(values)`` values with replacement)
    :param seed: the resampling RNG's seed (the same data gives the same interval)
    :return: ``(low, high)``; ``(x, x)`` for one value, ``(nan, nan)`` for none
    :raises ValueError: for a confidence outside (0, 1) or fewer than 1 resample
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples!r}")
    data = _finite(values)
    if data.size == 0:
        return float("nan"), float("nan")
    means = bootstrap_means(data[:, None], n_resamples, seed)[:, 0]
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_means(data: np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = 0) -> np.ndarray:
    """Means of bootstrap resamples of the rows of ``data`` (resampling whole rows, i.e. seeds).

    :param data: shape ``(n_seeds, n_points)``
    :param n_resamples: number of resamples
    :param seed: the RNG's seed
    :return: shape ``(n_resamples, n_points)``
    """
    data = np.asarray(data, dtype=float)
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, data.shape[0], size=(n_resamples, data.shape[0]))
    return data[indices].mean(axis=1)


#: a comparison of two agents is judged (met or not) only with at least this many seeds of each:
#: one seed has no interval
MIN_SEEDS_FOR_A_VERDICT = 2


def two_sample_means(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray,
                     n_resamples: int = N_RESAMPLES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap means of two independent samples (e.g. two agents' seeds), each resampled within
    itself from one RNG (``x``'s draws first).

    :param x: one number per seed of the first agent (non-empty)
    :param y: one number per seed of the second agent (non-empty)
    :param n_resamples: bootstrap resamples
    :param seed: the RNG's seed
    :return: ``(means of x, means of y)``, each of length ``n_resamples``
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError(f"need at least one value in each sample, got {a.size} and {b.size}")
    rng = np.random.default_rng(seed)
    return rng.choice(a, (n_resamples, a.size)).mean(axis=1), rng.choice(b, (n_resamples, b.size)).mean(axis=1)


def ratio_of_means_ci(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, confidence: float = 0.95,
                      n_resamples: int = N_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(x) / mean(y)`` (:func:`two_sample_means`).

    :param x: the numerator's values, one per seed
    :param y: the denominator's values, one per seed (a ratio means little if their mean can be near 0)
    :param confidence: the interval's coverage
    :param n_resamples: bootstrap resamples
    :param seed: the RNG's seed
    :return: ``(low, high)``
    """
    top, bottom = two_sample_means(x, y, n_resamples, seed)
    return _percentiles(top / bottom, confidence)


def difference_of_means_ci(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, confidence: float = 0.95,
                           n_resamples: int = N_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(x) - mean(y)`` (:func:`two_sample_means`).

    :param x: the first agent's values, one per seed
    :param y: the second agent's values, one per seed
    :param confidence: the interval's coverage
    :param n_resamples: bootstrap resamples
    :param seed: the RNG's seed
    :return: ``(low, high)``
    """
    first, second = two_sample_means(x, y, n_resamples, seed)
    return _percentiles(first - second, confidence)


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def curve_band(data: np.ndarray, confidence: float = 0.95, n_resamples: int = 2000,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and percentile-bootstrap confidence band over seeds of aligned learning curves.

    :param data: shape ``(n_seeds, n_points)``, one curve per row
    :param confidence: the band's coverage
    :param n_resamples: bootstrap resamples
    :param seed: the RNG's seed
    :return: ``(mean, low, high)``, each of length ``n_points``
    """
    data = np.asarray(data, dtype=float)
    if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError(f"need curves as an array of shape (n_seeds, n_points), got shape {data.shape}")
    means = bootstrap_means(data, n_resamples, seed)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail], axis=0)
    return data.mean(axis=0), low, high


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: the mean after cutting ``floor(n / 4)`` values from each end of the sorted
    values (NaNs dropped; ``nan`` if none is left).

    :param values: one number per seed
    """
    data = np.sort(_finite(values))
    if data.size == 0:
        return float("nan")
    cut = int(0.25 * data.size)
    return float(data[cut:data.size - cut].mean())


def auc(steps: Sequence[float] | np.ndarray, returns: Sequence[float] | np.ndarray, normalize: bool = True) -> float:
    """Area under a learning curve by the trapezoidal rule.

    :param steps: the env steps of the evaluations (increasing)
    :param returns: the mean evaluation return at each of them
    :param normalize: divide by the span of ``steps``: the curve's mean height, in return units
        (comparable across runs of different lengths); ``False`` gives return × steps
    :return: the area; with one evaluation, its return (normalized) or 0; ``nan`` with none
    :raises ValueError: if the lengths differ or the steps decrease
    """
    x = np.asarray(steps, dtype=float)
    y = np.asarray(returns, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"steps and returns must be 1-D and of the same length, got {x.shape} and {y.shape}")
    if x.size == 0:
        return float("nan")
    if np.any(np.diff(x) < 0):
        raise ValueError("steps must be increasing")
    if x.size == 1:
        return float(y[0]) if normalize else 0.0
    area = float(_trapezoid(y, x))
    span = float(x[-1] - x[0])
    if not normalize:
        return area
    return area / span if span > 0 else float(y.mean())


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    data = np.asarray(values, dtype=float).ravel()
    return data[np.isfinite(data)]


# --------------------------------------------------------------------------------------------------
# aggregates across tasks (Agarwal et al., NeurIPS 2021; the definitions of the rliable library)

#: fewer seeds than this make a bootstrap interval unreliable (with 2 seeds it is their min–max)
MIN_RELIABLE_SEEDS = 5


def few_seeds_warning(n_seeds: int) -> str | None:
    """A warning for confidence intervals over ``n_seeds`` seeds, or ``None`` from
    :data:`MIN_RELIABLE_SEEDS` on."""
    if n_seeds >= MIN_RELIABLE_SEEDS:
        return None
    return (f"warning: only {n_seeds} seed{'s' if n_seeds != 1 else ''} per cell: the 95% bootstrap intervals are "
            f"unreliable below {MIN_RELIABLE_SEEDS} seeds (with 2 seeds an interval is their min–max); run more "
            "seeds before drawing conclusions")


def aggregate_iqm(scores: np.ndarray) -> float:
    """The IQM of all runs of all tasks together (``scores``: runs × tasks), as rliable's
    ``metrics.aggregate_iqm`` (``scipy.stats.trim_mean(scores, 0.25, axis=None)``)."""
    return iqm(np.asarray(scores, dtype=float).ravel())


def performance_profile(scores: np.ndarray, thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """The run-score distribution: for each threshold τ, the fraction of all runs of all tasks
    whose score is above τ (rliable's ``create_performance_profile`` with ``use_score_distribution``).

    :param scores: runs × tasks (normalized scores)
    :param thresholds: the τ values
    """
    data = np.asarray(scores, dtype=float).ravel()
    return np.array([float(np.mean(data > tau)) for tau in np.asarray(thresholds, dtype=float)])


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """P(X > Y): per task, the probability that a run of X scores above a run of Y (ties count
    half: the Mann–Whitney U statistic over the number of pairs), averaged over tasks (rliable's
    ``metrics.probability_of_improvement``).

    :param scores_x: runs of X × tasks
    :param scores_y: runs of Y × tasks (the same tasks; the number of runs may differ)
    """
    x, y = np.asarray(scores_x, dtype=float), np.asarray(scores_y, dtype=float)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"need runs × tasks matrices over the same tasks, got shapes {x.shape} and {y.shape}")
    greater = (x[:, None, :] > y[None, :, :]).mean(axis=(0, 1))
    ties = (x[:, None, :] == y[None, :, :]).mean(axis=(0, 1))
    return float(np.mean(greater + 0.5 * ties))


def _stratified_resamples(scores: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``n_resamples`` resamples of ``scores`` (runs × tasks), the runs of each task drawn with
    replacement independently of the other tasks (rliable's ``StratifiedBootstrap``)."""
    n_runs, n_tasks = scores.shape
    rows = rng.integers(0, n_runs, size=(n_resamples, n_runs, n_tasks))
    return scores[rows, np.arange(n_tasks)]


def stratified_bootstrap_ci(statistic: Any, *scores: np.ndarray, confidence: float = 0.95,
                            n_resamples: int = 2000, seed: int = 0) -> tuple[Any, Any, Any]:
    """A statistic of one or more runs × tasks score matrices with its stratified-bootstrap
    percentile interval: each matrix resampled run by run within each task, independently.

    :param statistic: a function of the matrices (e.g. :func:`aggregate_iqm`,
        :func:`probability_of_improvement`); it may return an array (e.g. a performance profile)
    :param scores: the matrices
    :param confidence: the interval's coverage
    :param n_resamples: bootstrap resamples
    :param seed: the RNG's seed
    :return: ``(point, low, high)``
    """
    matrices = [np.asarray(s, dtype=float) for s in scores]
    if any(m.ndim != 2 or m.shape[0] == 0 for m in matrices):
        raise ValueError("need score matrices of shape (runs, tasks) with at least one run")
    rng = np.random.default_rng(seed)
    resampled = [_stratified_resamples(m, n_resamples, rng) for m in matrices]
    values = np.array([statistic(*(r[i] for r in resampled)) for i in range(n_resamples)], dtype=float)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail], axis=0)
    point = statistic(*matrices)
    return point, low, high


def mean_ci_text(values: Sequence[float] | np.ndarray, spec: str = ",.1f") -> str:
    """A report's cell for one number per seed: ``mean [low, high]`` (the mean's 95% bootstrap CI,
    :func:`bootstrap_ci`), ``x (one seed)``, or ``–`` when no value is finite.

    :param values: one number per seed (NaNs are left out)
    :param spec: the format of each number
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return "–"
    if finite.size == 1:
        return f"{finite[0]:{spec}} (one seed)"
    low, high = bootstrap_ci(finite)
    return f"{finite.mean():{spec}} [{low:{spec}}, {high:{spec}}]"
