"""Observation wrappers of the extremely noisy environments (ENE) and of the transfer experiment.

Both follow Grooten et al., "Automatic Noise Filtering with Dynamic Sparse Training in Deep
Reinforcement Learning" (AAMAS 2023):

- :class:`NoisyObservation` appends noise features after the real ones, so that a fraction ``f``
  of all inputs is noise (the ENE);
- :class:`FeaturePermutation` permutes all features (real and noise) once, from a given step on
  (their transfer experiment).

Both expose ``real_feature_mask`` (``True`` at the real features of the observation they emit);
:func:`real_feature_mask` reads it through any wrapper chain.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sparse_rl._util.validation import check_choice, check_fraction
from sparse_rl.envs.noise import (
    NoiseDistribution,
    NoiseStream,
    check_noise_generator,
    check_non_negative_int,
    check_seed,
    derive_noise_seed,
    make_noise_distribution,
    make_noise_stream,
    random_noise_seed,
)

__all__ = [
    "FeaturePermutation",
    "NoisyObservation",
    "check_noise_fraction",
    "noise_feature_count",
    "real_feature_mask",
]


def real_feature_mask(env: gym.Env) -> np.ndarray | None:
    """The boolean mask of the real features of ``env``'s observations, read through its wrapper
    chain, or ``None`` when no wrapper in the chain knows it (then every feature is real).

    :param env: a (possibly wrapped) environment
    :return: a read-only bool array of the observation's length, or ``None``
    """
    try:
        if hasattr(env, "get_wrapper_attr"):
            mask = env.get_wrapper_attr("real_feature_mask")
        else:  # pragma: no cover - gymnasium < 1.0 style envs
            mask = env.real_feature_mask
    except AttributeError:
        return None
    if mask is None:
        return None
    return np.asarray(mask, dtype=bool)


#: how :func:`noise_feature_count` rounds: ``exact`` (the fraction read as the decimal it prints
#: as) or ``float`` (in floating point, as Grooten et al.'s code computes it)
COUNT_RULES = ("exact", "float")


def noise_feature_count(n_real: int, noise_fraction: float, count_rule: str = "exact") -> int:
    """How many noise features make a fraction ``noise_fraction`` of all inputs noise.

    ``total = ceil(n_real / (1 - noise_fraction))`` and ``n_noise = total - n_real`` (Grooten et al.
    2023). With ``count_rule="exact"`` (the default) ``noise_fraction`` is read as the decimal it
    prints as (``Fraction(repr(f))``), so that float rounding does not add a feature: ``f = 0.9``
    with 17 real features gives 170 in all. ``count_rule="float"`` computes it in floating point
    as Grooten et al.'s code does (``np.ceil(state_dim / (1 - f))``), where ``17 / (1 - 0.9)`` is
    ``170.00000000000003``: 171 in all (and 86 at f = 0.8, 46 for 9 real features at 0.8); the two
    agree at 0.95, 0.98 and 0.99 for MuJoCo's sizes. The actual fraction ``n_noise / total`` is
    ``>= noise_fraction`` under both.

    :param n_real: number of real features, >= 0
    :param noise_fraction: in ``[0, 1)``
    :param count_rule: ``exact`` or ``float``
    :return: number of noise features
    """
    fraction = check_noise_fraction(noise_fraction)
    check_choice(count_rule, COUNT_RULES, "count_rule")
    if count_rule == "float":
        return int(math.ceil(n_real / (1.0 - fraction))) - n_real
    exact = Fraction(repr(fraction))
    total = math.ceil(Fraction(n_real) / (1 - exact))
    return total - n_real


def check_noise_fraction(noise_fraction: float) -> float:
    """Return ``noise_fraction`` as a float if it lies in ``[0, 1)``, else raise ``ValueError``."""
    return check_fraction(noise_fraction, "noise_fraction")


def _check_flat_box(space: spaces.Space, wrapper: str) -> spaces.Box:
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        got = f"a Box of shape {space.shape}" if isinstance(space, spaces.Box) else repr(space)
        raise ValueError(f"{wrapper} needs a 1-D gymnasium.spaces.Box observation space, got {got}")
    return space


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class NoisyObservation(gym.ObservationWrapper):
    """Extremely noisy environment (ENE): append noise features after the real observation.

    From Grooten et al., "Automatic Noise Filtering with Dynamic Sparse Training in Deep
    Reinforcement Learning" (AAMAS 2023): a fraction ``f`` of all inputs is i.i.d. noise, so an
    agent must learn which inputs matter (``f = 0.99`` on HalfCheetah: 17 real + 1683 noise = 1700
    inputs). The emitted observation is ``concat(real, noise)`` as float32; its space keeps the
    real bounds and gives the noise part the distribution's bounds (unbounded for ``normal``).

    **Regenerable noise.** Every observation the wrapper emits (from ``reset`` and from ``step``)
    gets a global index ``k``: 0, 1, 2, ... across episodes, never reset by ``reset``. Its noise is a
    pure function of ``(noise_seed, k)`` (see :class:`~sparse_rl.envs.noise.CounterNoise`), so a
    replay buffer may store only the real features and ``k`` and rebuild the noise exactly with
    :meth:`noise_for_index`. ``k`` is ``info["noise_index"]`` of ``reset`` and ``step``. (A
    consequence: two ``reset(seed=s)`` calls give the same real features but different noise.)

    **Noise seed.** ``seed`` if given; otherwise it is fixed by the first ``reset``:
    :func:`~sparse_rl.envs.noise.derive_noise_seed` of that reset's seed if it has one, else random
    (OS entropy). Once fixed, it never changes (later seeded resets keep it), else earlier indices
    could not be regenerated.

    :param env: environment with a 1-D ``Box`` observation space
    :param noise_fraction: fraction of all inputs that are noise, in ``[0, 1)``; give this or ``n_noise``
    :param n_noise: number of noise features, >= 0; give this or ``noise_fraction``
    :param distribution: a registered noise kind (``"normal"``, ``"uniform"``) or an instance
    :param noise_kwargs: parameters of the kind (e.g. ``{"std": 0.5}``); only with a name
    :param seed: the noise seed (an integer >= 0), or ``None`` to fix it on the first ``reset``
    :param noise_generator: how the noise of index ``k`` is made from ``(noise_seed, k)``: ``auto``
        (the default) picks ``counter`` (:class:`~sparse_rl.envs.noise.CounterNoise`: i.i.d., a
        native kernel) for ``normal`` and ``uniform``, else ``philox``
        (:class:`~sparse_rl.envs.noise.IndexedNoise`: numpy's Philox, any distribution with
        ``sample``)
    """

    def __init__(
        self,
        env: gym.Env,
        noise_fraction: float | None = None,
        n_noise: int | None = None,
        distribution: str | NoiseDistribution = "normal",
        noise_kwargs: dict[str, Any] | None = None,
        seed: int | None = None,
        noise_generator: str = "auto",
        count_rule: str = "exact",
    ) -> None:
        super().__init__(env)
        inner = _check_flat_box(env.observation_space, type(self).__name__)
        self._n_real = int(inner.shape[0])
        if (noise_fraction is None) == (n_noise is None):
            raise ValueError(
                "give exactly one of noise_fraction and n_noise, "
                f"got noise_fraction={noise_fraction!r}, n_noise={n_noise!r}"
            )
        if noise_fraction is not None:
            self._n_noise = noise_feature_count(self._n_real, noise_fraction, count_rule)
        else:
            self._n_noise = check_non_negative_int(n_noise, "n_noise")  # type: ignore[arg-type]
        self.distribution = make_noise_distribution(distribution, **(noise_kwargs or {}))
        self.noise_generator = check_noise_generator(noise_generator, self.distribution)
        self._noise: NoiseStream | None = None
        if seed is not None:
            self._fix_noise_seed(check_seed(seed))
        self._index = -1

        noise_low, noise_high = self.distribution.bounds
        low = np.concatenate([inner.low.astype(np.float32), np.full(self._n_noise, noise_low, dtype=np.float32)])
        high = np.concatenate([inner.high.astype(np.float32), np.full(self._n_noise, noise_high, dtype=np.float32)])
        self.observation_space = spaces.Box(low=low, high=high, dtype=np.float32)
        mask = np.zeros(self._n_real + self._n_noise, dtype=bool)
        mask[: self._n_real] = True
        self._mask = _read_only(mask)

    # ---------------------------------------------------------------------------------------------
    # what the rest of the library reads

    @property
    def n_real(self) -> int:
        """Number of real features (the first ``n_real`` entries of an observation)."""
        return self._n_real

    @property
    def n_noise(self) -> int:
        """Number of noise features (the last ``n_noise`` entries of an observation)."""
        return self._n_noise

    @property
    def noise_fraction(self) -> float:
        """The actual fraction of noise features, ``n_noise / (n_real + n_noise)``."""
        total = self._n_real + self._n_noise
        return self._n_noise / total if total else 0.0

    @property
    def real_feature_mask(self) -> np.ndarray:
        """Read-only bool array over the observation: ``True`` at the real features."""
        return self._mask

    @property
    def noise_seed(self) -> int | None:
        """The noise seed, or ``None`` while it is not fixed yet (before the first ``reset``)."""
        return None if self._noise is None else self._noise.noise_seed

    @property
    def noise_stream(self) -> NoiseStream:
        """The regenerable noise stream (picklable): ``noise_stream(k)`` is the noise of index ``k``.

        :raises RuntimeError: while the noise seed is not fixed yet
        """
        return self._require_noise()

    @property
    def observation_index(self) -> int:
        """Index ``k`` of the last emitted observation (-1 before the first ``reset``)."""
        return self._index

    def noise_for_index(self, index: int) -> np.ndarray:
        """The noise part of the observation with index ``index``: exactly the numbers emitted.

        :param index: an observation index >= 0 (past, or future)
        :return: float32 array of shape ``(n_noise,)``
        :raises RuntimeError: while the noise seed is not fixed (no ``seed`` and no ``reset`` yet)
        """
        return self._require_noise()(index)

    def noise_for_indices(self, indices: np.ndarray | list[int]) -> np.ndarray:
        """The noise parts of several observations, stacked: float32, shape ``(len(indices), n_noise)``."""
        return self._require_noise().many(indices)

    # ---------------------------------------------------------------------------------------------
    # gymnasium API

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the inner env; fix the noise seed if it is not yet (see the class docstring)."""
        if self._noise is None:
            self._fix_noise_seed(random_noise_seed() if seed is None else derive_noise_seed(seed))
        obs, info = self.env.reset(seed=seed, options=options)
        return self.observation(obs), {**info, "noise_index": self._index}

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the inner env and append the noise of the next index."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.observation(obs), reward, terminated, truncated, {**info, "noise_index": self._index}

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Emit ``observation`` with the noise of the next index appended (advances the index).

        :param observation: a real observation of the inner env
        :return: float32 array ``concat(observation, noise_for_index(k))``
        """
        noise = self._require_noise()
        self._index += 1
        out = np.empty(self._n_real + self._n_noise, dtype=np.float32)
        out[: self._n_real] = observation
        out[self._n_real :] = noise(self._index)
        return out

    def state_dict(self) -> dict[str, Any]:
        """The wrapper's progress (noise seed and last observation index), for a checkpoint: a
        wrapper built from the same arguments that loads it emits the same noise from then on."""
        return {"noise_seed": self.noise_seed, "index": self._index}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned.

        :raises ValueError: if ``state`` lacks a key or holds a value of the wrong kind
        """
        missing = {"noise_seed", "index"} - set(state)
        if missing:
            raise ValueError(f"NoisyObservation state lacks {sorted(missing)}; it has {sorted(state)}")
        if state["noise_seed"] is not None:
            self._fix_noise_seed(check_seed(int(state["noise_seed"]), "noise_seed"))
        index = int(state["index"])
        if index < -1:
            raise ValueError(f"NoisyObservation state index must be >= -1, got {index}")
        self._index = index

    # ---------------------------------------------------------------------------------------------

    def _fix_noise_seed(self, noise_seed: int) -> None:
        self._noise = make_noise_stream(self.noise_generator, self.distribution, self._n_noise, noise_seed)

    def _require_noise(self) -> NoiseStream:
        if self._noise is None:
            raise RuntimeError("the noise seed is not fixed yet: pass seed= to NoisyObservation or call reset() first")
        return self._noise


