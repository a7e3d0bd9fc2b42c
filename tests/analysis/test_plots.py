"""Plots from synthetic data: they are Figures that save, the heatmap's rows stay few and ordered, and
importing the plots chooses no matplotlib backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from sparse_rl.analysis import plots
from sparse_rl.analysis.plots import heatmap

from .conftest import synthetic_series


def _is_png(path: Path) -> bool:
    with Image.open(path) as image:
        return image.format == "PNG" and image.size[0] > 500


def _saved(figure: Figure, path: Path) -> bool:
    """A Figure that :func:`plots.save_figure` writes (parent directories made)."""
    assert isinstance(figure, Figure)
    return _is_png(plots.save_figure(figure, path.parent / "figures" / path.name))


def test_heatmap_rows_put_real_features_first_and_bin_the_noise() -> None:
    n_obs = 1700
    masks = np.zeros((2, n_obs), dtype=bool)
    masks[:, :17] = True
    final = -np.arange(n_obs + 2, dtype=float)  # noise weakest at the highest index: must not reorder
    rows = plots.heatmap_rows(n_obs + 2, n_obs, masks, final)
    groups = [row.group for row in rows]
    assert groups[:17] == ["real"] * 17 and groups[-2:] == ["action", "action"]
    noise = [row for row in rows if row.group == "noise"]
    assert len(noise) == heatmap.BINNED_ROWS and sum(row.columns.size for row in noise) == n_obs - 17
    # binned in index order (sorting by final value would draw a gradient that is only noise's order statistics)
    assert np.concatenate([row.columns for row in noise]).tolist() == list(range(17, n_obs))
    assert noise[0].label.startswith("noise ×1683") and not noise[1].label
    assert sorted(np.concatenate([row.columns for row in rows]).tolist()) == list(range(n_obs + 2))


def test_heatmap_rows_of_a_permuted_run() -> None:
    masks = np.zeros((3, 10), dtype=bool)
    masks[:2, :2] = True
    masks[2, [5, 7]] = True
    rows = plots.heatmap_rows(10, 10, masks, np.zeros(10))
    assert [row.label for row in rows[:4]] == ["old real 0", "old real 1", "new real 5", "new real 7"]
    assert [row.group for row in plots.heatmap_rows(4, 4, None, np.zeros(4))] == ["feature"] * 4


@pytest.mark.parametrize("permute_at", [None, 6])
def test_series_plots_with_many_features(tmp_path: Path, permute_at: int | None) -> None:
    series = synthetic_series(permute_at=permute_at)
    step = series.permutation_step()
    share = plots.plot_real_share(series, step, title="synthetic")
    assert _saved(share, tmp_path / "share.png")
    heatmap = plots.plot_connectivity_heatmap(series, step, title="synthetic")
    assert _saved(heatmap, tmp_path / "heat.png") and heatmap.get_suptitle() == "synthetic"
    first_step = float(series.env_steps[0])
    assert all(ax.get_xlim()[0] == first_step >= 0 for ax in heatmap.axes if ax.get_label() != "<colorbar>")
    gif = plots.animate_connectivity(series, tmp_path / "evolution.gif", max_frames=5, title="synthetic")
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == 5


def test_feature_plots_of_the_last_snapshot(tmp_path: Path) -> None:
    series = synthetic_series(n_obs=40, n_real=4)
    last = series.snapshots[-1].networks
    former = series.snapshots[0].real_mask
    degree = plots.plot_feature_values(last, "in_degree", "env step 1100", former)
    assert _saved(degree, tmp_path / "degree.png")
    assert _saved(plots.plot_feature_values(last, "strength", "env step 1100"),
                  tmp_path / "strength.png")
    dense = {name: conn.__class__(name, conn.strength, None, conn.out_features, conn.n_observation, conn.real_mask)
             for name, conn in last.items()}
    with pytest.raises(ValueError, match="no sparse input layer"):
        plots.plot_feature_values(dense, "in_degree")
    assert plots.pct(0.00176) == "0.176%"


def test_many_inputs_show_the_real_features_apart(tmp_path: Path) -> None:
    series = synthetic_series(n_obs=1500, n_real=3, permute_at=None)
    last = series.snapshots[-1].networks
    figure = plots.plot_feature_values(last, "in_degree")
    zoom = [ax for ax in figure.axes if ax.get_title().startswith("real features")]
    assert len(zoom) == len(last)  # one per network, beside its 1,500 stems
    labels = [tick.get_text() for tick in zoom[0].get_xticklabels()]
    assert labels == ["0", "1", "2"]
    few = plots.plot_feature_values(synthetic_series(n_obs=40, n_real=4).snapshots[-1].networks)
    assert not any(ax.get_title().startswith("real features") for ax in few.axes)


def test_run_comparison_has_a_title_and_random_levels() -> None:
    runs = {"sparse": synthetic_series(n_obs=100, n_real=5, permute_at=None), "other": synthetic_series(
        n_obs=100, n_real=5, permute_at=None, seed=1)}
    figure = plots.plot_run_comparison(runs)
    assert figure.get_suptitle() == "input-layer connectivity: sparse vs other"
    panels = {ax.get_title(loc="left"): ax for ax in figure.axes}
    for title in ("share of input connections on real features", "share of input strength (sum |w|) on real features",
                  "top-k features by strength are real: precision (k = # real)"):
        dotted = [line for line in panels[title].get_lines() if line.get_linestyle() == ":" and len(line.get_xdata())]
        assert len(dotted) >= 2, title  # a random level per run


def test_importing_the_plots_chooses_no_backend_and_opens_no_pyplot_figure() -> None:
    import subprocess
    import sys

    code = ("import matplotlib, os; os.environ.pop('MPLBACKEND', None)\n"
            "import sparse_rl.analysis.plots, sparse_rl.analysis.report, sparse_rl.benchmark.compare\n"
            "print(matplotlib.rcParams._get_backend_or_none())\n"
            "import sys; print('matplotlib.pyplot' in sys.modules)")
    env = {k: v for k, v in __import__("os").environ.items() if k != "MPLBACKEND"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == ["None", "False"]


def test_the_plots_are_importable_from_the_analysis_package() -> None:
    from sparse_rl.analysis import plot_feature_values, plot_real_share, save_figure

    assert plot_real_share is plots.plot_real_share and plot_feature_values is plots.plot_feature_values
    assert save_figure is plots.save_figure
