"""Snapshot files, series, and the snapshot callback on tiny real runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sparse_rl.analysis.metrics import FeatureConnectivity
from sparse_rl.analysis.snapshot_callback import ConnectivitySnapshotCallback
from sparse_rl.analysis.snapshots import (
    ConnectivitySeries,
    ConnectivitySnapshot,
    delete_snapshots_after,
    load_snapshots,
    read_snapshot,
    snapshot_files,
    snapshot_path,
    write_snapshot,
)

from .conftest import ENV, TINY, make_run, synthetic_series


def _snapshot(step: int, real: np.ndarray | None = None, permuted: bool = False) -> ConnectivitySnapshot:
    sparse = FeatureConnectivity("actor", np.array([1.5, 0.0, 2.0], dtype=np.float32), np.array([2, 0, 3]), 4, 3, real)
    dense = FeatureConnectivity("qf0", np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32), None, 4, 3, real)
    return ConnectivitySnapshot(step, step // 2, {"actor": sparse, "qf0": dense}, real, permuted,
                                100 if permuted else None, "update", step // 2)


def test_write_read_roundtrip(tmp_path: Path) -> None:
    real = np.array([True, False, True])
    path = write_snapshot(tmp_path, _snapshot(250, real, permuted=True))
    assert path == snapshot_path(tmp_path, 250) and path.name == "snapshot_0000000250.npz"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    snap = read_snapshot(path)
    assert (snap.env_step, snap.gradient_step, snap.topology_step, snap.kind) == (250, 125, 125, "update")
    assert snap.permuted and snap.permuted_at_step == 100
    np.testing.assert_array_equal(snap.real_mask, real)
    np.testing.assert_array_equal(snap.networks["actor"].in_degree, [2, 0, 3])
    assert snap.networks["qf0"].in_degree is None and snap.networks["qf0"].n_actions == 1
    assert snap.networks["actor"].real_share() == pytest.approx(1.0)
    unknown = read_snapshot(write_snapshot(tmp_path, _snapshot(300)))
    assert unknown.real_mask is None and unknown.permuted_at_step is None


def test_load_skips_unreadable_files_and_sorts(tmp_path: Path) -> None:
    for step in (300, 0, 100):
        write_snapshot(tmp_path, _snapshot(step))
    snapshot_path(tmp_path, 200).write_bytes(b"not a zip")
    (tmp_path / "notes.txt").write_text("ignored")
    with pytest.warns(UserWarning, match="snapshot_0000000200"):
        series = load_snapshots(tmp_path)
    np.testing.assert_array_equal(series.env_steps, [0, 100, 300])
    assert series.matrix("actor").shape == (3, 3) and not series.is_sparse("qf0")
    with pytest.raises(ValueError, match="dense"):
        series.matrix("qf0", "in_degree")
    assert len(load_snapshots(tmp_path / "missing")) == 0


def test_delete_after_keeps_the_history_up_to_a_step(tmp_path: Path) -> None:
    for step in (0, 100, 200, 300):
        write_snapshot(tmp_path, _snapshot(step))
    removed = delete_snapshots_after(tmp_path, 150)
    assert sorted(p.name for p in removed) == ["snapshot_0000000200.npz", "snapshot_0000000300.npz"]
    assert [p.name for p in snapshot_files(tmp_path)] == ["snapshot_0000000000.npz", "snapshot_0000000100.npz"]


def test_permutation_step_of_a_series() -> None:
    assert synthetic_series(n_obs=20, n_real=2, permute_at=4).permutation_step() == 400
    assert synthetic_series(n_obs=20, n_real=2, permute_at=None).permutation_step() is None
    assert synthetic_series(n_obs=20, n_real=2, permute_at=0).permutation_step() is None  # permuted from the start
    series = synthetic_series(n_obs=20, n_real=2, permute_at=4)
    unrecorded = ConnectivitySeries([ConnectivitySnapshot(s.env_step, s.gradient_step, s.networks, s.real_mask,
                                                          s.permuted, None) for s in series.snapshots])
    assert unrecorded.permutation_step() == 400  # the first permuted snapshot


def test_callback_writes_one_snapshot_per_topology_update(sparse_run: Path) -> None:
    series = load_snapshots(sparse_run / "connectivity")
    # start at 0; learning starts at 100, an update every 50 gradient steps: env steps 150, 200, … 400
    np.testing.assert_array_equal(series.env_steps, [0, 150, 200, 250, 300, 350, 400])
    np.testing.assert_array_equal(series.gradient_steps, [0, 50, 100, 150, 200, 250, 300])
    assert [s.kind for s in series.snapshots] == ["start"] + ["update"] * 6
    assert [s.topology_step for s in series.snapshots[1:]] == [50, 100, 150, 200, 250, 300]
    assert series.networks == ["actor", "qf0", "qf1"]
    for name in series.networks:
        degrees = series.matrix(name)
        assert len(set(degrees.sum(axis=1).tolist())) == 1  # density constant
        assert not np.array_equal(degrees[0], degrees[-1])  # the topology moved
    real = series.real_masks()
    assert real is not None and real.shape == (7, 30) and real[:, :3].all() and not real[:, 3:].any()


def test_last_snapshot_matches_the_saved_model(sparse_run: Path) -> None:
    from sparse_rl.analysis.loading import model_connectivity

    last = load_snapshots(sparse_run / "connectivity").snapshots[-1]
    final = model_connectivity(sparse_run / "model.zip", algorithm="sac")
    for name, conn in final.items():
        np.testing.assert_array_equal(conn.in_degree, last.networks[name].in_degree)
        np.testing.assert_allclose(conn.strength, last.networks[name].strength, rtol=1e-6)


def test_resumed_run_drops_the_abandoned_snapshots(tmp_path: Path) -> None:
    from sparse_rl.agents import SparseSAC
    from sparse_rl.envs import make_env

    directory = tmp_path / "connectivity"
    model = SparseSAC("MlpPolicy", make_env(ENV, seed=0), sparsity={"preset": "anf", "update_interval": 50}, **TINY)
    model.learn(200, callback=ConnectivitySnapshotCallback(directory))
    for step in (250, 900):  # left by a run that went on and was killed; we resume from step 200
        write_snapshot(directory, _snapshot(step))
    callback = ConnectivitySnapshotCallback(directory)
    model.learn(100, callback=callback, reset_num_timesteps=False)
    series = load_snapshots(directory)
    np.testing.assert_array_equal(series.env_steps, [0, 150, 200, 250, 300])
    assert series.snapshots[2].kind == "start" and series.snapshots[3].networks["actor"].n_inputs == 30
    assert len(model._topology_listeners) == 2  # one per callback; a callback registers once per model


def test_dense_agent_snapshots_every_n_steps(dense_run: Path) -> None:
    series = load_snapshots(dense_run / "connectivity")
    np.testing.assert_array_equal(series.env_steps, [0, 100, 200, 300])
    assert [s.kind for s in series.snapshots] == ["start", "periodic", "periodic", "periodic"]
    assert not any(series.is_sparse(name) for name in series.networks)
    assert series.snapshots[-1].networks["actor"].summary()["strength_real_share"] is not None


def test_permuted_run_records_the_mask_in_force(tmp_path: Path) -> None:
    run = make_run(tmp_path / "perm", {"preset": "anf", "update_interval": 50}, 300,
                   env={**ENV, "permute_at_step": 220, "permutation_seed": 3})
    series = load_snapshots(run / "connectivity")
    assert [s.permuted for s in series.snapshots] == [s.env_step >= 220 for s in series.snapshots]
    assert series.permutation_step() == 220
    masks = series.real_masks()
    assert masks is not None and masks[0, :3].all() and masks.sum(axis=1).tolist() == [3] * len(series)
    assert not masks[-1, :3].all()  # the real features moved
