"""Connectivity metrics over training: one run's curves per network (:func:`plot_real_share`) and
several runs side by side (:func:`plot_run_comparison`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from sparse_rl.analysis.plots.style import NETWORK_COLORS, PERMUTATION_COLOR, mark_permutation
from sparse_rl.analysis.snapshots import ConnectivitySeries


def _series_metric(series: ConnectivitySeries, network: str, key: str) -> np.ndarray:
    return series.summaries[network][key]


def plot_real_share(
    series: ConnectivitySeries,
    permutation_step: int | None = None,
    title: str = "",
) -> Figure:
    """Curves over training, one colour per network: (a) the mean in-degree of a real feature and
    of a noise feature (Grooten et al.'s metric, the headline); (b) the precision of "the top-k
    features by strength are the real ones", k = the number of real features; (c) the share of the
    input layer's strength on real features; (d) the share of input connections on real features
    (and actions, for critics) against its random level (its ceiling at low density and high noise
    is low: read it with (a)). Dense layers appear only in (b) and (c). Each snapshot is judged with
    the real mask in force at its step, so a permutation shows as a drop.

    :param series: the snapshots
    :param permutation_step: env step of the feature permutation, marked with a vertical line
    :param title: a figure title (e.g. the run's name)
    :return: the figure
    """
    if len(series) == 0:
        raise ValueError("no snapshots to plot")
    steps = series.env_steps
    any_sparse = any(series.is_sparse(name) for name in series.networks)
    if any_sparse:
        fig = Figure(figsize=(13, 8))
        axes = fig.subplots(2, 2, sharex=True)
        (ax_degree, ax_topk), (ax_strength, ax_share) = axes
    else:  # dense layers: in-degree says nothing, only the strength panels
        fig = Figure(figsize=(13, 4.6))
        axes = fig.subplots(1, 2, sharex=True, squeeze=False)
        ax_share = ax_degree = None
        ax_topk, ax_strength = axes[0]
    marker = "o" if len(series) <= 40 else None
    for i, name in enumerate(series.networks):
        color = NETWORK_COLORS[i % len(NETWORK_COLORS)]
        if series.is_sparse(name) and ax_share is not None and ax_degree is not None:
            ax_share.plot(steps, _series_metric(series, name, "real_share"), color=color, marker=marker,
                          markersize=3, label=name)
            ax_share.plot(steps, _series_metric(series, name, "chance_share"), color=color, linestyle=":",
                          linewidth=1)
            ax_degree.plot(steps, _series_metric(series, name, "mean_in_degree_real"), color=color, marker=marker,
                           markersize=3, label=f"{name}: real")
            ax_degree.plot(steps, _series_metric(series, name, "mean_in_degree_noise"), color=color,
                           linestyle="--", label=f"{name}: noise")
        dense = "" if series.is_sparse(name) else " (dense)"
        ax_strength.plot(steps, _series_metric(series, name, "strength_real_share"), color=color, marker=marker,
                         markersize=3, label=name + dense)
        ax_strength.plot(steps, _series_metric(series, name, "chance_share"), color=color, linestyle=":",
                         linewidth=1)
        ax_topk.plot(steps, _series_metric(series, name, "topk_precision"), color=color, marker=marker,
                     markersize=3, label=name + dense)
    letters = iter("abcd")
    if ax_degree is not None:
        ax_degree.set_title(f"({next(letters)}) mean in-degree of a real vs a noise feature", fontsize=10, loc="left")
        ax_degree.set_ylabel("active connections per feature")
    ax_topk.set_title(f"({next(letters)}) top-k features by strength are real: precision (k = # real)", fontsize=10,
                      loc="left")
    ax_topk.set_ylabel("precision")
    ax_topk.set_ylim(-0.03, 1.03)
    ax_strength.set_title(f"({next(letters)}) share of input strength (sum |w|) on real features", fontsize=10,
                          loc="left")
    ax_strength.set_ylabel("share of strength")
    ax_strength.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax_strength.plot([], [], color="grey", linestyle=":", label="equal strength per feature")
    if ax_share is not None:
        ax_share.set_title(f"({next(letters)}) share of input connections on real features", fontsize=10, loc="left")
        ax_share.set_ylabel("share of connections")
        ax_share.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax_share.plot([], [], color="grey", linestyle=":", label="random topology (same colour)")
    for ax in axes.flat:
        mark_permutation(ax, permutation_step)
        if ax.get_legend_handles_labels()[0]:
            if permutation_step is not None:
                ax.plot([], [], color=PERMUTATION_COLOR, linestyle="--", label="features permuted")
            ax.legend(fontsize=8, ncol=2 if ax is ax_degree else 1)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("env step")
    notes = []
    if not any_sparse:
        notes.append("dense input layers: strength only")
    if any(s.n_actions for s in series.snapshots[0].networks.values()):
        notes.append("critics' shares count their action inputs as real")
    fig.suptitle((title + "\n" if title else "") + "input-layer connectivity over training"
                 + (f" ({'; '.join(notes)})" if notes else ""), fontsize=11)
    fig.tight_layout()
    return fig


def plot_run_comparison(
    runs: Mapping[str, ConnectivitySeries],
    networks: Sequence[str] = ("actor", "qf0"),
    title: str = "",
) -> Figure:
    """Compare runs (e.g. a sparse and a dense agent) side by side on the metrics both have: the
    share of input strength on real features and the top-k precision of the strength ranking, and
    the share of connections on real features where the layers are sparse.

    Dotted lines (in each run's colour) are the random levels: the share of input columns that are
    real (connections or strength spread evenly) and, for the ranking, the precision of a random
    order (real features / observation features).

    :param runs: per run label, its snapshots
    :param networks: which networks to draw (one line style each)
    :param title: the figure's title (default: the runs compared)
    :return: the figure
    """
    if not runs:
        raise ValueError("no runs to compare")
    fig = Figure(figsize=(16, 5.0))
    axes = fig.subplots(1, 3)
    styles = ("-", "--", ":", "-.")
    for i, (label, series) in enumerate(runs.items()):
        if len(series) == 0:
            continue
        color = NETWORK_COLORS[i % len(NETWORK_COLORS)]
        steps = series.env_steps
        for j, name in enumerate(n for n in networks if n in series.networks):
            style = styles[j % len(styles)]
            axes[0].plot(steps, _series_metric(series, name, "strength_real_share"), color=color, linestyle=style,
                         label=f"{label}: {name}")
            chance = _series_metric(series, name, "chance_share")
            axes[0].plot(steps, chance, color=color, linestyle=":", linewidth=1)
            last = series.snapshots[-1].networks[name]
            if last.real_mask is not None and last.n_observation:
                axes[1].axhline(last.n_real / last.n_observation, color=color, linestyle=":", linewidth=1)
            axes[1].plot(steps, _series_metric(series, name, "topk_precision"), color=color, linestyle=style,
                         label=f"{label}: {name}")
            if series.is_sparse(name):
                axes[2].plot(steps, _series_metric(series, name, "real_share"), color=color, linestyle=style,
                             label=f"{label}: {name}")
                axes[2].plot(steps, chance, color=color, linestyle=":", linewidth=1)
        mark_permutation(axes[0], series.permutation_step())
        mark_permutation(axes[1], series.permutation_step())
    axes[0].set_title("share of input strength (sum |w|) on real features", fontsize=10)
    axes[1].set_title("top-k by strength are real: precision (k = # real)", fontsize=10)
    axes[2].set_title("share of input connections on real features (sparse runs)", fontsize=10)
    axes[1].set_ylim(-0.03, 1.03)
    axes[0].set_ylabel("share of strength")
    axes[1].set_ylabel("precision")
    axes[2].set_ylabel("share of connections")
    axes[0].yaxis.set_major_formatter(PercentFormatter(1.0))
    axes[2].yaxis.set_major_formatter(PercentFormatter(1.0))
    for ax in axes:
        ax.set_xlabel("env step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.plot([], [], color="grey", linestyle=":", linewidth=1, label="random level (run's colour)")
            ax.legend(fontsize=8)
    fig.suptitle(title or "input-layer connectivity: " + " vs ".join(runs), fontsize=11)
    fig.tight_layout()
    return fig
