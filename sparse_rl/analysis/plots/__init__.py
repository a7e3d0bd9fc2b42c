"""Matplotlib figures of input-layer connectivity, one module per kind of figure; each function
takes data and returns a :class:`~matplotlib.figure.Figure` (the GIF animation writes a file), and
:func:`save_figure` writes one. The figures are built with matplotlib's object API: importing
this package chooses no backend (a notebook keeps its own) and no figure stays open in pyplot.

- :mod:`~sparse_rl.analysis.plots.features`: per-feature bars of one snapshot;
- :mod:`~sparse_rl.analysis.plots.heatmap`: feature × time heatmaps;
- :mod:`~sparse_rl.analysis.plots.curves`: metrics over training, one run or several;
- :mod:`~sparse_rl.analysis.plots.animation`: the GIF over the snapshots;
- :mod:`~sparse_rl.analysis.plots.style`: the colours and names every figure shares;
- :mod:`~sparse_rl.analysis.plots.saving`: :func:`save_figure`, the one way a figure is written.

A new plot is one function in one of these modules (or a new one) returning a Figure, its name
here, and the line of :mod:`sparse_rl.analysis.report` that saves it.
"""

from sparse_rl.analysis.plots.animation import animate_connectivity
from sparse_rl.analysis.plots.curves import plot_real_share, plot_run_comparison
from sparse_rl.analysis.plots.features import plot_feature_values
from sparse_rl.analysis.plots.heatmap import HeatmapRow, heatmap_rows, plot_connectivity_heatmap
from sparse_rl.analysis.plots.saving import DPI, save_figure
from sparse_rl.analysis.plots.style import pct

__all__ = [
    "DPI",
    "HeatmapRow",
    "animate_connectivity",
    "heatmap_rows",
    "pct",
    "plot_connectivity_heatmap",
    "plot_feature_values",
    "plot_real_share",
    "plot_run_comparison",
    "save_figure",
]
