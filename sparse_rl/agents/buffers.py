"""A replay buffer that does not store the noise of extremely noisy environments.

At a noise fraction of 0.99 on HalfCheetah, 1M transitions of 1,700 float32 features take 6.8 GB
for the observations and as much again for the next observations; at 17,000 inputs they cannot fit.
Yet the noise carries no information and is regenerable: :class:`~sparse_rl.envs.NoisyObservation`
draws the noise of its k-th observation as a pure function of (noise seed, k) and reports k as
``info["noise_index"]``. :class:`NoiseFreeReplayBuffer` stores the real features and k, and rebuilds
each sampled observation exactly (the same numbers the agent saw) when it samples.

Indices: the buffer records the index of each transition's *next* observation (the one the step
returned, or the terminal observation); the observation before it in the same env has the index
one lower, because the wrapper numbers every observation it emits, resets included.
With a :class:`~sparse_rl.envs.FeaturePermutation` on top, each observation's permutation state
is stored too, and the permutation is re-applied to the rebuilt observation.

Where: on the CPU the native kernel writes the noise straight into the feature-major batch the csr
kernels read; on a CUDA device only the real features and the indices are copied there
and the noise is generated there with torch (:mod:`sparse_rl.envs.noise.on_device`, the same bits), so
that no noise crosses the bus (:meth:`NoiseFreeReplayBuffer.noise_on_device` says which).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from sparse_rl._util.validation import check_choice
from sparse_rl.envs.noise import NoiseStream
from sparse_rl.envs.noise.on_device import indices_tensor, stream_noise_torch, supports_torch_noise
from sparse_rl.sparse.native import feature_major_stride


class NoiseFreeReplayBuffer(ReplayBuffer):
    """SB3's ``ReplayBuffer`` for observations ``concat(real, noise)`` of a ``NoisyObservation``
    env: stores ``real`` and the noise index, regenerates ``noise`` when sampling.

    Call :meth:`bind` with the env's noise streams before the first ``add`` (the agents do this
    when learning starts, once the env has fixed its noise seed).

    :param buffer_size: maximum number of transitions
    :param observation_space: the *full* (noisy) observation space
    :param action_space: the action space
    :param device: where sampled tensors go
    :param n_envs: number of parallel environments
    :param optimize_memory_usage: not supported (must be ``False``)
    :param handle_timeout_termination: as in SB3
    :param n_real: number of real features (the first ``n_real`` of the un-permuted observation)
    :param fresh_noise: give every sampled observation new noise (obs and next obs independently)
        instead of the noise the agent saw, as Grooten et al.'s code does by drawing the noise
        inside the network at every forward pass: the agent then cannot fit the noise of the
        transitions it replays. The fresh noise comes from the same stream at indices in
        ``[2^63, 2^64)`` drawn from numpy's global generator (as SB3 draws the batch), never those
        of an emitted observation (which count up from 0)
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        device: torch.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        n_real: int | None = None,
        fresh_noise: bool = False,
    ) -> None:
        if optimize_memory_usage:
            raise ValueError("NoiseFreeReplayBuffer does not support optimize_memory_usage=True")
        if n_real is None or not 0 <= n_real <= observation_space.shape[0]:
            raise ValueError(f"n_real must be the number of real features (0..{observation_space.shape[0]}), "
                             f"got {n_real!r}")
        if not isinstance(fresh_noise, bool):
            raise ValueError(f"fresh_noise must be true or false, got {fresh_noise!r}")
        self.full_observation_space = observation_space
        self.n_real = n_real
        self.fresh_noise = fresh_noise
        real_space = spaces.Box(observation_space.low[:n_real], observation_space.high[:n_real],
                                dtype=observation_space.dtype)
        super().__init__(buffer_size, real_space, action_space, device, n_envs=n_envs,
                         optimize_memory_usage=False, handle_timeout_termination=handle_timeout_termination)
        self.observation_space = observation_space
        self.obs_shape = observation_space.shape
        self.noise_index = np.zeros((self.buffer_size, self.n_envs), dtype=np.uint64)
        self.obs_permuted = np.zeros((self.buffer_size, self.n_envs), dtype=bool)
        self.next_obs_permuted = np.zeros((self.buffer_size, self.n_envs), dtype=bool)
        self.noise_streams: list[NoiseStream] | None = None
        self.permutations: list[np.ndarray | None] = [None] * self.n_envs
        self._last_permuted = np.zeros(self.n_envs, dtype=bool)

    # -- wiring -------------------------------------------------------------------------------
    def bind(self, noise_streams: Sequence[NoiseStream], permutations: Sequence[np.ndarray | None] | None = None,
             permuted: Sequence[bool] | None = None) -> None:
        """Attach the envs' noise streams (one per env), their feature permutations (if any) and
        whether each env's current observation is permuted.

        Binding again (e.g. after loading a saved buffer) must give the same streams, or the
        stored transitions could not be rebuilt.
        """
        streams = list(noise_streams)
        if len(streams) != self.n_envs:
            raise ValueError(f"need one noise stream per env ({self.n_envs}), got {len(streams)}")
        n_noise = self.full_observation_space.shape[0] - self.n_real
        for stream in streams:
            if stream.size != n_noise:
                raise ValueError(f"a noise stream draws {stream.size} features, the buffer needs {n_noise}")
        if self.noise_streams is not None and (self.pos > 0 or self.full):
            old = [(s.noise_seed, repr(s.distribution)) for s in self.noise_streams]
            new = [(s.noise_seed, repr(s.distribution)) for s in streams]
            if old != new:
                raise ValueError("the env's noise streams differ from those this buffer's transitions were drawn "
                                 "from (another noise seed?): its observations cannot be rebuilt")
        self.noise_streams = streams
        self.permutations = list(permutations) if permutations is not None else [None] * self.n_envs
        if permuted is not None:
            self._last_permuted = np.asarray(permuted, dtype=bool).copy()

    @classmethod
    def from_env(cls, env: VecEnv) -> dict[str, Any] | None:
        """The ``replay_buffer_kwargs`` for ``env``, or ``None`` if it has no ``NoisyObservation``."""
        # has_attr, not a caught AttributeError: in a SubprocVecEnv the failed lookup kills the worker
        if not env.has_attr("n_real"):
            return None
        return {"n_real": int(env.get_attr("n_real", indices=[0])[0])}

    def bind_to(self, env: VecEnv) -> None:
        """:meth:`bind` to the noise streams, permutations and permutation states of ``env``'s envs."""
        streams = env.get_attr("noise_stream")
        permutations: list[np.ndarray | None] = [None] * env.num_envs
        permuted = [False] * env.num_envs
        if env.has_attr("permutation"):  # has_attr: see from_env
            permutations = [np.asarray(p) for p in env.get_attr("permutation")]
            permuted = [bool(p) for p in env.get_attr("permuted")]
        self.bind(streams, permutations, permuted)

    # -- storing ------------------------------------------------------------------------------
    def _real_part(self, obs: np.ndarray, permuted: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs).reshape((self.n_envs, -1))
        real = np.empty((self.n_envs, self.n_real), dtype=obs.dtype)
        for env_index in range(self.n_envs):
            row = obs[env_index]
            permutation = self.permutations[env_index]
            if permuted[env_index] and permutation is not None:
                unpermuted = np.empty_like(row)
                unpermuted[permutation] = row
                row = unpermuted
            real[env_index] = row[: self.n_real]
        return real

    def add(self, obs: np.ndarray, next_obs: np.ndarray, action: np.ndarray, reward: np.ndarray,
            done: np.ndarray, infos: list[dict[str, Any]]) -> None:
        """Store the real features of ``obs`` and ``next_obs`` and the noise index of ``next_obs``."""
        if self.noise_streams is None:
            raise RuntimeError("NoiseFreeReplayBuffer.bind() must be called with the env's noise streams first")
        try:
            indices = np.array([info["noise_index"] for info in infos], dtype=np.uint64)
        except KeyError:
            raise RuntimeError("the env's infos have no 'noise_index': is it wrapped in NoisyObservation?") from None
        next_permuted = np.array([bool(info.get("features_permuted", False)) for info in infos])
        obs_permuted = self._last_permuted.copy()
        position = self.pos
        self.noise_index[position] = indices
        self.obs_permuted[position] = obs_permuted
        self.next_obs_permuted[position] = next_permuted
        self._last_permuted = next_permuted
        super().add(self._real_part(obs, obs_permuted), self._real_part(next_obs, next_permuted),
                    action, reward, done, infos)

    # -- sampling -----------------------------------------------------------------------------
    def rebuild(self, real: np.ndarray, indices: np.ndarray, env_indices: np.ndarray,
                permuted: np.ndarray) -> np.ndarray:
        """Full observations from their real features, noise indices, envs and permutation states."""
        assert self.noise_streams is not None
        out = np.empty((len(real), self.full_observation_space.shape[0]), dtype=np.float32)
        out[:, : self.n_real] = real
        if self.n_envs == 1:
            self.noise_streams[0].many(indices, out=out[:, self.n_real:])
        else:
            for env_index in np.unique(env_indices):
                rows = np.flatnonzero(env_indices == env_index)
                out[rows, self.n_real:] = self.noise_streams[env_index].many(indices[rows])
        permuted_rows = np.flatnonzero(permuted)
        for env_index in np.unique(env_indices[permuted_rows]):
            permutation = self.permutations[env_index]
            if permutation is not None:
                rows = permuted_rows[env_indices[permuted_rows] == env_index]
                out[rows] = out[np.ix_(rows, permutation)]
        return out

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ReplayBufferSamples:
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        next_index = self.noise_index[batch_inds, env_indices]
        obs_index = next_index - np.uint64(1)
        if self.fresh_noise:
            obs_index, next_index = fresh_noise_indices(len(batch_inds)), fresh_noise_indices(len(batch_inds))
        parts = ((self.observations[batch_inds, env_indices], obs_index,
                  self.obs_permuted[batch_inds, env_indices]),
                 (self.next_observations[batch_inds, env_indices], next_index,
                  self.next_obs_permuted[batch_inds, env_indices]))
        def observations(real: np.ndarray, indices: np.ndarray, permuted: np.ndarray) -> torch.Tensor:
            if self.noise_on_device(env):  # only the real features and the indices cross the bus
                return self.rebuild_on_device(real, indices, env_indices, permuted)
            if env is None and self.n_envs == 1:  # straight into the kernels' layout
                return self.rebuild_feature_major(real, indices, permuted)
            return self._feature_major(self._normalize_obs(self.rebuild(real, indices, env_indices, permuted), env))

        obs, next_obs = (observations(*part) for part in parts)
        data = (
            self.actions[batch_inds, env_indices, :],
            (self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])).reshape(-1, 1),
            self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env),
        )
        actions, dones, rewards = map(self.to_torch, data)
        return ReplayBufferSamples(obs, actions, next_obs, dones, rewards)

    def noise_on_device(self, env: VecNormalize | None = None) -> bool:
        """Whether sampled observations are rebuilt on the buffer's device
        (:meth:`rebuild_on_device`): on a CUDA device, where the torch noise's bits are tested
        (``tests/agents/test_cuda.py``); not on the CPU, where the native kernel writing into the
        kernels' layout is fastest (:meth:`rebuild_feature_major`), nor on devices whose float32
        arithmetic is unchecked (MPS: fast math); not with a ``VecNormalize`` (it normalizes numpy
        arrays), nor for noise without a torch version
        (:func:`~sparse_rl.envs.noise.on_device.supports_torch_noise`: the ``counter`` generator's
        ``normal`` and ``uniform`` noise have one)."""
        return (env is None and self.device.type == "cuda" and self.noise_streams is not None
                and all(supports_torch_noise(stream) for stream in self.noise_streams))

    def rebuild_on_device(self, real: np.ndarray, indices: np.ndarray, env_indices: np.ndarray,
                          permuted: np.ndarray) -> torch.Tensor:
        """What :meth:`rebuild` makes (the same bits), built on the buffer's device as a row-major
        tensor (batch × features): the real features and the noise indices are copied there, the
        noise is generated there (:func:`~sparse_rl.envs.noise.on_device.stream_noise_torch`), then the
        permuted observations' features are reordered there. No noise crosses the bus."""
        assert self.noise_streams is not None
        batch, features = len(real), self.full_observation_space.shape[0]
        out = torch.empty((batch, features), dtype=torch.float32, device=self.device)
        out[:, : self.n_real] = torch.as_tensor(np.asarray(real)).to(self.device, torch.float32)
        index = indices_tensor(indices, self.device)
        if self.n_envs == 1:
            stream_noise_torch(self.noise_streams[0], index, out=out[:, self.n_real:])
        else:
            for env_index in np.unique(env_indices):
                rows = torch.from_numpy(np.flatnonzero(env_indices == env_index)).to(self.device)
                out[rows, self.n_real:] = stream_noise_torch(self.noise_streams[env_index], index[rows])
        permuted_rows = np.flatnonzero(permuted)
        for env_index in np.unique(env_indices[permuted_rows]):
            permutation = self.permutations[env_index]
            if permutation is not None:
                rows = torch.from_numpy(permuted_rows[env_indices[permuted_rows] == env_index]).to(self.device)
                columns = torch.tensor(np.asarray(permutation), dtype=torch.int64, device=self.device)
                out[rows] = out[rows][:, columns]
        return out

    def rebuild_feature_major(self, real: np.ndarray, indices: np.ndarray, permuted: np.ndarray) -> torch.Tensor:
        """What :meth:`rebuild` and :meth:`_feature_major` make together (one env, no VecNormalize),
        built feature-major from the start: the real features' rows copied, the noise rows written
        by the noise stream in place (:meth:`~sparse_rl.envs.noise.NoiseStream.many_feature_major`:
        natively, threaded, for the default noise), then the permuted observations' columns
        reordered. The same numbers, without a row-major batch and its transposing copy."""
        assert self.noise_streams is not None
        batch, features = len(real), self.full_observation_space.shape[0]
        padded = np.empty((features, feature_major_stride(batch)), dtype=np.float32)[:, :batch]
        padded[: self.n_real] = real.T
        self.noise_streams[0].many_feature_major(indices, padded[self.n_real:])
        rows = np.flatnonzero(permuted)
        permutation = self.permutations[0]
        if rows.size and permutation is not None:
            padded[:, rows] = padded[np.ix_(permutation, rows)]
        return torch.from_numpy(padded).to(self.device).t()

    def _feature_major(self, observations: np.ndarray) -> torch.Tensor:
        """``observations`` (batch × features) as a tensor on the buffer's device whose memory is
        feature-major: its transpose has contiguous rows, padded to the stride the native kernels
        read fastest (:func:`~sparse_rl.sparse.native.feature_major_stride`). A ``csr`` input
        layer reads that transpose as it is, where it would transpose a row-major batch itself at
        every call (five calls per SAC step on the same observations); every other module takes a
        strided tensor as well."""
        observations = np.asarray(observations, dtype=np.float32)
        batch, features = observations.shape
        padded = np.empty((features, feature_major_stride(batch)), dtype=np.float32)[:, :batch]
        np.copyto(padded, observations.T)  # numpy's transposing copy is ~2x faster than torch's here
        return torch.from_numpy(padded).to(self.device).t()

    def nbytes(self) -> int:
        """Bytes held by the buffer's arrays."""
        arrays = (self.observations, self.next_observations, self.actions, self.rewards, self.dones, self.timeouts,
                  self.noise_index, self.obs_permuted, self.next_obs_permuted)
        return int(sum(array.nbytes for array in arrays))


