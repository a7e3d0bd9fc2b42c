"""Matplotlib plots of input-layer connectivity: each function takes data and returns a
:class:`~matplotlib.figure.Figure` (given a ``path``, it also saves it there; :func:`save_figure`
saves one later). The figures are built with matplotlib's object API: importing this module
chooses no backend (a notebook keeps its own) and no figure stays open in pyplot.

Conventions in every plot: real features are vermillion, noise features blue, a critic's action
columns green (unknown features grey when the run does not say which are real); axes are labelled;
titles name the network and the step; time plots mark the feature permutation, if the run had one,
with a vertical line. Sparse input layers are shown by in-degree (active connections); dense ones
only by strength (sum of ``|w|``), since every column of a dense layer has every connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter

from sparse_rl.analysis.metrics import ACTION, NOISE, REAL, FeatureConnectivity
from sparse_rl.analysis.snapshots import ConnectivitySeries

REAL_COLOR = "#D55E00"
NOISE_COLOR = "#5B8DB8"
ACTION_COLOR = "#009E73"
UNKNOWN_COLOR = "#7F7F7F"
PERMUTATION_COLOR = "#CC0099"
NETWORK_COLORS = ("#1b1b1b", "#E69F00", "#0072B2", "#CC79A7", "#56B4E9")
DPI = 110

#: Rows of a heatmap given to individual features before a group is binned.
MAX_INDIVIDUAL_ROWS = 40
#: Rows of a heatmap for a binned group of features (noise, or many real features).
BINNED_ROWS = 24
#: Noise stems drawn per network in a GIF frame; more features are binned (max per bin).
MAX_ANIMATED_STEMS = 1200


def _kind_colors(conn: FeatureConnectivity) -> np.ndarray:
    kinds = conn.column_kinds
    colors = np.empty(kinds.size, dtype=object)
    colors[kinds == REAL] = REAL_COLOR if conn.real_mask is not None else UNKNOWN_COLOR
    colors[kinds == NOISE] = NOISE_COLOR
    colors[kinds == ACTION] = ACTION_COLOR
    return colors


def _kind_label(conn: FeatureConnectivity, kind: int) -> str:
    if kind == REAL:
        return "real feature" if conn.real_mask is not None else "feature (real/noise unknown)"
    return {NOISE: "noise feature", ACTION: "action"}[kind]


def _kind_color(conn: FeatureConnectivity, kind: int) -> str:
    if kind == REAL:
        return REAL_COLOR if conn.real_mask is not None else UNKNOWN_COLOR
    return {NOISE: NOISE_COLOR, ACTION: ACTION_COLOR}[kind]


def _values(conn: FeatureConnectivity, what: str) -> np.ndarray:
    if what == "in_degree":
        if conn.in_degree is None:
            raise ValueError(f"{conn.network}'s input layer is dense: plot its strength")
        return conn.in_degree.astype(np.float64)
    return conn.strength.astype(np.float64)


def _value_label(what: str) -> str:
    return "in-degree (active connections)" if what == "in_degree" else "strength (sum of |w|)"


def _line_width(n: int) -> float:
    return float(np.clip(500.0 / max(n, 1), 0.4, 6.0))


def pct(share: float) -> str:
    """A share as a percentage with three significant digits (``0.00176`` → ``0.176%``)."""
    return f"{100.0 * share:.3g}%"


def _draw_stems(ax: Axes, conn: FeatureConnectivity, values: np.ndarray,
                former_real: np.ndarray | None = None) -> None:
    """Per-feature stems coloured by kind. With many features, real features and actions get
    thicker stems and a marker on top, so that a few of them stay visible among thousands of
    noise features; ``former_real`` (features real before a permutation) get open circles."""
    n = values.size
    x = np.arange(n)
    kinds = conn.column_kinds
    width = _line_width(n)
    many = n > 60
    for kind in (REAL, ACTION, NOISE):
        selected = kinds == kind
        if not selected.any():
            continue
        color = _kind_color(conn, kind)
        mean = values[selected].mean()
        label = f"{_kind_label(conn, kind)} (n={int(selected.sum())}, mean {mean:.3g})"
        ax.vlines(x[selected], 0, values[selected], colors=color, label=label,
                  linewidth=max(width, 1.5) if kind != NOISE and many else width, zorder=3 if kind != NOISE else 2)
        if kind != NOISE and many:
            ax.plot(x[selected], values[selected], "o", color=color, markersize=5, markeredgecolor="black",
                    markeredgewidth=0.5, zorder=4)
        ax.axhline(mean, color=color, linestyle="--", linewidth=1.0, alpha=0.9, zorder=5)
    if former_real is not None:
        former = np.flatnonzero(np.asarray(former_real, dtype=bool) & (kinds[: np.asarray(former_real).size] != REAL))
        if former.size:
            ax.plot(former, values[former], "o", markerfacecolor="none", markeredgecolor=PERMUTATION_COLOR,
                    markersize=7, markeredgewidth=1.5, zorder=4, label="real before the permutation")
    ax.set_xlim(-0.5 - n * 0.01, n - 0.5 + n * 0.01)
    ax.set_ylim(0, max(float(values.max()), 1e-12) * 1.3)  # headroom for the legend


def _network_title(conn: FeatureConnectivity, step_text: str) -> str:
    role = "actor" if conn.network == "actor" else f"critic {conn.network}"
    layer = "sparse" if conn.is_sparse else "dense"
    return f"{role} ({layer} input layer, {conn.n_inputs} inputs × {conn.out_features}) — {step_text}"


def plot_feature_values(
    connectivity: Mapping[str, FeatureConnectivity],
    path: str | Path | None = None,
    what: str = "in_degree",
    step_text: str = "final model",
    former_real: np.ndarray | None = None,
) -> Figure:
    """Per-feature in-degree or strength of each network's input layer, real and noise in two
    colours, with the mean of each kind as a dashed line. A side panel shows, for in-degree, the
    spread of each kind; for strength, the top of the strength ranking (QuickSelection) with the
    precision of "the top-k are the real ones".

    :param connectivity: per network, its :class:`FeatureConnectivity` (dense networks are skipped
        for ``in_degree``)
    With many inputs (more than 60) and known real features, a left panel shows the real features
    and actions apart, one bar each, against the noise features' mean and 5–95% range (among
    1,500 stems they would hide at x ≈ 0).

    :param path: a file to save the figure to (``None``: do not save)
    :param what: ``in_degree`` or ``strength``
    :param step_text: which step the data is from, for the titles (e.g. ``env step 400``)
    :param former_real: for a permuted run, boolean over the observation features: the features
        that were real before the permutation (marked with open circles), or ``None``
    :return: the figure
    """
    conns = [c for c in connectivity.values() if what == "strength" or c.is_sparse]
    if not conns:
        raise ValueError("no sparse input layer to plot the in-degree of; plot the strength")
    zoom = any(_needs_zoom(c) for c in conns)
    fig = Figure(figsize=(17 if zoom else 14, 3.1 * len(conns)))
    ratios = [1.3, 4.2, 1] if zoom else [4.2, 1]
    grid = fig.subplots(len(conns), len(ratios), squeeze=False, gridspec_kw={"width_ratios": ratios})
    axes = grid[:, 1:] if zoom else grid
    for row, conn in enumerate(conns):
        values = _values(conn, what)
        ax = axes[row, 0]
        if zoom:
            _draw_zoom(grid[row, 0], conn, values, what)
        _draw_stems(ax, conn, values, former_real)
        ax.set_title(_network_title(conn, step_text) + _share_text(conn, what), fontsize=10, loc="left")
        ax.set_ylabel(_value_label(what))
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9, ncol=4)
        if what == "in_degree":
            _draw_spread(axes[row, 1], conn, values)
        else:
            _draw_ranking(axes[row, 1], conn, former_real)
    axes[-1, 0].set_xlabel("input feature index" + (" (observation features, then actions)"
                                                   if any(c.n_actions for c in conns) else ""))
    fig.tight_layout()
    return _save(fig, path)


def _needs_zoom(conn: FeatureConnectivity) -> bool:
    kinds = conn.column_kinds
    return conn.n_inputs > 60 and conn.real_mask is not None and bool((kinds == REAL).any())


def _draw_zoom(ax: Axes, conn: FeatureConnectivity, values: np.ndarray, what: str) -> None:
    """The real features and actions apart, one bar each (labelled by input index), against the
    noise features' mean (dashed) and 5–95% range (band)."""
    kinds = conn.column_kinds
    shown = np.flatnonzero(kinds != NOISE)[:40]
    ax.bar(np.arange(shown.size), values[shown], color=[_kind_color(conn, int(kinds[i])) for i in shown], width=0.8)
    noise = values[kinds == NOISE]
    if noise.size:
        low, high = np.percentile(noise, [5, 95])
        ax.axhspan(low, high, color=NOISE_COLOR, alpha=0.2, linewidth=0, label="noise: 5–95%")
        ax.axhline(float(noise.mean()), color=NOISE_COLOR, linestyle="--", linewidth=1.2, label="noise: mean")
    labels = [f"a{i - conn.n_observation}" if kinds[i] == ACTION else str(i) for i in shown]
    ax.set_xticks(np.arange(shown.size), labels, fontsize=7, rotation=90 if shown.size > 12 else 0)
    ax.set_xlim(-0.6, shown.size - 0.4)
    ax.set_ylim(0, max(float(values.max()), 1e-12) * 1.3)
    ax.set_ylabel(_value_label(what))
    ax.set_title("real features" + (" and actions" if conn.n_actions else "") + " apart", fontsize=10)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.9)


