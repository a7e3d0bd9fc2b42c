"""What every connectivity figure shares: the colours of real, noise and action features, of
networks and of compared series (colour-blind safe, Okabe-Ito), and how a feature's kind and value
are named.

Conventions in every plot: real features are vermillion, noise features blue, a critic's action
columns green (unknown features grey when the run does not say which are real); axes are labelled;
titles name the network and the step; time plots mark the feature permutation, if the run had one,
with a vertical line. Sparse input layers are shown by in-degree (active connections); dense ones
only by strength (sum of ``|w|``), since every column of a dense layer has every connection.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from sparse_rl.analysis.metrics import ACTION, NOISE, REAL, FeatureConnectivity

REAL_COLOR = "#D55E00"
NOISE_COLOR = "#5B8DB8"
ACTION_COLOR = "#009E73"
UNKNOWN_COLOR = "#7F7F7F"
PERMUTATION_COLOR = "#CC0099"
NETWORK_COLORS = ("#1b1b1b", "#E69F00", "#0072B2", "#CC79A7", "#56B4E9")
#: colour-blind-safe (Okabe-Ito): compared series (agents of a sweep, runs) take them in order
SERIES_COLORS = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


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
