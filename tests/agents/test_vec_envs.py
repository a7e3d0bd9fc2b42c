"""SparseSAC / SparseTD3 on SB3's vectorized envs: several envs, in this process or in subprocesses,
plain and extremely noisy (whose replay buffer rebuilds the noise from streams read out of the
worker processes)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from sparse_rl.agents import SparseSAC, SparseTD3
from sparse_rl.agents.buffers import NoiseFreeReplayBuffer
from sparse_rl.envs import make_env

ENV = {"id": "Pendulum-v1", "make_kwargs": {"max_episode_steps": 20}}


def _vec_env(kind: str, noise_fraction: float, n_envs: int = 2, seed: int = 3) -> Any:
    config = {**ENV, "noise_fraction": noise_fraction}
    factories = [(lambda i=i: Monitor(make_env(config, seed=seed + i))) for i in range(n_envs)]
    env = (SubprocVecEnv if kind == "subproc" else DummyVecEnv)(factories)
    env.seed(seed)
    return env


@pytest.mark.parametrize("kind", ["dummy", "subproc"])
@pytest.mark.parametrize("agent", [SparseSAC, SparseTD3])
@pytest.mark.parametrize("noise_fraction", [0.0, 0.8])
def test_agents_train_on_several_envs(kind: str, agent: type, noise_fraction: float) -> None:
    env = _vec_env(kind, noise_fraction)
    try:
        model = agent("MlpPolicy", env, learning_starts=20, batch_size=16, buffer_size=500, seed=0,
                      policy_kwargs={"net_arch": [16, 16]}, sparsity={"preset": "anf", "update_interval": 5})
        model.learn(60)
        assert model.num_timesteps == 60 and model.n_envs == 2
        assert isinstance(model.replay_buffer, NoiseFreeReplayBuffer) == (noise_fraction > 0)
        batch = model.replay_buffer.sample(8)
        assert batch.observations.shape == (8, env.observation_space.shape[0])
        assert set(model.input_real_shares()) == ({"actor", "qf0", "qf1"} if noise_fraction else set())
    finally:
        env.close()


def test_noise_rebuilt_from_worker_processes_is_what_the_agent_saw() -> None:
    """The same seeded warm-up in subprocesses with the noise-free buffer and in this process with
    SB3's buffer (which stores every observation): the rebuilt observations are the stored ones."""
    buffers = {}
    for kind, store_noise in (("subproc", False), ("dummy", True)):
        env = _vec_env(kind, 0.9)
        try:
            model = SparseSAC("MlpPolicy", env, learning_starts=1000, buffer_size=200, seed=0, store_noise=store_noise,
                              policy_kwargs={"net_arch": [8]})
            model.learn(50)
            buffers[kind] = model.replay_buffer
        finally:
            env.close()
    noise_free, stored = buffers["subproc"], buffers["dummy"]
    assert isinstance(noise_free, NoiseFreeReplayBuffer) and not isinstance(stored, NoiseFreeReplayBuffer)
    positions = np.arange(stored.pos)
    for env_index in range(2):
        rows = np.full(len(positions), env_index)
        next_index = noise_free.noise_index[positions, env_index]
        rebuilt = noise_free.rebuild(noise_free.next_observations[positions, env_index], next_index, rows,
                                     noise_free.next_obs_permuted[positions, env_index])
        np.testing.assert_array_equal(rebuilt, stored.next_observations[positions, env_index])
        rebuilt = noise_free.rebuild(noise_free.observations[positions, env_index], next_index - np.uint64(1), rows,
                                     noise_free.obs_permuted[positions, env_index])
        np.testing.assert_array_equal(rebuilt, stored.observations[positions, env_index])