def _share_text(conn: FeatureConnectivity, what: str) -> str:
    if conn.real_mask is None:
        return ""
    on = "real features" + (" + actions" if conn.n_actions else "")
    share = conn.real_share() if what == "in_degree" else conn.strength_real_share()
    if share is None:
        return ""
    noun, level = ("connections", "random topology") if what == "in_degree" else ("strength", "equal per feature")
    return f"\nshare of {noun} on {on}: {pct(share)} ({level}: {pct(conn.chance_share())})"


def _draw_spread(ax: Axes, conn: FeatureConnectivity, values: np.ndarray) -> None:
    """In-degree of each kind as jittered points with a box: does a real feature beat the noise?"""
    kinds = conn.column_kinds
    present = [k for k in (REAL, NOISE, ACTION) if (kinds == k).any()]
    rng = np.random.default_rng(0)
    data = []
    for i, kind in enumerate(present):
        selected = values[kinds == kind]
        data.append(selected)
        jitter = rng.uniform(-0.18, 0.18, selected.size)
        ax.scatter(np.full(selected.size, i) + jitter, selected, s=6 if kind == NOISE else 18,
                   color=_kind_color(conn, kind), alpha=0.6 if kind == NOISE else 1.0, zorder=3, linewidths=0)
    ax.boxplot(data, positions=range(len(present)), widths=0.55, showfliers=False,
               medianprops={"color": "black"}, zorder=2)
    ax.set_xticks(range(len(present)), [_kind_label(conn, k).split(" ")[0] for k in present])
    ax.set_ylim(bottom=0)
    ax.set_title("spread per kind (box: quartiles)", fontsize=10)


