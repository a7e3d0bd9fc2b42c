"""RunDir: the one owner of a run directory's layout and of its checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparse_rl._util.errors import UserError
from sparse_rl._util.rundir import CheckpointError, NotARunDir, RunDir


def test_paths_and_markers(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.config == tmp_path / "config.yaml" and run.metrics == tmp_path / "metrics.csv"
    assert run.final_model.name == "model.zip" and run.best_model.name == "best_model.zip"
    assert run.checkpoints.name == "checkpoints" and run.connectivity.name == "connectivity"
    assert run.plots.name == "plots" and run.topology.name == "topology.csv"
    with pytest.raises(NotARunDir, match="holds none of"):
        RunDir.find(tmp_path)
    with pytest.raises(NotARunDir, match="has no config.yaml"):
        RunDir.require(tmp_path)
    with pytest.raises(NotARunDir, match="does not exist"):
        RunDir.find(tmp_path / "missing")
    (tmp_path / "metrics.csv").write_text("timesteps,eval_return_mean\n100,-3.5\n")
    assert RunDir.find(tmp_path).metrics_rows() == [{"timesteps": "100", "eval_return_mean": "-3.5"}]
    assert issubclass(NotARunDir, UserError) and issubclass(NotARunDir, ValueError)


def test_find_model_verifies_the_checkpoint(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.find_model() is None
    step = tmp_path / "checkpoints" / "step_100"
    step.mkdir(parents=True)
    (step / "model.zip").write_bytes(b"not verified")
    with pytest.raises(CheckpointError, match="corrupt"):  # no manifest: analysis refuses it as resume does
        run.find_model()
    run.final_model.write_bytes(b"final")
    assert run.find_model() == run.final_model
