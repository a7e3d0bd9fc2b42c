"""Fixtures of the analysis tests: tiny real runs in fake run directories, and synthetic series."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from sparse_rl.analysis.metrics import FeatureConnectivity
from sparse_rl.analysis.snapshots import ConnectivitySeries, ConnectivitySnapshot

ENV = {"id": "Pendulum-v1", "noise_fraction": 0.9}  # 3 real + 27 noise features
TINY: dict[str, Any] = dict(learning_starts=100, policy_kwargs={"net_arch": [32, 32]}, batch_size=32, seed=0,
                            device="cpu")


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Train with one torch thread: on a busy 2-core machine, more threads slow SB3 down badly."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_run(run_dir: Path, sparsity: Any, steps: int, every_n_steps: int | None = None,
             env: dict[str, Any] | None = None) -> Path:
    """Train a tiny SparseSAC with the snapshot callback into a fake run directory (config.yaml,
    connectivity/, model.zip) and return it."""
    from sparse_rl.agents import SparseSAC
    from sparse_rl.analysis.snapshot_callback import ConnectivitySnapshotCallback
    from sparse_rl.envs import make_env

    env_config = dict(env or ENV)
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(
        {"env": env_config, "agent": {"algorithm": "sac"}, "sparsity": sparsity, "seed": 0}))
    torch.manual_seed(0)
    model = SparseSAC("MlpPolicy", make_env(env_config, seed=0), sparsity=sparsity, **TINY)
    model.learn(steps, callback=ConnectivitySnapshotCallback(run_dir / "connectivity", every_n_steps=every_n_steps))
    model.save(run_dir / "model.zip")
    return run_dir


@pytest.fixture(scope="session")
def sparse_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ANF-SAC, topology update every 50 gradient steps, 400 env steps (updates at 150…400)."""
    return make_run(tmp_path_factory.mktemp("runs") / "anf", {"preset": "anf", "update_interval": 50}, 400)


@pytest.fixture(scope="session")
def dense_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Dense SAC with a snapshot every 100 env steps, 300 env steps."""
    return make_run(tmp_path_factory.mktemp("runs") / "dense", "dense", 300, every_n_steps=100)


def synthetic_series(n_obs: int = 1700, n_real: int = 17, n_steps: int = 12, permute_at: int | None = 6,
                     out: int = 64, seed: int = 0) -> ConnectivitySeries:
    """Snapshots of an actor and a critic whose real features gain in-degree over time; with
    ``permute_at`` (a snapshot index) the real features move to other columns from then on."""
    rng = np.random.default_rng(seed)
    real = np.zeros(n_obs, dtype=bool)
    real[:n_real] = True
    permuted_real = real[rng.permutation(n_obs)]
    snapshots = []
    for t in range(n_steps):
        permuted = permute_at is not None and t >= permute_at
        mask = permuted_real if permuted else real
        networks = {}
        for name, n_inputs in (("actor", n_obs), ("qf0", n_obs + 2)):
            degree = rng.integers(5, 15, n_inputs)
            degree[:n_obs][mask] += 3 * t
            networks[name] = FeatureConnectivity(name, degree.astype(np.float32) * 0.1, degree, out, n_obs, mask)
        snapshots.append(ConnectivitySnapshot(env_step=100 * t, gradient_step=100 * t, networks=networks,
                                              real_mask=mask, permuted=permuted,
                                              permuted_at_step=100 * permute_at if permuted and permute_at else None))
    return ConnectivitySeries(snapshots)