def _draw_ranking(ax: Axes, conn: FeatureConnectivity, former_real: np.ndarray | None = None) -> None:
    """The strongest observation features, strongest first, coloured by kind (features real before
    a permutation in the permutation colour)."""
    ranking = conn.ranking()
    n_show = int(min(ranking.size, max(10, 3 * conn.n_real if conn.real_mask is not None else 20), 60))
    top = ranking[:n_show]
    kinds = conn.column_kinds[top]
    colors = [_kind_color(conn, int(k)) for k in kinds]
    if former_real is not None:
        former = np.asarray(former_real, dtype=bool)
        colors = [PERMUTATION_COLOR if former[f] and k != REAL else c for f, k, c in zip(top, kinds, colors)]
    ax.bar(np.arange(1, n_show + 1), conn.strength[top], color=colors, width=0.85)
    topk = conn.topk()
    if topk is not None:
        k = conn.n_real
        ax.axvline(k + 0.5, color="black", linestyle=":", linewidth=1)
        ax.set_title(f"strength ranking: top-{k} precision {topk[0]:.0%}", fontsize=10)
    else:
        ax.set_title("strength ranking (real features unknown)", fontsize=10)
    ax.set_xlabel("rank (1 = strongest)")
    ax.set_xlim(0.3, n_show + 0.7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


# --------------------------------------------------------------------------------------------------
# heatmap


@dataclass(frozen=True)
class HeatmapRow:
    """One row of a feature × time heatmap: the mean over some input columns.

    :param label: the row's tick label (empty for rows inside a binned group)
    :param columns: the input columns averaged in this row
    :param group: the group it belongs to (``real``, ``noise``…), for separators and the legend
    """

    label: str
    columns: np.ndarray
    group: str


def heatmap_rows(
    n_inputs: int,
    n_observation: int,
    real_masks: np.ndarray | None,
    final_values: np.ndarray,
    max_individual: int = MAX_INDIVIDUAL_ROWS,
    binned_rows: int = BINNED_ROWS,
) -> list[HeatmapRow]:
    """Order and aggregate input columns into readable heatmap rows.

    Groups, top to bottom: the features real at the first snapshot (``real``, or ``old real`` in a
    permuted run; one row each, or binned if more than ``max_individual``); the features that
    become real later (``new real``, after a permutation); the noise features (real at no
    snapshot), in index order, binned into at most ``binned_rows`` rows of (nearly) equal size;
    the critic's action columns. Without a real mask all observation
    features form one group (``feature``), binned the same way. A binned group's first row is
    labelled ``<group> ×<count> ↓``.

    Binned groups keep the features' index order: sorting them by their final value first would
    draw, near the end of training, a gradient from the strongest to the weakest bin that is only
    the order statistics of noise (a pattern next to the real rows that no feature has).

    :param n_inputs: the layer's in_features
    :param n_observation: how many of them are observation features
    :param real_masks: (time, observation feature) boolean real masks, or ``None``
    :param final_values: per input column, the value at the last snapshot (kept for callers; binned
        groups are no longer sorted by it)
    :param max_individual: a group larger than this is binned
    :param binned_rows: rows of a binned group
    """
    observation = np.arange(n_observation)
    actions = np.arange(n_observation, n_inputs)
    if real_masks is None:
        groups = [("feature", observation, False)]
    else:
        first = np.flatnonzero(real_masks[0])
        ever = real_masks.any(axis=0)
        later = np.flatnonzero(ever & ~real_masks[0])
        never = np.flatnonzero(~ever)
        groups = [("old real" if later.size else "real", first, False), ("new real", later, False),
                  ("noise", never, False)]
    groups.append(("action", actions, False))
    rows: list[HeatmapRow] = []
    for name, columns, sort in groups:
        if columns.size == 0:
            continue
        if sort:
            columns = columns[np.argsort(-final_values[columns], kind="stable")]
        if columns.size <= max_individual:
            for column in columns:
                label = f"action {column - n_observation}" if name == "action" else f"{name} {column}"
                rows.append(HeatmapRow(label, np.array([column]), name))
        else:
            chunks = np.array_split(columns, min(binned_rows, columns.size))
            for i, chunk in enumerate(chunks):
                label = f"{name} ×{columns.size} ↓" if i == 0 else ""
                rows.append(HeatmapRow(label, chunk, name))
    return rows


def _time_edges(steps: np.ndarray) -> np.ndarray:
    """Cell edges along time: midway between snapshots, the first cell starting at the first
    snapshot and the last ending at the last (no cell reaches before step 0 or past training)."""
    if steps.size == 1:
        return np.array([steps[0], steps[0] + 1.0], dtype=np.float64)
    middle = (steps[1:] + steps[:-1]) / 2.0
    return np.concatenate([[steps[0]], middle, [steps[-1]]]).astype(np.float64)


def plot_connectivity_heatmap(
    series: ConnectivitySeries,
    path: str | Path | None = None,
    permutation_step: int | None = None,
    title: str = "",
) -> Figure:
    """Feature × time heatmap of each network's input layer: in-degree for sparse layers, strength
    for dense ones. Rows are ordered and aggregated by :func:`heatmap_rows` (real features one row
    each, noise features sorted and binned), so it stays readable with thousands of features.

    :param series: the snapshots
    :param path: a file to save the figure to (``None``: do not save)
    :param permutation_step: env step of the feature permutation, marked with a vertical line
    :param title: a figure title (e.g. the run's name)
    :return: the figure
    """
    if len(series) == 0:
        raise ValueError("no snapshots to plot")
    networks = series.networks
    steps = series.env_steps
    edges = _time_edges(steps.astype(np.float64))
    masks = series.real_masks()
    panels = []
    for name in networks:
        what = "in_degree" if series.is_sparse(name) else "strength"
        matrix = series.matrix(name, what).astype(np.float64)
        last = series.snapshots[-1].networks[name]
        rows = heatmap_rows(last.n_inputs, last.n_observation, masks, matrix[-1])
        image = np.stack([matrix[:, row.columns].mean(axis=1) for row in rows])
        panels.append((name, what, rows, image, last))
    n_rows = max(len(p[2]) for p in panels)
    height = float(np.clip(1.6 + 0.17 * n_rows, 4.0, 12.0))
    fig = Figure(figsize=(5.0 * len(panels) + 1.5, height), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)
    if title:
        fig.suptitle(title, fontsize=11)
    # One colour scale per kind of value, up to the largest value shown (not the layer's maximum
    # in-degree, which would squash a 5%-dense layer's range into the darkest colours).
    # In-degrees share one scale (same layer widths); strengths differ between actor and critics, so
    # each strength panel gets its own.
    degree_max = max([float(p[3].max()) for p in panels if p[1] == "in_degree"], default=0.0)
    meshes: dict[str, tuple[Any, list[Axes]]] = {}
    for ax, (name, what, rows, image, _last) in zip(axes[0], panels):
        vmax = degree_max if what == "in_degree" else float(image.max())
        mesh = ax.pcolormesh(edges, np.arange(len(rows) + 1), image, cmap="viridis", vmin=0.0,
                             vmax=max(vmax, 1e-12), shading="flat")
        meshes.setdefault(what if what == "in_degree" else name, (mesh, []))[1].append(ax)
        ax.set_ylim(len(rows), 0)
        ticks = [i for i, row in enumerate(rows) if row.label]
        ax.set_yticks(np.array(ticks) + 0.5, [rows[i].label for i in ticks], fontsize=7)
        for tick, i in zip(ax.get_yticklabels(), ticks):
            tick.set_color(_group_color(rows[i].group))
        for i in range(1, len(rows)):
            if rows[i].group != rows[i - 1].group:
                ax.axhline(i, color="white", linewidth=1.5)
        if permutation_step is not None:
            ax.axvline(permutation_step, color=PERMUTATION_COLOR, linewidth=2, linestyle="--")
        role = "actor" if name == "actor" else f"critic {name}"
        ax.set_title(f"{role}: {'in-degree' if what == 'in_degree' else 'strength (dense layer)'} per feature\n"
                     f"env steps {steps[0]}–{steps[-1]}, {len(series)} snapshots", fontsize=10)
        ax.set_xlabel("env step")
    binned = any(row.columns.size > 1 for p in panels for row in p[2])
    for key, (mesh, mesh_axes) in meshes.items():
        colorbar = fig.colorbar(mesh, ax=mesh_axes, fraction=0.04, pad=0.02)
        what = "in_degree" if key == "in_degree" else "strength"
        colorbar.set_label(("mean " if binned else "") + _value_label(what), fontsize=9)
    notes = []
    if binned:
        notes.append("rows marked ×N ↓ start a group of N features binned into rows (mean per row), in index order")
    if permutation_step is not None:
        notes.append("old real: real before the permutation, new real: after")
    handles = []
    if permutation_step is not None:
        handles.append(Line2D([], [], color=PERMUTATION_COLOR, linestyle="--", linewidth=2,
                              label=f"features permuted (env step {permutation_step})"))
    for note in notes:
        handles.append(Line2D([], [], linestyle="none", label=note))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", fontsize=8, frameon=False, ncol=1,
                   handlelength=2 if permutation_step is not None else 0)
    return _save(fig, path)


