"""The runner's envs: every env of every run draws its own noise stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sparse_rl.envs.noise.streams import derive_noise_seed
from sparse_rl.experiment.config import load_config
from sparse_rl.experiment.factory import build_env

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _config(seed: int, n_envs: int = 1):
    return load_config([CONFIGS / "quick" / "pendulum_sac_anf.yaml"],
                       overrides=[f"seed={seed}", f"n_envs={n_envs}", "env.noise_fraction=0.9"])


def _noise_seeds(vec_env) -> list[int]:
    return [int(seed) for seed in vec_env.get_attr("noise_seed")]


def _first_noise(vec_env) -> np.ndarray:
    observations = vec_env.reset()
    return observations[:, 3:]


def test_training_envs_and_evaluation_env_never_share_noise_across_seeds() -> None:
    # Env i of seed s used to be env 0 of seed s + i, and the evaluation env of seed s the training
    # env of seed s + 10000: all are independent draws now.
    seed0 = build_env(_config(0, n_envs=2), 0, training=True)
    seed1 = build_env(_config(1), 1, training=True)
    config = _config(0)
    evaluation = build_env(config, config.eval_seed)
    seed10000 = build_env(_config(10_000), 10_000, training=True)
    seeds = _noise_seeds(seed0) + _noise_seeds(seed1) + _noise_seeds(evaluation) + _noise_seeds(seed10000)
    assert len(set(seeds)) == len(seeds) == 5
    assert _noise_seeds(seed0) == [derive_noise_seed(0, "train", 0), derive_noise_seed(0, "train", 1)]
    assert _noise_seeds(evaluation) == [derive_noise_seed(config.eval_seed, "eval", 0)]
    assert not np.array_equal(_first_noise(seed0)[1], _first_noise(seed1)[0])
    assert not np.array_equal(_first_noise(evaluation)[0], _first_noise(seed10000)[0])
    # and the same run builds the same noise again
    assert _noise_seeds(build_env(_config(0, n_envs=2), 0, training=True)) == _noise_seeds(seed0)


def test_derive_noise_seed_checks_its_role() -> None:
    assert derive_noise_seed(5) != derive_noise_seed(5, "train", 0) != derive_noise_seed(5, "eval", 0)
    with pytest.raises(ValueError, match="unknown noise role 'test'"):
        derive_noise_seed(5, "test")
