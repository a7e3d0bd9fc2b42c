"""``analyze_run`` on tiny real runs: the files, the tables, TensorBoard, and the edge cases."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from sparse_rl.analysis.report import analyze_run, compare_runs
from tests.conftest import load_script

from .conftest import synthetic_series


def test_analyze_a_sparse_run(sparse_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "plots"
    result = analyze_run(sparse_run, out_dir=out)
    files = {name: Path(path) for name, path in result["files"].items()}
    assert set(files) == {"in_degree_final", "strength_final", "features_final", "connectivity_final", "real_share",
                          "connectivity_heatmap", "connectivity_over_time", "connectivity_gif", "summary"}
    assert all(path.parent == out and path.stat().st_size > 0 for path in files.values())
    with Image.open(files["connectivity_gif"]) as gif:
        assert gif.n_frames == result["snapshots"] == 7
    rows = list(csv.DictReader(files["connectivity_over_time"].open()))
    assert len(rows) == 7 * 3 and {r["network"] for r in rows} == {"actor", "qf0", "qf1"}
    features = list(csv.DictReader(files["features_final"].open()))
    assert len(features) == 30 + 31 + 31 and {r["kind"] for r in features} == {"real", "noise", "action"}
    final = json.loads(files["connectivity_final"].read_text())
    assert final["env_step"] == 400 and final["networks"]["actor"]["n_real"] == 3
    assert result["final"]["qf0"]["sparse"] and 0 < result["final"]["qf0"]["real_share"] < 1
    events = list(Path(result["tensorboard"]).glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 10_000  # scalars and images


def test_tensorboard_events_are_replaced_not_added(tmp_path: Path) -> None:
    from sparse_rl.analysis.tb_export import write_tensorboard

    series = synthetic_series(n_obs=10, n_real=2, n_steps=3)
    write_tensorboard(tmp_path, series)
    write_tensorboard(tmp_path, series, final={"actor": {"real_share": 0.5}}, final_step=300)
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1


def test_analyze_a_dense_run_reports_strength_only(dense_run: Path, tmp_path: Path) -> None:
    result = analyze_run(dense_run, out_dir=tmp_path, tensorboard=False, gif=False)
    assert "in_degree_final" not in result["files"] and "strength_final" in result["files"]
    actor = result["final"]["actor"]
    assert not actor["sparse"] and actor["real_share"] is None and actor["strength_real_share"] is not None
    assert result["tensorboard"] is None and not (dense_run / "tb").exists()


def test_a_run_without_snapshots_gets_the_final_plots(sparse_run: Path, tmp_path: Path) -> None:
    old = tmp_path / "old_run"
    old.mkdir()
    shutil.copy(sparse_run / "model.zip", old / "model.zip")
    shutil.copy(sparse_run / "config.yaml", old / "config.yaml")
    result = analyze_run(old, tensorboard=False)
    assert set(result["files"]) == {"in_degree_final", "strength_final", "features_final", "connectivity_final",
                                    "summary"}
    assert Path(result["out_dir"]) == old / "plots"
    assert result["final"]["actor"]["n_real"] == 3  # the real features, from the env the config describes


def test_not_a_run_dir(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        analyze_run(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        analyze_run(tmp_path / "file.txt")
    with pytest.raises(ValueError, match="not a run directory"):
        analyze_run(tmp_path)
    (tmp_path / "metrics.csv").write_text("")
    with pytest.raises(ValueError, match="neither a model"):
        analyze_run(tmp_path)


def test_compare_a_sparse_and_a_dense_run(sparse_run: Path, dense_run: Path, tmp_path: Path) -> None:
    path = compare_runs([sparse_run, dense_run], tmp_path / "comparison.png", labels=["ANF", "dense"])
    with Image.open(path) as image:
        assert image.format == "PNG"


def test_the_script(sparse_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = load_script("analyze")
    killed = tmp_path / "killed"  # a run killed before it saved a model: snapshots only
    shutil.copytree(sparse_run / "connectivity", killed / "connectivity")
    assert script.main([str(killed), "--out", str(tmp_path / "out"), "--no-gif", "--no-tensorboard"]) == 0
    assert "real_share" in capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["final_source"] == "last snapshot" and summary["final_step"] == 400
    assert script.main([str(tmp_path / "nowhere")]) == 2
