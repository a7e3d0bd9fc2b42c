"""What every connectivity figure shares: the colours of real, noise and action features, of
networks and of compared series (colour-blind safe, Okabe-Ito), and how a feature's kind and value
are named.

Conventions in every plot: real features are vermillion, noise features blue, a critic's action
columns green (unknown features grey when the run does not say which are real); axes are labelled;
titles name the network and the step; time plots mark the feature permutation, if the run had one,
with a vertical line. Sparse input layers are shown by in-degree (active connections); dense ones
only by strength (sum of ``|w|``), since every column of a dense layer has every connection.
Figures of filtering metrics over training draw one panel per :class:`FilteringPanel`, read from
the registry (:func:`filtering_panels`), so that a registered metric is drawn with no other edit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

from sparse_rl.analysis.metrics import ACTION, NOISE, REAL, FeatureConnectivity
from sparse_rl.sparse import connectivity
from sparse_rl.sparse.connectivity import RegisteredMetric

REAL_COLOR = "#D55E00"
NOISE_COLOR = "#5B8DB8"
ACTION_COLOR = "#009E73"
UNKNOWN_COLOR = "#7F7F7F"
PERMUTATION_COLOR = "#CC0099"
NETWORK_COLORS = ("#1b1b1b", "#E69F00", "#0072B2", "#CC79A7", "#56B4E9")
#: colour-blind-safe (Okabe-Ito): compared series (agents of a sweep, runs) take them in order
SERIES_COLORS = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
#: line styles of the metrics drawn on one panel, in the registry's order (dotted is kept for random levels)
METRIC_STYLES = ("-", "--", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)))


@dataclass(frozen=True)
class FilteringPanel:
    """One axis of a figure of filtering metrics over training: the registered metrics read together
    (e.g. the mean in-degree of a real and of a noise feature), its title and its unit.

    :param title: the panel's title (the metrics' ``panel``)
    :param metrics: the registered metrics drawn on it, in the registry's order
    """

    title: str
    metrics: tuple[RegisteredMetric, ...]

    @property
    def unit(self) -> str:
        """The y-axis label: the first metric's unit."""
        return self.metrics[0].unit

    @property
    def percent(self) -> bool:
        """Whether the panel shows shares as percentages."""
        return all(metric.percent for metric in self.metrics)

    def line_label(self, series: str, metric: RegisteredMetric) -> str:
        """A line's legend label: the series (network, run, agent), and the metric when several share
        the panel."""
        return series if len(self.metrics) == 1 else f"{series}: {metric.label}"

    def format_axis(self, ax: Axes) -> None:
        """Title, y label and, for shares, a percent axis."""
        ax.set_title(self.title, fontsize=10, loc="left")
        ax.set_ylabel(self.unit)
        if self.percent:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))


def filtering_panels() -> list[FilteringPanel]:
    """The registered filtering metrics (:data:`~sparse_rl.sparse.connectivity.FILTERING_METRICS`,
    as registered now) grouped by their ``panel``, in the registry's order."""
    grouped: dict[str, list[RegisteredMetric]] = {}
    for metric in connectivity.FILTERING_METRICS.values():
        grouped.setdefault(metric.panel, []).append(metric)
    return [FilteringPanel(title, tuple(metrics)) for title, metrics in grouped.items()]


def finite(values: np.ndarray) -> np.ndarray:
    """``values`` as floats with every non-finite entry (``inf``: a ratio over zero) as NaN, which
    matplotlib leaves out."""
    array = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(array), array, np.nan)


def kind_colors(conn: FeatureConnectivity) -> np.ndarray:
    kinds = conn.column_kinds
    colors = np.empty(kinds.size, dtype=object)
    colors[kinds == REAL] = REAL_COLOR if conn.real_mask is not None else UNKNOWN_COLOR
    colors[kinds == NOISE] = NOISE_COLOR
    colors[kinds == ACTION] = ACTION_COLOR
    return colors


def kind_label(conn: FeatureConnectivity, kind: int) -> str:
    if kind == REAL:
        return "real feature" if conn.real_mask is not None else "feature (real/noise unknown)"
    return {NOISE: "noise feature", ACTION: "action"}[kind]


def kind_color(conn: FeatureConnectivity, kind: int) -> str:
    if kind == REAL:
        return REAL_COLOR if conn.real_mask is not None else UNKNOWN_COLOR
    return {NOISE: NOISE_COLOR, ACTION: ACTION_COLOR}[kind]


def feature_values(conn: FeatureConnectivity, what: str) -> np.ndarray:
    if what == "in_degree":
        if conn.in_degree is None:
            raise ValueError(f"{conn.network}'s input layer is dense: plot its strength")
        return conn.in_degree.astype(np.float64)
    return conn.strength.astype(np.float64)


def value_label(what: str) -> str:
    return "in-degree (active connections)" if what == "in_degree" else "strength (sum of |w|)"


def line_width(n: int) -> float:
    return float(np.clip(500.0 / max(n, 1), 0.4, 6.0))


def pct(share: float) -> str:
    """A share as a percentage with three significant digits (``0.00176`` → ``0.176%``)."""
    return f"{100.0 * share:.3g}%"


def mark_permutation(ax: Axes, permutation_step: int | None) -> None:
    """A vertical dashed line at the env step of the feature permutation (none without one)."""
    if permutation_step is not None:
        ax.axvline(permutation_step, color=PERMUTATION_COLOR, linestyle="--", linewidth=1.5)
