"""Connectivity metrics over training: one run's curves per network (:func:`plot_real_share`) and
several runs side by side (:func:`plot_run_comparison`). Both draw one panel per registered
filtering metric (:func:`~sparse_rl.analysis.plots.style.filtering_panels`) that the data have,
and the share of the input layer's strength on real features (which dense layers have too)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from sparse_rl.analysis.plots.style import (
    METRIC_STYLES,
    NETWORK_COLORS,
    PERMUTATION_COLOR,
    FilteringPanel,
    filtering_panels,
    finite,
    mark_permutation,
)
from sparse_rl.analysis.snapshots import ConnectivitySeries

#: the panel every figure adds after the registered metrics' ones
STRENGTH_TITLE = "share of input strength (sum |w|) on real features"


def _series_metric(series: ConnectivitySeries, network: str, key: str) -> np.ndarray:
    """One summary value of ``network`` over the snapshots (NaN where undefined or unknown)."""
    values = series.summaries.get(network, {}).get(key)
    return finite(values) if values is not None else np.full(len(series), np.nan)


def _random_level(series: ConnectivitySeries, network: str, metric: str) -> np.ndarray | None:
    """What ``metric`` would read for a random topology or order, where it has such a level: the
    share of columns that are real (or actions) for the shares, the share of observation features
    that are real for the top-k precision; ``None`` for the others."""
    if metric in ("real_share", "strength_real_share"):
        return _series_metric(series, network, "chance_share")
    if metric == "topk_precision":
        return _series_metric(series, network, "n_real") / _series_metric(series, network, "n_observation")
    return None


def _has_values(series: ConnectivitySeries, networks: Sequence[str], panel: FilteringPanel) -> bool:
    return any(not np.isnan(_series_metric(series, name, metric.name)).all()
               for name in networks for metric in panel.metrics)


def _grid(fig: Figure, n_panels: int, n_columns: int) -> list[Axes]:
    """``n_panels`` axes in rows of ``n_columns``; the last row's unused places left empty."""
    rows = math.ceil(n_panels / n_columns)
    axes = list(fig.subplots(rows, n_columns, squeeze=False).flat)
    for unused in axes[n_panels:]:
        fig.delaxes(unused)
    return axes[:n_panels]


def _format_strength_axis(ax: Axes) -> None:
    ax.set_title(STRENGTH_TITLE, fontsize=10, loc="left")
    ax.set_ylabel("share of strength")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))


