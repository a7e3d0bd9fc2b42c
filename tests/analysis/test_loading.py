"""``load_run`` reads a run directory once: its config, its snapshots and its model each once, its
env only when the snapshots leave the real features unknown; ``analyze_run`` loads and computes once."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sparse_rl._util.rundir import RunDir
from sparse_rl.analysis import compute, loading, report, snapshots
from sparse_rl.analysis.loading import load_run


def _count(monkeypatch: pytest.MonkeyPatch, calls: Counter[str], owner: Any, name: str) -> None:
    """Count the calls of ``owner.name`` in ``calls[name]`` (the function still runs)."""
    original: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The reads of a run directory, counted: config, snapshot directory and files, model, env;
    and ``analyze_run``'s steps: load, compute."""
    calls: Counter[str] = Counter()
    _count(monkeypatch, calls, RunDir, "config_data")
    _count(monkeypatch, calls, loading, "load_snapshots")
    _count(monkeypatch, calls, snapshots, "read_snapshot")
    _count(monkeypatch, calls, loading, "load_agent")
    _count(monkeypatch, calls, loading, "make_env")
    _count(monkeypatch, calls, report, "load_run")
    _count(monkeypatch, calls, report, "compute")
    return calls


def test_analyze_reads_a_run_once(sparse_run: Path, tmp_path: Path, reads: Counter[str]) -> None:
    result = analyze_run_quietly(sparse_run, tmp_path)
    n_files = len(snapshots.snapshot_files(sparse_run / "connectivity"))
    assert result["snapshots"] == n_files == 7
    # the snapshots know the real features: the env is not rebuilt
    assert dict(reads) == {"load_run": 1, "compute": 1, "config_data": 1, "load_snapshots": 1,
                           "read_snapshot": n_files, "load_agent": 1}


def test_a_run_without_snapshots_rebuilds_its_env_once(sparse_run: Path, tmp_path: Path,
                                                        reads: Counter[str]) -> None:
    old = tmp_path / "old_run"
    old.mkdir()
    shutil.copy(sparse_run / "model.zip", old / "model.zip")
    shutil.copy(sparse_run / "config.yaml", old / "config.yaml")
    result = analyze_run_quietly(old, tmp_path / "out")
    assert result["final"]["actor"]["n_real"] == 3
    assert dict(reads) == {"load_run": 1, "compute": 1, "config_data": 1, "load_snapshots": 1, "load_agent": 1,
                           "make_env": 1}


def test_load_run_holds_what_the_analysis_needs(sparse_run: Path) -> None:
    run = load_run(sparse_run)
    assert run.path == sparse_run and run.name == "anf" and run.config["agent"] == {"algorithm": "sac"}
    assert len(run.series) == 7 and run.permute_at_step is None and run.env_features is None
    assert run.model is not None and run.model.env_step == 400 and run.model.source.endswith("model.zip")
    assert set(run.model.networks) == {"actor", "qf0", "qf1"}
    assert all(conn.real_mask is None for conn in run.model.networks.values())  # judged by compute, not here


def test_load_run_without_the_model_reads_neither_model_nor_env(sparse_run: Path, reads: Counter[str]) -> None:
    run = load_run(sparse_run, final_model=False)
    assert run.model is None and run.env_features is None and len(run.series) == 7
    assert "load_agent" not in reads and "make_env" not in reads


def test_the_env_features_of_a_permuted_run(tmp_path: Path) -> None:
    config = {"env": {"id": "Pendulum-v1", "noise_fraction": 0.5, "permute_at_step": 100, "permutation_seed": 3}}
    features = loading.read_env_features(config, permute_at=100)
    assert features is not None and features.real_mask.sum() == 3 and features.real_mask.size == 6
    assert features.permutation is not None and sorted(features.permutation) == list(range(6))
    unpermuted = loading.read_env_features({"env": {"id": "Pendulum-v1", "noise_fraction": 0.5}})
    assert unpermuted is not None and unpermuted.permutation is None
    np.testing.assert_array_equal(unpermuted.real_mask, features.real_mask)
    assert loading.read_env_features({}) is None


def test_compute_is_given_the_loaded_run(sparse_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(report, "compute", lambda run: seen.append(run) or compute.compute(run))
    analyze_run_quietly(sparse_run, sparse_run.parent / "analysis_out")
    assert len(seen) == 1 and isinstance(seen[0], loading.LoadedRun)


def analyze_run_quietly(run_dir: Path, out: Path) -> dict[str, Any]:
    """``analyze_run`` without TensorBoard and GIF (the slow parts, not what these tests are about)."""
    return report.analyze_run(run_dir, out_dir=out, tensorboard=False, gif=False)
