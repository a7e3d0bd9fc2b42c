"""The one way a figure is written to a file: :func:`save_figure` (the analysis and the benchmark
both save through it)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

#: the resolution of saved raster figures
DPI = 110


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Save ``fig`` to ``path`` (PNG, PDF, SVG… by the suffix; parent directories made) at
    :data:`DPI`.

    :param fig: the figure
    :param path: the file
    :return: the path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path