class FeaturePermutation(gym.ObservationWrapper):
    """Permute all observation features (real and noise) once, from a given step on.

    The transfer experiment of Grooten et al., "Automatic Noise Filtering with Dynamic Sparse
    Training in Deep Reinforcement Learning" (AAMAS 2023): after training, the inputs are shuffled
    by one seeded permutation and the agent must find the real features again.

    **Which observation is the first permuted one.** ``step`` calls are counted across episodes
    (1, 2, ...). The observation returned by the ``at_step``-th ``step`` call is the first permuted
    one; every later observation, from ``step`` or ``reset``, is permuted too. With ``at_step=0``
    every observation is permuted, from the first ``reset`` on. Permuted means
    ``permuted_obs = obs[permutation]`` (feature ``i`` of the output is feature ``permutation[i]``
    of the input), with ``permutation = np.random.default_rng(seed).permutation(n_features)``.

    ``real_feature_mask`` follows the switch: the inner env's mask (all ``True`` if it has none)
    before it, ``inner_mask[permutation]`` after it, so ``obs[env.real_feature_mask]`` is always the
    real features (in permuted order after the switch). The observation space is fixed: its bounds
    are the element-wise union of the inner bounds before and after permutation, so both phases lie
    in it. ``info["features_permuted"]`` says whether the returned observation is permuted.

    :param env: environment with a 1-D ``Box`` observation space
    :param at_step: the ``step`` call (1-based, across episodes) whose observation is the first
        permuted one; 0 permutes from the start; an integer >= 0
    :param seed: seed of the permutation, an integer >= 0
    """

    def __init__(self, env: gym.Env, at_step: int, seed: int = 0) -> None:
        super().__init__(env)
        inner = _check_flat_box(env.observation_space, type(self).__name__)
        self.at_step = check_non_negative_int(at_step, "at_step")
        self.permutation_seed = check_seed(seed)
        n_features = int(inner.shape[0])
        self.permutation = _read_only(np.random.default_rng(self.permutation_seed).permutation(n_features))
        self.inverse_permutation = _read_only(np.argsort(self.permutation))
        inner_mask = real_feature_mask(env)
        if inner_mask is None:
            inner_mask = np.ones(n_features, dtype=bool)
        self._inner_mask = _read_only(inner_mask.copy())
        self._permuted_mask = _read_only(inner_mask[self.permutation])
        self.observation_space = spaces.Box(
            low=np.minimum(inner.low, inner.low[self.permutation]),
            high=np.maximum(inner.high, inner.high[self.permutation]),
            dtype=inner.dtype,  # type: ignore[arg-type]
        )
        self._step_count = 0
        self.permuted = False
        self.permuted_at_step: int | None = None
        if self.at_step == 0:
            self._switch()

    @property
    def step_count(self) -> int:
        """Number of ``step`` calls so far, across episodes."""
        return self._step_count

    @property
    def real_feature_mask(self) -> np.ndarray:
        """Read-only bool array over the emitted observation: ``True`` at the real features."""
        return self._permuted_mask if self.permuted else self._inner_mask

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the inner env; the observation is permuted if the switch has happened."""
        obs, info = self.env.reset(seed=seed, options=options)
        return self.observation(obs), {**info, "features_permuted": self.permuted}

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the inner env; from the ``at_step``-th call on, the observation is permuted."""
        self._step_count += 1
        if not self.permuted and self._step_count >= self.at_step:
            self._switch()
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.observation(obs), reward, terminated, truncated, {**info, "features_permuted": self.permuted}

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """``observation[permutation]`` once the switch has happened, else ``observation`` as is."""
        return np.asarray(observation)[self.permutation] if self.permuted else observation

    def state_dict(self) -> dict[str, Any]:
        """The wrapper's progress (steps so far and whether and when it switched), for a checkpoint."""
        return {"step_count": self._step_count, "permuted": self.permuted, "permuted_at_step": self.permuted_at_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the permutation itself comes from ``seed``).

        :raises ValueError: if ``state`` lacks a key
        """
        missing = {"step_count", "permuted", "permuted_at_step"} - set(state)
        if missing:
            raise ValueError(f"FeaturePermutation state lacks {sorted(missing)}; it has {sorted(state)}")
        self._step_count = check_non_negative_int(int(state["step_count"]), "step_count")
        self.permuted = bool(state["permuted"])
        at = state["permuted_at_step"]
        self.permuted_at_step = None if at is None else int(at)

    def _switch(self) -> None:
        self.permuted = True
        self.permuted_at_step = self._step_count
