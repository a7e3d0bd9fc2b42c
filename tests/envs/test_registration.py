"""The extremely noisy environments as Gymnasium ids (issue 24, item 13): made from a fresh
interpreter as another library would, with nothing of sparse_rl imported first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]

FRESH = """
import sys
import gymnasium as gym
import numpy as np

assert "sparse_rl" not in sys.modules
env = gym.make("sparse_rl.envs:ENE-{env_id}", noise_fraction=0.98)
obs, info = env.reset(seed=3)
first = obs
mask = env.get_wrapper_attr("real_feature_mask")
assert obs.shape == env.observation_space.shape == ({inputs},), obs.shape
assert mask.dtype == bool and int(mask.sum()) == {real} and mask[:{real}].all()
for _ in range(5):
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
assert obs.shape == ({inputs},) and "noise_index" in info
again = gym.make("ENE-{env_id}", noise_fraction=0.98)
assert np.array_equal(again.reset(seed=3)[0], first)  # the seed fixes the noise
print("ok", env.spec.id, env.spec.max_episode_steps)
"""


@pytest.mark.parametrize(("env_id", "real", "inputs"), [("Pendulum-v1", 3, 150), ("HalfCheetah-v5", 17, 850)])
def test_an_ene_id_is_made_and_stepped_from_a_fresh_interpreter(env_id: str, real: int, inputs: int,
                                                                tmp_path: Path) -> None:
    if env_id.startswith("HalfCheetah"):
        pytest.importorskip("mujoco")
    import os

    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", FRESH.format(env_id=env_id, real=real, inputs=inputs)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"ok ENE-{env_id} " in done.stdout


def test_ene_ids_take_the_noise_settings_and_refuse_bad_ones() -> None:
    from sparse_rl.envs import register_ene_env

    assert register_ene_env("Pendulum-v1") == "ENE-Pendulum-v1"
    env = gym.make("ENE-Pendulum-v1", n_noise=7, noise_distribution="uniform", max_episode_steps=4)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (10,) and env.get_wrapper_attr("real_feature_mask").sum() == 3
    steps = 0
    truncated = terminated = False
    while not (truncated or terminated):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
    assert steps == 4
    assert gym.make("ENE-Pendulum-v1").observation_space.shape == (150,)  # the default noise fraction 0.98
    with pytest.raises(ValueError, match="noise_fraction"):
        gym.make("ENE-Pendulum-v1", noise_fraction=1.5)
    assert np.isfinite(gym.make("ENE-Pendulum-v1", noise_fraction=0.5).reset(seed=1)[0]).all()


def test_sb3_trains_on_an_ene_id_given_as_a_string() -> None:
    from stable_baselines3 import SAC

    model = SAC("MlpPolicy", "sparse_rl.envs:ENE-Pendulum-v1", learning_starts=10, batch_size=8, buffer_size=100,
                policy_kwargs={"net_arch": [8]}, seed=0)
    model.learn(20)
    assert model.observation_space.shape == (150,)