def _group_color(group: str) -> str:
    return {"real": REAL_COLOR, "old real": REAL_COLOR, "new real": PERMUTATION_COLOR, "noise": NOISE_COLOR,
            "action": ACTION_COLOR}.get(group, UNKNOWN_COLOR)


# --------------------------------------------------------------------------------------------------
# curves over training


def _series_metric(series: ConnectivitySeries, network: str, key: str) -> np.ndarray:
    return series.summaries[network][key]


def _mark_permutation(ax: Axes, permutation_step: int | None) -> None:
    if permutation_step is not None:
        ax.axvline(permutation_step, color=PERMUTATION_COLOR, linestyle="--", linewidth=1.5)


def plot_real_share(
    series: ConnectivitySeries,
    path: str | Path | None = None,
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
    :param path: a file to save the figure to (``None``: do not save)
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
        _mark_permutation(ax, permutation_step)
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
    return _save(fig, path)


# --------------------------------------------------------------------------------------------------
# animation


def animate_connectivity(
    series: ConnectivitySeries,
    path: str | Path,
    max_frames: int = 60,
    fps: int = 4,
    title: str = "",
) -> Path:
    """An animated GIF of each network's per-feature in-degree (strength for dense layers) over the
    snapshots, real and noise in two colours (the colours follow the real mask of each frame, so a
    permutation shows the real features moving).

    The static parts (axes, ticks, legend) are drawn once and each frame only redraws the stems,
    markers and texts on top of them (blitting); the frames go to a GIF through Pillow. That is
    ~10× faster than ``FuncAnimation`` with ``PillowWriter``, which redraws the whole figure
    (and most of the time goes into the tick labels).

    :param series: the snapshots
    :param path: the GIF to write
    :param max_frames: at most this many frames (snapshots evenly subsampled, the last one kept)
    :param fps: frames per second
    :param title: the GIF's title (e.g. the run's name), above the step of each frame
    :return: the path written (an animation, so a file rather than a Figure)

    A dotted grey line in each panel is the random level: the mean over all input columns, what
    every feature would have if the connections (or the strength) were spread evenly.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    if len(series) == 0:
        raise ValueError("no snapshots to animate")
    indices = _frame_indices(len(series), max_frames)
    networks = series.networks
    whats = {name: "in_degree" if series.is_sparse(name) else "strength" for name in networks}
    matrices = {name: series.matrix(name, whats[name]).astype(np.float64) for name in networks}
    fig = Figure(figsize=(11, 2.5 * len(networks) + 0.9), dpi=80)
    FigureCanvasAgg(fig)  # a raster canvas of its own, for blitting (pyplot's backend is left alone)
    axes = fig.subplots(len(networks), 1, squeeze=False)
    artists = []
    first = series.snapshots[indices[0]]
    for ax, name in zip(axes[:, 0], networks):
        conn = first.networks[name]
        n = conn.n_inputs
        collection = LineCollection([], linewidths=_line_width(n), animated=True)
        ax.add_collection(collection)
        highlighted = LineCollection([], linewidths=max(_line_width(n), 1.5), animated=True, zorder=3)
        ax.add_collection(highlighted)
        markers = ax.scatter([], [], s=28, zorder=4, linewidths=0.5, edgecolors="black", animated=True)
        ax.set_xlim(-0.5 - n * 0.01, n - 0.5 + n * 0.01)
        ax.set_ylim(0, max(float(matrices[name].max()), 1e-12) * 1.15)
        means = {kind: ax.axhline(0, color=color, linestyle="--", linewidth=1, animated=True)
                 for kind, color in ((REAL, REAL_COLOR), (NOISE, NOISE_COLOR))}
        means[None] = ax.axhline(0, color="grey", linestyle=":", linewidth=1.2, animated=True)  # random level
        ax.set_ylabel(_value_label(whats[name]).replace(" (", "\n("), fontsize=8)
        label = ax.text(0.995, 0.95, "", transform=ax.transAxes, ha="right", va="top", fontsize=8, animated=True,
                        bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
        role = "actor" if name == "actor" else f"critic {name}"
        ax.set_title(f"{role} input layer ({'sparse' if whats[name] == 'in_degree' else 'dense'})", fontsize=9,
                     loc="left")
        artists.append((name, ax, (collection, highlighted), markers, label, means))
    axes[-1, 0].set_xlabel("input feature index")
    most = max(first.networks[n].n_inputs for n in networks)
    binned_note = f" (max of ~{int(np.ceil(most / MAX_ANIMATED_STEMS))} per stem)" if most > MAX_ANIMATED_STEMS else ""
    handles = [Line2D([], [], color=REAL_COLOR, linewidth=3, label="real feature"),
               Line2D([], [], color=NOISE_COLOR, linewidth=3, label="noise feature" + binned_note)]
    if any(first.networks[n].n_actions for n in networks):
        handles.append(Line2D([], [], color=ACTION_COLOR, linewidth=3, label="action"))
    handles.append(Line2D([], [], color="grey", linestyle="--", linewidth=1, label="mean of real / of noise"))
    handles.append(Line2D([], [], color="grey", linestyle=":", linewidth=1.2, label="random level (mean of all)"))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles), fontsize=8,
               frameon=False)
    heading = fig.text(0.01, 0.985, "", ha="left", va="top", fontsize=10, animated=True)
    fig.tight_layout(rect=(0, 0.045, 1, 0.93))
    canvas = fig.canvas
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    frames = []
    for index in indices:
        snap = series.snapshots[index]
        canvas.restore_region(background)
        for name, ax, (collection, highlighted), markers, label, means in artists:
            conn = snap.networks[name]
            values = matrices[name][index]
            x = np.arange(values.size)
            colors = list(_kind_colors(conn))
            kinds = conn.column_kinds
            noise = kinds == NOISE
            collection.set_segments(_segments(*_binned_max(x[noise], values[noise], MAX_ANIMATED_STEMS)))
            collection.set_colors(NOISE_COLOR)
            highlighted.set_segments(_segments(x[~noise], values[~noise]))
            highlighted.set_colors([c for c, k in zip(colors, noise) if not k])
            highlight = (kinds != NOISE) & (values.size > 60)
            markers.set_offsets(np.column_stack([x[highlight], values[highlight]]))
            markers.set_facecolors([c for c, h in zip(colors, highlight) if h])
            for kind, line in means.items():
                selected = np.ones(kinds.size, dtype=bool) if kind is None else kinds == kind
                line.set_visible(bool(selected.any()) and (kind is None or conn.real_mask is not None))
                line.set_ydata([values[selected].mean()] * 2 if selected.any() else [0, 0])
                ax.draw_artist(line)
            share = conn.real_share()
            plus = " + actions" if conn.n_actions else ""
            if conn.real_mask is None:
                label.set_text("")
            elif share is not None:
                label.set_text(f"share of connections on real features{plus}: {pct(share)} "
                               f"(random: {pct(conn.chance_share())})")
            else:
                label.set_text(f"share of strength on real features{plus}: {pct(conn.strength_real_share())} "
                               f"(equal per feature: {pct(conn.chance_share())})")
            ax.draw_artist(collection)
            ax.draw_artist(highlighted)
            ax.draw_artist(markers)
            ax.draw_artist(label)
        permuted = " · features permuted" if snap.permuted else ""
        heading.set_text((f"{title}\n" if title else "") + "input-layer connectivity · "
                         f"env step {snap.env_step} · gradient step {snap.gradient_step}{permuted}")
        fig.draw_artist(heading)
        frames.append(Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy()))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One palette for all frames (the colours hardly change), no dithering: crisp lines, fast.
    palette = frames[0].quantize(colors=128, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    indexed = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    indexed[0].save(path, save_all=True, append_images=indexed[1:], duration=int(1000 / fps), loop=0)
    return path


def _frame_indices(n: int, max_frames: int) -> list[int]:
    if n <= max_frames:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, max_frames).round().astype(int).tolist()))


def _binned_max(x: np.ndarray, values: np.ndarray, max_stems: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_stems`` stems: consecutive features (by index) binned, each bin drawn at its
    mean position with its largest value (the envelope a screen shows anyway when there are more
    features than pixels). Matplotlib builds one path per stem per frame, so this bounds the cost."""
    if x.size <= max_stems:
        return x, values
    edges = np.linspace(0, x.size, max_stems + 1).astype(int)
    starts = edges[:-1][np.diff(edges) > 0]
    centers = np.add.reduceat(x.astype(np.float64), starts) / np.diff(np.append(starts, x.size))
    return centers, np.maximum.reduceat(values, starts)


def _segments(x: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.stack([np.column_stack([x, np.zeros_like(values)]), np.column_stack([x, values])], axis=1)


# --------------------------------------------------------------------------------------------------
# comparing runs


def plot_run_comparison(
    runs: Mapping[str, ConnectivitySeries],
    path: str | Path | None = None,
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
    :param path: a file to save the figure to (``None``: do not save)
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
        _mark_permutation(axes[0], series.permutation_step())
        _mark_permutation(axes[1], series.permutation_step())
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
    return _save(fig, path)


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Save ``fig`` to ``path`` (PNG, PDF, SVG… by the suffix; parent directories made) at this
    module's resolution.

    :param fig: a figure from one of this module's functions
    :param path: the file
    :return: the path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        save_figure(fig, path)
    return fig