#: what a replayed observation's noise is: ``stored`` (the noise the agent saw) or ``fresh`` (new
#: noise each time it is sampled, as Grooten et al.'s code)
REPLAY_NOISE = ("stored", "fresh")


def fresh_noise_indices(count: int) -> np.ndarray:
    """``count`` noise indices in ``[2^63, 2^64)`` from numpy's global generator: noise that no
    emitted observation had (their indices count up from 0), the same for the same seed."""
    draws = np.random.randint(0, 2**63 - 1, size=count, dtype=np.int64).astype(np.uint64)
    return draws | np.uint64(1 << 63)


def noise_free_buffer_args(env: VecEnv, store_noise: bool = False, replay_noise: str = "stored") -> dict[str, Any]:
    """The ``replay_buffer_class`` / ``replay_buffer_kwargs`` that keep an agent (SparseSAC,
    SparseTD3, or SB3's own) from storing an extremely noisy env's noise: empty without a
    ``NoisyObservation`` or with ``store_noise``. The one place that makes this choice.

    :param env: the training VecEnv
    :param store_noise: store the noise like SB3 does after all
    :param replay_noise: ``stored`` (replay the noise the agent saw) or ``fresh`` (new noise at every
        sample, :class:`NoiseFreeReplayBuffer`'s ``fresh_noise``)
    :raises ValueError: if ``store_noise`` is not a bool, for another ``replay_noise``, or ``fresh``
        with ``store_noise``
    """
    if not isinstance(store_noise, bool):
        raise ValueError(f"store_noise must be True or False, got {store_noise!r}")
    check_choice(replay_noise, REPLAY_NOISE, "replay_noise")
    if store_noise:
        if replay_noise == "fresh":
            raise ValueError("replay_noise 'fresh' regenerates the noise of every sample and needs the noise-free "
                             "buffer; it does not go with store_noise=True")
        return {}
    buffer_kwargs = NoiseFreeReplayBuffer.from_env(env)
    if buffer_kwargs is None:
        return {}
    buffer_kwargs["fresh_noise"] = replay_noise == "fresh"
    return {"replay_buffer_class": NoiseFreeReplayBuffer, "replay_buffer_kwargs": buffer_kwargs}
