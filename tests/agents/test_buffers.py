"""NoiseFreeReplayBuffer: replayed transitions are identical to stored ones, at a fraction of the memory."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env

from sparse_rl.agents import SparseSAC, SparseTD3
from sparse_rl.agents.buffers import NoiseFreeReplayBuffer, fresh_noise_indices
from sparse_rl.envs import make_env


def _noisy_vec_env(n_envs: int = 2, permute_at_step: int | None = None, seed: int = 0):
    config = {"id": "Pendulum-v1", "noise_fraction": 0.9, "make_kwargs": {"max_episode_steps": 60},
              "permute_at_step": permute_at_step}
    return make_vec_env(lambda: make_env(config), n_envs=n_envs, seed=seed)


def _all_samples(buffer: ReplayBuffer) -> tuple[torch.Tensor, torch.Tensor]:
    np.random.seed(123)
    samples = buffer._get_samples(np.arange(buffer.pos))
    return samples.observations, samples.next_observations


@pytest.mark.parametrize(("sparse_class", "n_envs"), [(SparseSAC, 2), (SparseTD3, 2), (SparseSAC, 1)])
@pytest.mark.parametrize("permute_at_step", [None, 70])
def test_regenerated_transitions_equal_stored_ones(sparse_class: type, n_envs: int, permute_at_step: int | None,
                                                   tiny: Callable) -> None:
    # Built and trained one after the other: each construction reseeds the global RNGs.
    # 150 steps per env: episodes end at 60 (terminal observations), the features switch at 70.
    # One env takes the feature-major path (noise written natively into the kernels' layout).
    stored = sparse_class("MlpPolicy", _noisy_vec_env(n_envs, permute_at_step), store_noise=True,
                          **tiny(learning_starts=50)).learn(300)
    regenerated = sparse_class("MlpPolicy", _noisy_vec_env(n_envs, permute_at_step),
                               **tiny(learning_starts=50)).learn(300)
    assert type(stored.replay_buffer) is ReplayBuffer
    assert isinstance(regenerated.replay_buffer, NoiseFreeReplayBuffer)
    for ours, theirs in zip(_all_samples(regenerated.replay_buffer), _all_samples(stored.replay_buffer)):
        assert torch.equal(ours, theirs)
    # Same samples, hence the same training: the two agents are identical.
    for key, value in stored.policy.state_dict().items():
        assert torch.equal(value, regenerated.policy.state_dict()[key]), key


def test_buffer_memory_is_the_real_features_only() -> None:
    env = _noisy_vec_env(n_envs=1)
    full = ReplayBuffer(1000, env.observation_space, env.action_space, device="cpu")
    kwargs = NoiseFreeReplayBuffer.from_env(env)
    assert kwargs == {"n_real": 3}
    lean = NoiseFreeReplayBuffer(1000, env.observation_space, env.action_space, device="cpu", **kwargs)
    full_bytes = full.observations.nbytes + full.next_observations.nbytes
    assert lean.observations.shape == (1000, 1, 3)
    assert lean.nbytes() < full_bytes / 4


def test_binding_other_noise_streams_to_a_filled_buffer_is_refused(tiny: Callable) -> None:
    model = SparseSAC("MlpPolicy", _noisy_vec_env(seed=0), **tiny(learning_starts=50)).learn(60)
    other = _noisy_vec_env(seed=1)
    other.reset()
    with pytest.raises(ValueError, match="noise streams differ"):
        model.replay_buffer.bind_to(other)


def test_plain_envs_keep_sb3_buffer(tiny: Callable) -> None:
    model = SparseSAC("MlpPolicy", "Pendulum-v1", **tiny())
    assert type(model.replay_buffer) is ReplayBuffer


def test_bad_n_real_is_rejected() -> None:
    env = _noisy_vec_env(n_envs=1)
    with pytest.raises(ValueError, match="n_real must be the number of real features"):
        NoiseFreeReplayBuffer(10, env.observation_space, env.action_space, n_real=None)


def test_sampled_observations_are_feature_major_at_the_kernels_stride(tiny: Callable) -> None:
    from sparse_rl.sparse.native import feature_major_stride

    model = SparseSAC("MlpPolicy", _noisy_vec_env(n_envs=1), **tiny(learning_starts=50)).learn(120)
    buffer = model.replay_buffer
    samples = buffer.sample(37)
    for observations in (samples.observations, samples.next_observations):
        assert observations.shape == (37, buffer.full_observation_space.shape[0])
        assert observations.t().stride() == (feature_major_stride(37), 1)
    np.random.seed(5)
    rows = np.array([3, 9, 4])
    batch = buffer._get_samples(rows)
    np.random.seed(5)
    env_indices = np.random.randint(0, high=1, size=3)
    indices = buffer.noise_index[rows, env_indices] - np.uint64(1)
    expected = buffer.rebuild(buffer.observations[rows, env_indices], indices, env_indices,
                              buffer.obs_permuted[rows, env_indices])
    assert np.array_equal(batch.observations.numpy(), expected)


@pytest.mark.parametrize(("n_envs", "permute_at_step"), [(1, None), (1, 40), (2, 40)])
def test_observations_rebuilt_on_the_device_are_the_cpu_paths_bits(n_envs: int, permute_at_step: int | None,
                                                                   tiny: Callable,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # rebuild_on_device runs here on the CPU (the same torch code runs on a GPU: tests/agents/test_cuda.py).
    model = SparseSAC("MlpPolicy", _noisy_vec_env(n_envs, permute_at_step), **tiny(learning_starts=10_000)).learn(100)
    buffer = model.replay_buffer
    assert not buffer.noise_on_device()  # a CPU buffer keeps the native path
    rows = np.arange(buffer.pos)
    for env_indices in (np.zeros(rows.size, dtype=np.int64), np.arange(rows.size) % n_envs):
        for index_shift, real, permuted in ((1, buffer.observations, buffer.obs_permuted),
                                            (0, buffer.next_observations, buffer.next_obs_permuted)):
            indices = buffer.noise_index[rows, env_indices] - np.uint64(index_shift)
            args = (real[rows, env_indices], indices, env_indices, permuted[rows, env_indices])
            on_device = buffer.rebuild_on_device(*args)
            assert on_device.is_contiguous() and on_device.dtype is torch.float32
            np.testing.assert_array_equal(on_device.numpy().view(np.uint32), buffer.rebuild(*args).view(np.uint32))
    if permute_at_step is not None:
        assert buffer.obs_permuted[rows, 0].any()  # the permuted rows were among them
    np.random.seed(9)
    cpu = buffer._get_samples(rows)
    monkeypatch.setattr(NoiseFreeReplayBuffer, "noise_on_device", lambda self, env=None: True)
    np.random.seed(9)
    device = buffer._get_samples(rows)
    assert device.observations.is_contiguous()  # row-major: built by rebuild_on_device
    for ours, theirs in zip(device, cpu):
        assert (ours is None and theirs is None) or torch.equal(ours, theirs)


def test_a_cpu_buffer_keeps_the_native_path_and_its_bits(tiny: Callable, monkeypatch: pytest.MonkeyPatch) -> None:
    from sparse_rl.sparse.native import feature_major_stride

    model = SparseSAC("MlpPolicy", _noisy_vec_env(n_envs=1), **tiny(learning_starts=10_000)).learn(60)
    buffer = model.replay_buffer

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a CPU buffer made its noise with torch")

    monkeypatch.setattr("sparse_rl.agents.buffers.stream_noise_torch", refuse)
    rows = np.arange(buffer.pos)
    np.random.seed(3)
    samples = buffer._get_samples(rows)
    assert samples.observations.t().stride() == (feature_major_stride(rows.size), 1)  # the native kernels' layout
    env_indices = np.zeros(rows.size, dtype=np.int64)
    expected = buffer.rebuild(buffer.next_observations[rows, 0], buffer.noise_index[rows, 0], env_indices,
                              buffer.next_obs_permuted[rows, 0])
    np.testing.assert_array_equal(samples.next_observations.numpy().view(np.uint32), expected.view(np.uint32))
    buffer.device = torch.device("cuda")  # a CUDA buffer takes the device path (no CUDA needed to ask)...
    assert buffer.noise_on_device()
    assert not buffer.noise_on_device(env=object())  # ...except with a VecNormalize
    buffer.device = torch.device("mps")  # unchecked arithmetic: the CPU path
    assert not buffer.noise_on_device()


@pytest.mark.parametrize("n_envs", [1, 2])
def test_fresh_replay_noise_is_new_at_every_sample_and_leaves_the_rest_as_stored(n_envs: int, tiny: Callable) -> None:
    # Grooten et al.'s code draws the noise inside the network at every forward pass: a replayed
    # transition never shows the same noise twice. replay_noise="fresh" does that in the buffer.
    model = SparseSAC("MlpPolicy", _noisy_vec_env(n_envs), replay_noise="fresh", **tiny(learning_starts=50)).learn(80)
    buffer = model.replay_buffer
    assert isinstance(buffer, NoiseFreeReplayBuffer) and buffer.fresh_noise
    stored = NoiseFreeReplayBuffer(buffer.buffer_size, buffer.observation_space, buffer.action_space, device="cpu",
                                   n_envs=n_envs, n_real=buffer.n_real)
    stored.__dict__.update({key: value for key, value in buffer.__dict__.items() if key != "fresh_noise"})
    stored.fresh_noise = False
    first, second, kept = _all_samples(buffer), _all_samples(buffer), _all_samples(stored)
    n_real = buffer.n_real
    for fresh_a, fresh_b, old in zip(first, second, kept):
        assert torch.equal(fresh_a, fresh_b)  # the same numpy seed: the same fresh noise
        assert torch.equal(fresh_a[:, :n_real], old[:, :n_real])  # real features as stored
        assert not torch.isclose(fresh_a[:, n_real:], old[:, n_real:]).any()  # noise: all new
    np.random.seed(7)
    again = buffer._get_samples(np.arange(buffer.pos))
    assert not torch.equal(again.observations[:, n_real:], first[0][:, n_real:])  # another draw: other noise
    assert not torch.equal(again.observations[:, n_real:], again.next_observations[:, n_real:])
    noise = again.observations[:, n_real:].numpy()
    assert abs(noise.mean()) < 0.1 and abs(noise.std() - 1.0) < 0.1  # still N(0, 1)
    indices = fresh_noise_indices(1000)
    assert indices.dtype == np.uint64 and bool(np.all(indices >= np.uint64(1 << 63)))


def test_replay_noise_is_checked_and_the_papers_methods_use_fresh(tiny: Callable) -> None:
    from sparse_rl.agents import make_agent

    with pytest.raises(ValueError, match="unknown replay_noise 'new'"):
        SparseSAC("MlpPolicy", _noisy_vec_env(1), replay_noise="new", **tiny())
    with pytest.raises(ValueError, match="does not go with store_noise=True"):
        SparseSAC("MlpPolicy", _noisy_vec_env(1), replay_noise="fresh", store_noise=True, **tiny())
    for method in ("anf_sac", "anf_td3", "ds_sac", "ds_td3"):
        agent = make_agent(method, _noisy_vec_env(1), buffer_size=500, policy_kwargs={"net_arch": [8]})
        assert agent.replay_noise == "fresh" and agent.replay_buffer.fresh_noise, method
    plain = SparseSAC("MlpPolicy", _noisy_vec_env(1), **tiny())
    assert plain.replay_noise == "stored" and not plain.replay_buffer.fresh_noise
