"""NoisyObservation (ENE) and FeaturePermutation (transfer)."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from sparse_rl.envs import (
    FeaturePermutation,
    NoisyObservation,
    UniformNoise,
    derive_noise_seed,
    noise_feature_count,
    real_feature_mask,
)


def pendulum(**kwargs: Any) -> gym.Env:
    return gym.make("Pendulum-v1", **kwargs)


def rollout(env: gym.Env, n_steps: int, seed: int = 0, action_seed: int = 0) -> tuple[list, list]:
    """Observations and infos of one seeded reset followed by ``n_steps`` steps (resetting, unseeded,
    at episode ends); the actions come from their own seeded generator."""
    actions = np.random.default_rng(action_seed)
    obs, info = env.reset(seed=seed)
    observations, infos = [obs], [info]
    for _ in range(n_steps):
        action = actions.uniform(env.action_space.low, env.action_space.high).astype(env.action_space.dtype)
        obs, _, terminated, truncated, info = env.step(action)
        observations.append(obs)
        infos.append(info)
        if terminated or truncated:
            obs, info = env.reset()
            observations.append(obs)
            infos.append(info)
    return observations, infos


class GridObsEnv(gym.Env):
    """A tiny env with a 2-D Box observation space."""

    observation_space = spaces.Box(-1.0, 1.0, shape=(2, 2), dtype=np.float32)
    action_space = spaces.Discrete(2)


# --------------------------------------------------------------------------------------------------
# sizes


@pytest.mark.parametrize(
    ("noise_fraction", "total"), [(0.0, 17), (0.8, 85), (0.9, 170), (0.95, 340), (0.98, 850), (0.99, 1700)]
)
def test_noise_feature_count_halfcheetah(noise_fraction: float, total: int) -> None:
    assert 17 + noise_feature_count(17, noise_fraction) == total


@pytest.mark.parametrize(
    ("n_real", "noise_fraction", "total"),
    [(17, 0.8, 86), (17, 0.9, 171), (17, 0.95, 340), (17, 0.98, 850), (17, 0.99, 1700), (9, 0.8, 46), (11, 0.9, 111)],
)
def test_float_count_rule_is_grooten_et_als_arithmetic(n_real: int, noise_fraction: float, total: int) -> None:
    # Their code: int(np.ceil(state_dim / (1 - fake_features))), in floating point.
    assert total == int(np.ceil(n_real / (1 - noise_fraction)))
    assert n_real + noise_feature_count(n_real, noise_fraction, count_rule="float") == total
    env = NoisyObservation(gym.make("Pendulum-v1"), noise_fraction=0.9, count_rule="float")
    assert env.observation_space.shape == (31,)  # 3 / 0.1 = 30.000000000000004 in floats
    assert NoisyObservation(gym.make("Pendulum-v1"), noise_fraction=0.9).observation_space.shape == (30,)
    with pytest.raises(ValueError, match="unknown count_rule 'round'"):
        noise_feature_count(17, 0.9, count_rule="round")


def test_noise_feature_count_is_the_smallest_total_reaching_the_fraction() -> None:
    for n_real in range(1, 40):
        for f in (0.1, 0.25, 1 / 3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999):
            exact = Fraction(repr(f))
            n_noise = noise_feature_count(n_real, f)
            total = n_real + n_noise
            assert Fraction(n_noise, total) >= exact
            assert Fraction(n_noise - 1, total - 1) < exact


def test_halfcheetah_space_at_f099() -> None:
    env = NoisyObservation(gym.make("HalfCheetah-v5"), noise_fraction=0.99, seed=0)
    space = env.observation_space
    assert space.shape == (1700,) and space.dtype == np.float32
    assert (env.n_real, env.n_noise) == (17, 1683)
    assert env.noise_fraction == pytest.approx(0.99)
    assert env.real_feature_mask.sum() == 17 and env.real_feature_mask[:17].all()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (1700,) and obs.dtype == np.float32
    obs, *_ = env.step(env.action_space.sample())
    assert obs.shape == (1700,) and obs.dtype == np.float32


def test_space_bounds_and_dtypes() -> None:
    inner = pendulum()
    env = NoisyObservation(inner, n_noise=5, seed=0)
    space = env.observation_space
    assert space.shape == (8,) and space.dtype == np.float32
    np.testing.assert_array_equal(space.low[:3], inner.observation_space.low)
    np.testing.assert_array_equal(space.high[:3], inner.observation_space.high)
    assert np.all(np.isneginf(space.low[3:])) and np.all(np.isposinf(space.high[3:]))
    uniform = NoisyObservation(
        pendulum(), n_noise=5, distribution="uniform", noise_kwargs={"low": 0, "high": 2}, seed=0
    )
    np.testing.assert_array_equal(uniform.observation_space.low[3:], 0.0)
    np.testing.assert_array_equal(uniform.observation_space.high[3:], 2.0)
    observations, _ = rollout(uniform, 20)
    assert all(uniform.observation_space.contains(obs) for obs in observations)


def test_zero_noise_is_the_real_observation_as_float32() -> None:
    env = NoisyObservation(gym.make("HalfCheetah-v5"), noise_fraction=0.0, seed=0)
    assert env.observation_space.shape == (17,) and env.n_noise == 0 and env.noise_fraction == 0.0
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and info["noise_index"] == 0
    raw_obs, _ = gym.make("HalfCheetah-v5").reset(seed=0)
    np.testing.assert_array_equal(obs, raw_obs.astype(np.float32))


# --------------------------------------------------------------------------------------------------
# contents


def test_real_part_equals_inner_observation() -> None:
    env = NoisyObservation(pendulum(max_episode_steps=10), noise_fraction=0.9, seed=1)
    noisy, _ = rollout(env, 25, seed=3)
    real, _ = rollout(pendulum(max_episode_steps=10), 25, seed=3)
    assert len(noisy) == len(real) == 28  # two resets in between
    for obs, raw in zip(noisy, real):
        np.testing.assert_array_equal(obs[:3], raw.astype(np.float32))
        np.testing.assert_array_equal(obs[env.real_feature_mask], raw.astype(np.float32))


@pytest.mark.parametrize(
    ("distribution", "kwargs", "mean", "std"),
    [("normal", {}, 0.0, 1.0), ("normal", {"std": 0.3}, 0.0, 0.3), ("uniform", {}, 0.0, 1 / math.sqrt(3))],
)
def test_noise_statistics(distribution: str, kwargs: dict, mean: float, std: float) -> None:
    env = NoisyObservation(pendulum(), n_noise=2000, distribution=distribution, noise_kwargs=kwargs, seed=0)
    observations, _ = rollout(env, 49)
    noise = np.stack(observations)[:, 3:]  # 50 x 2000 samples
    assert abs(noise.mean()) < 0.01 + 0.01 * std
    assert noise.std() == pytest.approx(std, rel=0.01)
    # the noise of different observations is uncorrelated
    assert np.abs(np.corrcoef(noise)[np.triu_indices(50, 1)]).max() < 0.15


def test_noise_for_index_reproduces_every_emitted_observation() -> None:
    env = NoisyObservation(pendulum(max_episode_steps=4), n_noise=64, seed=7)
    assert env.observation_index == -1
    observations, infos = rollout(env, 10, seed=0)
    indices = [info["noise_index"] for info in infos]
    assert indices == list(range(len(observations)))  # global: not restarted by the resets
    assert env.observation_index == indices[-1]
    for k, obs in zip(indices, observations):
        np.testing.assert_array_equal(env.noise_for_index(k), obs[3:])
    np.testing.assert_array_equal(env.noise_for_indices(indices), np.stack(observations)[:, 3:])
    # a later seeded reset continues the count and keeps the noise seed
    seed_before = env.noise_seed
    obs, info = env.reset(seed=123)
    assert info["noise_index"] == indices[-1] + 1 and env.noise_seed == seed_before
    np.testing.assert_array_equal(env.noise_for_index(info["noise_index"]), obs[3:])


def test_noise_for_index_needs_a_fixed_seed() -> None:
    env = NoisyObservation(pendulum(), n_noise=4)
    assert env.noise_seed is None
    with pytest.raises(RuntimeError, match="noise seed is not fixed yet"):
        env.noise_for_index(0)


# --------------------------------------------------------------------------------------------------
# seeding


def test_same_seed_same_sequence_different_seed_different() -> None:
    def run(noise_seed: int | None, env_seed: int = 0) -> np.ndarray:
        env = NoisyObservation(pendulum(max_episode_steps=5), n_noise=20, seed=noise_seed)
        return np.stack(rollout(env, 12, seed=env_seed)[0])

    np.testing.assert_array_equal(run(1), run(1))
    other = run(2)
    assert not np.array_equal(run(1)[:, 3:], other[:, 3:])
    np.testing.assert_array_equal(run(1)[:, :3], other[:, :3])  # the real features do not depend on it


def test_noise_seed_derived_from_first_seeded_reset() -> None:
    env = NoisyObservation(pendulum(), n_noise=20)
    obs, _ = env.reset(seed=5)
    assert env.noise_seed == derive_noise_seed(5)
    explicit = NoisyObservation(pendulum(), n_noise=20, seed=derive_noise_seed(5))
    np.testing.assert_array_equal(obs, explicit.reset(seed=5)[0])
    # derived, not the env seed itself: differs from a wrapper seeded with 5
    assert not np.array_equal(obs[3:], NoisyObservation(pendulum(), n_noise=20, seed=5).reset(seed=5)[0][3:])
    # and the same every time
    np.testing.assert_array_equal(obs, NoisyObservation(pendulum(), n_noise=20).reset(seed=5)[0])


def test_unseeded_noise_is_random() -> None:
    a = NoisyObservation(pendulum(), n_noise=20)
    b = NoisyObservation(pendulum(), n_noise=20)
    obs_a, obs_b = a.reset()[0], b.reset()[0]
    assert a.noise_seed is not None and a.noise_seed != b.noise_seed
    assert not np.array_equal(obs_a[3:], obs_b[3:])


# --------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({}, r"exactly one of noise_fraction and n_noise, got noise_fraction=None, n_noise=None"),
        ({"noise_fraction": 0.5, "n_noise": 3}, r"exactly one of noise_fraction and n_noise"),
        ({"noise_fraction": 1.0}, r"noise_fraction must be in \[0, 1\), got 1\.0"),
        ({"noise_fraction": 1.5}, r"noise_fraction must be in \[0, 1\), got 1\.5"),
        ({"noise_fraction": -0.1}, r"noise_fraction must be in \[0, 1\), got -0\.1"),
        ({"noise_fraction": "high"}, r"noise_fraction must be a number in \[0, 1\), got 'high'"),
        ({"n_noise": -1}, r"n_noise must be an integer >= 0, got -1"),
        ({"n_noise": 2.5}, r"n_noise must be an integer >= 0, got 2\.5"),
        ({"n_noise": 3, "seed": -1}, r"seed must be an integer >= 0, got -1"),
        ({"n_noise": 3, "distribution": "cauchy"}, r"unknown noise distribution 'cauchy'.*known: normal, uniform"),
        ({"n_noise": 3, "noise_kwargs": {"std": -2}}, r"std must be a finite number > 0, got -2"),
        ({"n_noise": 3, "distribution": UniformNoise(), "noise_kwargs": {"low": 0}}, r"either a name"),
    ],
)
def test_noisy_observation_rejects_bad_arguments(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        NoisyObservation(pendulum(), **kwargs)


def test_non_flat_box_spaces_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"NoisyObservation needs a 1-D gymnasium.spaces.Box.*got Discrete\(16\)"):
        NoisyObservation(gym.make("FrozenLake-v1"), noise_fraction=0.5)
    with pytest.raises(ValueError, match=r"needs a 1-D gymnasium.spaces.Box.*got a Box of shape \(2, 2\)"):
        NoisyObservation(GridObsEnv(), n_noise=2)
    with pytest.raises(ValueError, match=r"FeaturePermutation needs a 1-D gymnasium.spaces.Box.*Discrete"):
        FeaturePermutation(gym.make("FrozenLake-v1"), at_step=1)


# --------------------------------------------------------------------------------------------------
# FeaturePermutation


def chain(at_step: int | None, max_episode_steps: int = 200, perm_seed: int = 0) -> gym.Env:
    env = NoisyObservation(pendulum(max_episode_steps=max_episode_steps), n_noise=9, seed=3)
    return env if at_step is None else FeaturePermutation(env, at_step=at_step, seed=perm_seed)


def test_permutation_starts_at_the_documented_step() -> None:
    env = chain(at_step=3)
    twin = chain(at_step=None)
    inner_mask = twin.real_feature_mask
    np.testing.assert_array_equal(env.permutation, np.random.default_rng(0).permutation(12))
    assert not env.permuted and env.permuted_at_step is None

    obs, info = env.reset(seed=0)
    twin_obs, _ = twin.reset(seed=0)
    assert info["features_permuted"] is False
    np.testing.assert_array_equal(obs, twin_obs)
    np.testing.assert_array_equal(env.real_feature_mask, inner_mask)

    action = np.zeros(1, dtype=np.float32)
    for step in range(1, 6):
        obs, _, _, _, info = env.step(action)
        twin_obs, *_ = twin.step(action)
        expected_permuted = step >= 3
        assert info["features_permuted"] is expected_permuted and env.permuted is expected_permuted
        assert env.step_count == step
        if expected_permuted:
            np.testing.assert_array_equal(obs, twin_obs[env.permutation])
            np.testing.assert_array_equal(obs[env.inverse_permutation], twin_obs)
            np.testing.assert_array_equal(env.real_feature_mask, inner_mask[env.permutation])
        else:
            np.testing.assert_array_equal(obs, twin_obs)
            np.testing.assert_array_equal(env.real_feature_mask, inner_mask)
        # the mask always picks exactly the real features (in permuted order after the switch)
        real = twin_obs[:3]
        order = env.permutation[env.real_feature_mask] if expected_permuted else np.arange(3)
        np.testing.assert_array_equal(obs[env.real_feature_mask], real[order])
        np.testing.assert_array_equal(np.sort(obs[env.real_feature_mask]), np.sort(real))
    assert env.permuted_at_step == 3
    assert real_feature_mask(env) is env.real_feature_mask

    obs, info = env.reset(seed=1)  # resets after the switch are permuted too
    twin_obs, _ = twin.reset(seed=1)
    assert info["features_permuted"] is True
    np.testing.assert_array_equal(obs, twin_obs[env.permutation])


def test_step_count_runs_across_episodes() -> None:
    env = chain(at_step=3, max_episode_steps=2)
    observations, infos = rollout(env, 4)
    # reset, step 1, step 2 (truncated), reset, step 3, step 4 (truncated), reset
    flags = [info["features_permuted"] for info in infos]
    assert flags == [False, False, False, False, True, True, True]
    assert env.permuted_at_step == 3


def test_at_step_zero_permutes_from_the_first_reset() -> None:
    env = chain(at_step=0, perm_seed=5)
    assert env.permuted and env.permuted_at_step == 0
    obs, info = env.reset(seed=0)
    twin_obs, _ = chain(at_step=None).reset(seed=0)
    assert info["features_permuted"] is True
    np.testing.assert_array_equal(obs, twin_obs[np.random.default_rng(5).permutation(12)])


def test_permutation_without_inner_mask() -> None:
    env = FeaturePermutation(pendulum(), at_step=1, seed=2)
    assert real_feature_mask(pendulum()) is None
    np.testing.assert_array_equal(env.real_feature_mask, [True, True, True])
    env.reset(seed=0)
    env.step(np.zeros(1, dtype=np.float32))
    assert env.permuted
    np.testing.assert_array_equal(env.real_feature_mask, [True, True, True])
    assert env.observation_space.dtype == np.float32


def test_permuted_space_holds_both_phases() -> None:
    env = FeaturePermutation(NoisyObservation(pendulum(), n_noise=4, distribution="uniform", seed=0), at_step=4)
    observations, _ = rollout(env, 8)
    assert all(env.observation_space.contains(obs) for obs in observations)
    assert env.permuted


def test_different_permutation_seeds_differ() -> None:
    assert not np.array_equal(chain(at_step=0, perm_seed=0).permutation, chain(at_step=0, perm_seed=1).permutation)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"at_step": -1}, r"at_step must be an integer >= 0, got -1"),
        ({"at_step": 2.5}, r"at_step must be an integer >= 0, got 2\.5"),
        ({"at_step": True}, r"at_step must be an integer >= 0, got True"),
        ({"at_step": 1, "seed": -4}, r"seed must be an integer >= 0, got -4"),
    ],
)
def test_feature_permutation_rejects_bad_arguments(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        FeaturePermutation(pendulum(), **kwargs)


# --------------------------------------------------------------------------------------------------
# the wrapper chain and the env checkers


def test_real_feature_mask_through_other_wrappers() -> None:
    env = gym.wrappers.TimeLimit(NoisyObservation(pendulum(), n_noise=2, seed=0), max_episode_steps=10)
    np.testing.assert_array_equal(real_feature_mask(env), [True, True, True, False, False])
    assert real_feature_mask(gym.make("CartPole-v1")) is None


def test_env_checkers_pass() -> None:
    env = FeaturePermutation(NoisyObservation(pendulum(), noise_fraction=0.9, seed=0), at_step=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pendulum's non-normalized action space
        sb3_check_env(env, warn=True)
        sb3_check_env(NoisyObservation(gym.make("HalfCheetah-v5"), noise_fraction=0.99, seed=0), warn=True)
        gym_check_env(env.unwrapped, skip_render_check=True)


# --------------------------------------------------------------------------------------------------
# checkpoint state


def test_noisy_observation_state_dict_resumes_the_noise_stream() -> None:
    env = NoisyObservation(pendulum(), n_noise=5)  # no seed: fixed at random by the first reset
    env.reset()
    action = np.zeros(1, dtype=np.float32)
    for _ in range(4):
        env.step(action)
    state = env.state_dict()
    expected = [env.step(action)[0][3:] for _ in range(3)]

    restored = NoisyObservation(pendulum(), n_noise=5)
    restored.load_state_dict(state)
    restored.env.reset(seed=0)  # the inner env must be stepped; its real features do not matter here
    got = [restored.step(action)[0][3:] for _ in range(3)]
    np.testing.assert_array_equal(np.stack(got), np.stack(expected))
    assert restored.observation_index == env.observation_index


def test_noisy_observation_state_dict_rejects_a_bad_state() -> None:
    env = NoisyObservation(pendulum(), n_noise=2)
    with pytest.raises(ValueError, match="lacks"):
        env.load_state_dict({"index": 3})
    with pytest.raises(ValueError, match="index"):
        env.load_state_dict({"noise_seed": 1, "index": -5})


def test_feature_permutation_state_dict_round_trip() -> None:
    env = chain(at_step=3)
    env.reset(seed=0)
    action = np.zeros(1, dtype=np.float32)
    for _ in range(4):
        env.step(action)
    restored = chain(at_step=3)
    restored.load_state_dict(env.state_dict())
    assert restored.permuted and restored.permuted_at_step == 3 and restored.step_count == 4
    np.testing.assert_array_equal(restored.real_feature_mask, env.real_feature_mask)
    with pytest.raises(ValueError, match="lacks"):
        restored.load_state_dict({"permuted": True})


def test_noise_generator_choice() -> None:
    from sparse_rl.envs.noise import CounterNoise, IndexedNoise

    counter = NoisyObservation(pendulum(), n_noise=6, seed=4)
    philox = NoisyObservation(pendulum(), n_noise=6, seed=4, noise_generator="philox")
    assert isinstance(counter.noise_stream, CounterNoise) and counter.noise_generator == "counter"
    assert isinstance(philox.noise_stream, IndexedNoise)
    np.testing.assert_array_equal(philox.noise_for_index(3), IndexedNoise(philox.distribution, 6, 4)(3))
    np.testing.assert_array_equal(counter.noise_for_index(3), CounterNoise(counter.distribution, 6, 4)(3))
    obs, info = counter.reset(seed=0)
    np.testing.assert_array_equal(obs[3:], counter.noise_for_index(info["noise_index"]))
    with pytest.raises(ValueError, match="unknown noise generator"):
        NoisyObservation(pendulum(), n_noise=2, noise_generator="mt19937")
