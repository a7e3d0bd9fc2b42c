"""An animated GIF of each network's per-feature connectivity over the snapshots
(:func:`animate_connectivity`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from sparse_rl.analysis.metrics import NOISE, REAL, FeatureConnectivity
from sparse_rl.analysis.plots.style import (
    ACTION_COLOR,
    NOISE_COLOR,
    REAL_COLOR,
    kind_colors,
    line_width,
    pct,
    value_label,
)
from sparse_rl.analysis.snapshots import ConnectivitySeries, ConnectivitySnapshot

#: Noise stems drawn per network in a GIF frame; more features are binned (max per bin).
MAX_ANIMATED_STEMS = 1200


class _Panel:
    """One network's axes in the animation and the artists each frame redraws (stems of the noise
    features, of the real features and actions with markers on top, the means, the share text)."""

    def __init__(self, ax: Axes, name: str, what: str, matrix: np.ndarray, n_inputs: int) -> None:
        self.ax, self.name, self.matrix = ax, name, matrix
        self.noise_stems = LineCollection([], linewidths=line_width(n_inputs), animated=True)
        ax.add_collection(self.noise_stems)
        self.real_stems = LineCollection([], linewidths=max(line_width(n_inputs), 1.5), animated=True, zorder=3)
        ax.add_collection(self.real_stems)
        self.markers = ax.scatter([], [], s=28, zorder=4, linewidths=0.5, edgecolors="black", animated=True)
        ax.set_xlim(-0.5 - n_inputs * 0.01, n_inputs - 0.5 + n_inputs * 0.01)
        ax.set_ylim(0, max(float(matrix.max()), 1e-12) * 1.15)
        self.means = {kind: ax.axhline(0, color=color, linestyle="--", linewidth=1, animated=True)
                      for kind, color in ((REAL, REAL_COLOR), (NOISE, NOISE_COLOR))}
        self.means[None] = ax.axhline(0, color="grey", linestyle=":", linewidth=1.2, animated=True)  # random level
        ax.set_ylabel(value_label(what).replace(" (", "\n("), fontsize=8)
        self.label = ax.text(0.995, 0.95, "", transform=ax.transAxes, ha="right", va="top", fontsize=8,
                             animated=True, bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
        role = "actor" if name == "actor" else f"critic {name}"
        ax.set_title(f"{role} input layer ({'sparse' if what == 'in_degree' else 'dense'})", fontsize=9, loc="left")

    def draw(self, conn: FeatureConnectivity, index: int) -> None:
        """Draw snapshot ``index`` (whose connectivity is ``conn``) onto the restored background."""
        values = self.matrix[index]
        x = np.arange(values.size)
        colors = list(kind_colors(conn))
        kinds = conn.column_kinds
        noise = kinds == NOISE
        self.noise_stems.set_segments(_segments(*_binned_max(x[noise], values[noise], MAX_ANIMATED_STEMS)))
        self.noise_stems.set_colors(NOISE_COLOR)
        self.real_stems.set_segments(_segments(x[~noise], values[~noise]))
        self.real_stems.set_colors([c for c, k in zip(colors, noise) if not k])
        highlight = (kinds != NOISE) & (values.size > 60)
        self.markers.set_offsets(np.column_stack([x[highlight], values[highlight]]))
        self.markers.set_facecolors([c for c, h in zip(colors, highlight) if h])
        for kind, line in self.means.items():
            selected = np.ones(kinds.size, dtype=bool) if kind is None else kinds == kind
            line.set_visible(bool(selected.any()) and (kind is None or conn.real_mask is not None))
            line.set_ydata([values[selected].mean()] * 2 if selected.any() else [0, 0])
            self.ax.draw_artist(line)
        self.label.set_text(_share_text(conn))
        for artist in (self.noise_stems, self.real_stems, self.markers, self.label):
            self.ax.draw_artist(artist)


def _share_text(conn: FeatureConnectivity) -> str:
    if conn.real_mask is None:
        return ""
    plus = " + actions" if conn.n_actions else ""
    share = conn.real_share()
    if share is not None:
        return f"share of connections on real features{plus}: {pct(share)} (random: {pct(conn.chance_share())})"
    return (f"share of strength on real features{plus}: {pct(conn.strength_real_share())} "
            f"(equal per feature: {pct(conn.chance_share())})")


def _legend(fig: Figure, first: ConnectivitySnapshot) -> None:
    networks = first.networks.values()
    most = max(conn.n_inputs for conn in networks)
    binned_note = f" (max of ~{int(np.ceil(most / MAX_ANIMATED_STEMS))} per stem)" if most > MAX_ANIMATED_STEMS else ""
    handles = [Line2D([], [], color=REAL_COLOR, linewidth=3, label="real feature"),
               Line2D([], [], color=NOISE_COLOR, linewidth=3, label="noise feature" + binned_note)]
    if any(conn.n_actions for conn in networks):
        handles.append(Line2D([], [], color=ACTION_COLOR, linewidth=3, label="action"))
    handles.append(Line2D([], [], color="grey", linestyle="--", linewidth=1, label="mean of real / of noise"))
    handles.append(Line2D([], [], color="grey", linestyle=":", linewidth=1.2, label="random level (mean of all)"))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles), fontsize=8,
               frameon=False)


def _write_gif(frames: list[Image.Image], path: str | Path, fps: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One palette for all frames (the colours hardly change), no dithering: crisp lines, fast.
    palette = frames[0].quantize(colors=128, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    indexed = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    indexed[0].save(path, save_all=True, append_images=indexed[1:], duration=int(1000 / fps), loop=0)
    return path


def animate_connectivity(
    series: ConnectivitySeries,
    path: str | Path,
    max_frames: int = 60,
    fps: int = 4,
    title: str = "",
) -> Path:
    """An animated GIF of each network's per-feature in-degree (strength for dense layers) over the
    snapshots, real and noise in two colours (the colours follow the real mask of each frame, so a
    permutation shows the real features moving). A dotted grey line in each panel is the random
    level: the mean over all input columns, what every feature would have if the connections (or
    the strength) were spread evenly.

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
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if len(series) == 0:
        raise ValueError("no snapshots to animate")
    indices = _frame_indices(len(series), max_frames)
    networks = series.networks
    first = series.snapshots[indices[0]]
    fig = Figure(figsize=(11, 2.5 * len(networks) + 0.9), dpi=80)
    FigureCanvasAgg(fig)  # a raster canvas of its own, for blitting (pyplot's backend is left alone)
    axes = fig.subplots(len(networks), 1, squeeze=False)
    panels = []
    for ax, name in zip(axes[:, 0], networks):
        what = "in_degree" if series.is_sparse(name) else "strength"
        panels.append(_Panel(ax, name, what, series.matrix(name, what).astype(np.float64),
                             first.networks[name].n_inputs))
    axes[-1, 0].set_xlabel("input feature index")
    _legend(fig, first)
    heading = fig.text(0.01, 0.985, "", ha="left", va="top", fontsize=10, animated=True)
    fig.tight_layout(rect=(0, 0.045, 1, 0.93))
    canvas = fig.canvas
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    frames = []
    for index in indices:
        snap = series.snapshots[index]
        canvas.restore_region(background)
        for panel in panels:
            panel.draw(snap.networks[panel.name], index)
        permuted = " · features permuted" if snap.permuted else ""
        heading.set_text((f"{title}\n" if title else "") + "input-layer connectivity · "
                         f"env step {snap.env_step} · gradient step {snap.gradient_step}{permuted}")
        fig.draw_artist(heading)
        frames.append(Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy()))
    return _write_gif(frames, path, fps)


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
