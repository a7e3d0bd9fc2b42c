"""The feature × time heatmap of each network's input layer (:func:`plot_connectivity_heatmap`),
its rows ordered and binned by :func:`heatmap_rows` so that thousands of features stay readable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sparse_rl.analysis.plots.style import (
    ACTION_COLOR,
    NOISE_COLOR,
    PERMUTATION_COLOR,
    REAL_COLOR,
    UNKNOWN_COLOR,
    value_label,
)
from sparse_rl.analysis.snapshots import ConnectivitySeries

#: Rows of a heatmap given to individual features before a group is binned.
MAX_INDIVIDUAL_ROWS = 40
#: Rows of a heatmap for a binned group of features (noise, or many real features).
BINNED_ROWS = 24


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
    :param final_values: per input column, the value at the last snapshot (a group marked for
        sorting is ordered by it; the groups above keep the index order)
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
    permutation_step: int | None = None,
    title: str = "",
) -> Figure:
    """Feature × time heatmap of each network's input layer: in-degree for sparse layers, strength
    for dense ones. Rows are ordered and aggregated by :func:`heatmap_rows` (real features one row
    each, noise features sorted and binned), so it stays readable with thousands of features.

    :param series: the snapshots
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
        colorbar.set_label(("mean " if binned else "") + value_label(what), fontsize=9)
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
    return fig


def _group_color(group: str) -> str:
    return {"real": REAL_COLOR, "old real": REAL_COLOR, "new real": PERMUTATION_COLOR, "noise": NOISE_COLOR,
            "action": ACTION_COLOR}.get(group, UNKNOWN_COLOR)
