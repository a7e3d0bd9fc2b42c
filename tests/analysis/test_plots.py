"""Plots from synthetic data: they are written, and the heatmap's rows stay few and ordered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sparse_rl.analysis import plots

from .conftest import synthetic_series


def _is_png(path: Path) -> bool:
    with Image.open(path) as image:
        return image.format == "PNG" and image.size[0] > 500


def test_heatmap_rows_put_real_features_first_and_bin_the_noise() -> None:
    n_obs = 1700
    masks = np.zeros((2, n_obs), dtype=bool)
    masks[:, :17] = True
    final = np.arange(n_obs + 2, dtype=float)  # noise strongest at the highest index
    rows = plots.heatmap_rows(n_obs + 2, n_obs, masks, final)
    groups = [row.group for row in rows]
    assert groups[:17] == ["real"] * 17 and groups[-2:] == ["action", "action"]
    noise = [row for row in rows if row.group == "noise"]
    assert len(noise) == plots.BINNED_ROWS and sum(row.columns.size for row in noise) == n_obs - 17
    assert noise[0].columns.max() == n_obs - 1  # strongest at the top
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
    assert _is_png(plots.plot_real_share(series, tmp_path / "share.png", step, title="synthetic"))
    assert _is_png(plots.plot_connectivity_heatmap(series, tmp_path / "heat.png", step))
    gif = plots.animate_connectivity(series, tmp_path / "evolution.gif", max_frames=5)
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == 5


def test_feature_plots_of_the_last_snapshot(tmp_path: Path) -> None:
    series = synthetic_series(n_obs=40, n_real=4)
    last = series.snapshots[-1].networks
    former = series.snapshots[0].real_mask
    assert _is_png(plots.plot_feature_values(last, tmp_path / "degree.png", "in_degree", "env step 1100", former))
    assert _is_png(plots.plot_feature_values(last, tmp_path / "strength.png", "strength", "env step 1100"))
    dense = {name: conn.__class__(name, conn.strength, None, conn.out_features, conn.n_observation, conn.real_mask)
             for name, conn in last.items()}
    with pytest.raises(ValueError, match="no sparse input layer"):
        plots.plot_feature_values(dense, tmp_path / "x.png", "in_degree")
    assert plots.pct(0.00176) == "0.176%"