def plot_real_share(
    series: ConnectivitySeries,
    permutation_step: int | None = None,
    title: str = "",
) -> Figure:
    """Curves over training, one colour per network: one panel per registered filtering metric the
    run has (:func:`~sparse_rl.analysis.plots.style.filtering_panels`: first the mean in-degree of a
    real vs a noise feature, Grooten et al.'s metric, one line style each; then the in-degree ratio,
    the fill of the real features, the top-k precision of the strength ranking, the share of input
    connections on real features and actions), then the share of the input layer's strength on real
    features. Dotted lines (same colour) are the random levels where a metric has one; the real
    share's ceiling at low density and high noise is low: read it with the in-degree. Dense layers
    have only the strength-based panels. Each snapshot is judged with the real mask in force at its
    step, so a permutation shows as a drop.

    :param series: the snapshots
    :param permutation_step: env step of the feature permutation, marked with a vertical line
    :param title: a figure title (e.g. the run's name)
    :return: the figure
    """
    if len(series) == 0:
        raise ValueError("no snapshots to plot")
    steps = series.env_steps
    networks = series.networks
    panels = [panel for panel in filtering_panels() if _has_values(series, networks, panel)]
    n_panels = len(panels) + 1
    fig = Figure(figsize=(13, 0.8 + 3.6 * math.ceil(n_panels / 2)))
    axes = _grid(fig, n_panels, 2)
    marker = "o" if len(series) <= 40 else None
    for ax, panel in zip(axes, panels):
        for i, name in enumerate(networks):
            color = NETWORK_COLORS[i % len(NETWORK_COLORS)]
            dense = "" if series.is_sparse(name) else " (dense)"
            for k, metric in enumerate(panel.metrics):
                values = _series_metric(series, name, metric.name)
                if np.isnan(values).all():
                    continue
                ax.plot(steps, values, color=color, linestyle=METRIC_STYLES[k % len(METRIC_STYLES)],
                        marker=marker if k == 0 else None, markersize=3, label=panel.line_label(name + dense, metric))
                level = _random_level(series, name, metric.name)
                if level is not None:
                    ax.plot(steps, level, color=color, linestyle=":", linewidth=1)
        panel.format_axis(ax)
    ax_strength = axes[-1]
    for i, name in enumerate(networks):
        color = NETWORK_COLORS[i % len(NETWORK_COLORS)]
        dense = "" if series.is_sparse(name) else " (dense)"
        ax_strength.plot(steps, _series_metric(series, name, "strength_real_share"), color=color, marker=marker,
                         markersize=3, label=name + dense)
        ax_strength.plot(steps, _series_metric(series, name, "chance_share"), color=color, linestyle=":",
                         linewidth=1)
    _format_strength_axis(ax_strength)
    for letter, ax in zip("abcdefghijklmnopqrstuvwxyz", axes):
        ax.set_title(f"({letter}) {ax.get_title(loc='left')}", fontsize=10, loc="left")
        mark_permutation(ax, permutation_step)
        if any(line.get_linestyle() == ":" for line in ax.get_lines()):
            ax.plot([], [], color="grey", linestyle=":", linewidth=1, label="random level (same colour)")
        if ax.get_legend_handles_labels()[0]:
            if permutation_step is not None:
                ax.plot([], [], color=PERMUTATION_COLOR, linestyle="--", label="features permuted")
            ax.legend(fontsize=8, ncol=2 if len(networks) > 1 and ax is not ax_strength else 1)
        ax.grid(alpha=0.3)
    for ax in axes[-2:]:
        ax.set_xlabel("env step")
    notes = []
    if not any(series.is_sparse(name) for name in networks):
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
    """Compare runs (e.g. a sparse and a dense agent) side by side: the share of input strength on
    real features (which every run has), then one panel per registered filtering metric that some
    run has (:func:`~sparse_rl.analysis.plots.style.filtering_panels`: dense runs have only the
    top-k precision of the strength ranking). One colour per run, one line style per network (and
    per metric, where several share a panel).

    Dotted lines (in each run's colour) are the random levels: the share of input columns that are
    real (connections or strength spread evenly) and, for the ranking, the precision of a random
    order (real features / observation features).

    :param runs: per run label, its snapshots
    :param networks: which networks to draw
    :param title: the figure's title (default: the runs compared)
    :return: the figure
    """
    if not runs:
        raise ValueError("no runs to compare")
    drawn = {label: series for label, series in runs.items() if len(series)}
    shown = {label: [name for name in networks if name in series.networks] for label, series in drawn.items()}
    panels = [panel for panel in filtering_panels()
              if any(_has_values(series, shown[label], panel) for label, series in drawn.items())]
    n_panels = len(panels) + 1
    n_columns = min(3, n_panels)
    fig = Figure(figsize=(5.4 * n_columns, 0.8 + 4.2 * math.ceil(n_panels / n_columns)))
    axes = _grid(fig, n_panels, n_columns)
    for i, (label, series) in enumerate(drawn.items()):
        color = NETWORK_COLORS[i % len(NETWORK_COLORS)]
        steps = series.env_steps
        for ax, panel in [(axes[0], None), *zip(axes[1:], panels)]:
            metrics = ("strength_real_share",) if panel is None else tuple(metric.name for metric in panel.metrics)
            for j, name in enumerate(shown[label]):
                for k, metric in enumerate(metrics):
                    values = _series_metric(series, name, metric)
                    if np.isnan(values).all():
                        continue
                    style = METRIC_STYLES[(j * len(metrics) + k) % len(METRIC_STYLES)]
                    line = f"{label}: {name}"
                    if panel is not None:
                        line = panel.line_label(line, panel.metrics[k])
                    ax.plot(steps, values, color=color, linestyle=style, label=line)
                    level = _random_level(series, name, metric)
                    if level is not None:
                        ax.plot(steps, level, color=color, linestyle=":", linewidth=1)
            mark_permutation(ax, series.permutation_step())
    _format_strength_axis(axes[0])
    for ax, panel in zip(axes[1:], panels):
        panel.format_axis(ax)
    for ax in axes:
        ax.set_xlabel("env step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.plot([], [], color="grey", linestyle=":", linewidth=1, label="random level (run's colour)")
            ax.legend(fontsize=8)
    fig.suptitle(title or "input-layer connectivity: " + " vs ".join(runs), fontsize=11)
    fig.tight_layout()
    return fig
