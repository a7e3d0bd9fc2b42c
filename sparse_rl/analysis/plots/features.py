"""Per-feature bars of one snapshot: each network's input-layer in-degree or strength, real and
noise apart (:func:`plot_feature_values`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sparse_rl.analysis.metrics import ACTION, NOISE, REAL, FeatureConnectivity
from sparse_rl.analysis.plots.style import (
    NOISE_COLOR,
    PERMUTATION_COLOR,
    feature_values,
    kind_color,
    kind_label,
    line_width,
    pct,
    value_label,
)


def _draw_stems(ax: Axes, conn: FeatureConnectivity, values: np.ndarray,
                former_real: np.ndarray | None = None) -> None:
    """Per-feature stems coloured by kind. With many features, real features and actions get
    thicker stems and a marker on top, so that a few of them stay visible among thousands of
    noise features; ``former_real`` (features real before a permutation) get open circles."""
    n = values.size
    x = np.arange(n)
    kinds = conn.column_kinds
    width = line_width(n)
    many = n > 60
    for kind in (REAL, ACTION, NOISE):
        selected = kinds == kind
        if not selected.any():
            continue
        color = kind_color(conn, kind)
        mean = values[selected].mean()
        label = f"{kind_label(conn, kind)} (n={int(selected.sum())}, mean {mean:.3g})"
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
        values = feature_values(conn, what)
        ax = axes[row, 0]
        if zoom:
            _draw_zoom(grid[row, 0], conn, values, what)
        _draw_stems(ax, conn, values, former_real)
        ax.set_title(_network_title(conn, step_text) + _share_text(conn, what), fontsize=10, loc="left")
        ax.set_ylabel(value_label(what))
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9, ncol=4)
        if what == "in_degree":
            _draw_spread(axes[row, 1], conn, values)
        else:
            _draw_ranking(axes[row, 1], conn, former_real)
    axes[-1, 0].set_xlabel("input feature index" + (" (observation features, then actions)"
                                                   if any(c.n_actions for c in conns) else ""))
    fig.tight_layout()
    return fig


def _needs_zoom(conn: FeatureConnectivity) -> bool:
    kinds = conn.column_kinds
    return conn.n_inputs > 60 and conn.real_mask is not None and bool((kinds == REAL).any())


def _draw_zoom(ax: Axes, conn: FeatureConnectivity, values: np.ndarray, what: str) -> None:
    """The real features and actions apart, one bar each (labelled by input index), against the
    noise features' mean (dashed) and 5–95% range (band)."""
    kinds = conn.column_kinds
    shown = np.flatnonzero(kinds != NOISE)[:40]
    ax.bar(np.arange(shown.size), values[shown], color=[kind_color(conn, int(kinds[i])) for i in shown], width=0.8)
    noise = values[kinds == NOISE]
    if noise.size:
        low, high = np.percentile(noise, [5, 95])
        ax.axhspan(low, high, color=NOISE_COLOR, alpha=0.2, linewidth=0, label="noise: 5–95%")
        ax.axhline(float(noise.mean()), color=NOISE_COLOR, linestyle="--", linewidth=1.2, label="noise: mean")
    labels = [f"a{i - conn.n_observation}" if kinds[i] == ACTION else str(i) for i in shown]
    ax.set_xticks(np.arange(shown.size), labels, fontsize=7, rotation=90 if shown.size > 12 else 0)
    ax.set_xlim(-0.6, shown.size - 0.4)
    ax.set_ylim(0, max(float(values.max()), 1e-12) * 1.3)
    ax.set_ylabel(value_label(what))
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
                   color=kind_color(conn, kind), alpha=0.6 if kind == NOISE else 1.0, zorder=3, linewidths=0)
    ax.boxplot(data, positions=range(len(present)), widths=0.55, showfliers=False,
               medianprops={"color": "black"}, zorder=2)
    ax.set_xticks(range(len(present)), [kind_label(conn, k).split(" ")[0] for k in present])
    ax.set_ylim(bottom=0)
    ax.set_title("spread per kind (box: quartiles)", fontsize=10)


def _draw_ranking(ax: Axes, conn: FeatureConnectivity, former_real: np.ndarray | None = None) -> None:
    """The strongest observation features, strongest first, coloured by kind (features real before
    a permutation in the permutation colour)."""
    ranking = conn.ranking()
    n_show = int(min(ranking.size, max(10, 3 * conn.n_real if conn.real_mask is not None else 20), 60))
    top = ranking[:n_show]
    kinds = conn.column_kinds[top]
    colors = [kind_color(conn, int(k)) for k in kinds]
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
