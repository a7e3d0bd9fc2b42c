"""The extremely noisy environments as Gymnasium ids, so that any library that calls ``gym.make``
(CleanRL, Tianshou, SB3, rl-zoo3…) trains on them unchanged::

    import gymnasium as gym

    env = gym.make("sparse_rl.envs:ENE-HalfCheetah-v5", noise_fraction=0.98)   # 17 real + 833 noise inputs
    env.get_wrapper_attr("real_feature_mask")                                # which inputs are real

``"sparse_rl.envs:"`` makes Gymnasium import :mod:`sparse_rl.envs`, which registers ``ENE-<id>`` for
every id registered at that moment (:func:`register_ene_envs`; call it again, or
:func:`register_ene_env`, after importing a package that registers more). ``ENE-<id>`` is
:func:`~sparse_rl.envs.factory.make_env` of ``<id>`` with noise: its keyword arguments are
:class:`~sparse_rl.envs.factory.EnvConfig`'s noise fields (``noise_fraction``, default
:data:`DEFAULT_NOISE_FRACTION`, or ``n_noise``; ``noise_distribution``, ``noise_kwargs``,
``noise_generator``, ``permute_at_step``, ``permutation_seed``) and ``gym.make``'s for the real env
(``render_mode``, ``max_episode_steps``…). The noise seed is fixed by the first ``reset(seed=...)``,
so a seeded reset gives the same noise in every library.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import gymnasium as gym

from sparse_rl.envs.factory import EnvConfig, make_env

#: the prefix of the noisy ids (``ENE-HalfCheetah-v5``)
ENE_PREFIX = "ENE-"
#: the noise fraction of ``gym.make("ENE-<id>")`` without one: Grooten et al.'s headline level
DEFAULT_NOISE_FRACTION = 0.98
#: the :class:`EnvConfig` fields an ``ENE-`` id takes as keyword arguments
NOISE_FIELDS = tuple(f.name for f in dataclasses.fields(EnvConfig) if f.name not in ("id", "make_kwargs"))

__all__ = ["DEFAULT_NOISE_FRACTION", "ENE_PREFIX", "make_ene", "register_ene_env", "register_ene_envs"]


def make_ene(env_id: str, **kwargs: Any) -> gym.Env:
    """The extremely noisy version of ``env_id`` (the entry point of the ``ENE-`` ids).

    :param env_id: the real env's Gymnasium id
    :param kwargs: :data:`NOISE_FIELDS` (``noise_fraction`` defaults to :data:`DEFAULT_NOISE_FRACTION`
        unless ``n_noise`` is given), the rest goes to ``gym.make(env_id, ...)``
    :raises ValueError: for a bad noise setting, naming it
    """
    noise = {name: kwargs.pop(name) for name in NOISE_FIELDS if name in kwargs}
    if "n_noise" not in noise:
        noise.setdefault("noise_fraction", DEFAULT_NOISE_FRACTION)
    make_kwargs = {key: value for key, value in kwargs.items() if not (key == "render_mode" and value is None)}
    return make_env({"id": env_id, **noise, "make_kwargs": make_kwargs})


def register_ene_env(env_id: str) -> str:
    """Register ``ENE-<env_id>`` (if it is not registered yet).

    :param env_id: a registered id without a namespace (``HalfCheetah-v5``)
    :return: the noisy id
    """
    if "/" in env_id:
        raise ValueError(f"env_id {env_id!r} has a namespace; ENE ids are registered for ids without one")
    noisy = f"{ENE_PREFIX}{env_id}"
    if noisy not in gym.registry:
        spec = gym.spec(env_id)
        gym.register(id=noisy, entry_point=f"{__name__}:make_ene", kwargs={"env_id": env_id},
                     max_episode_steps=spec.max_episode_steps, reward_threshold=spec.reward_threshold,
                     nondeterministic=spec.nondeterministic)
    return noisy


def register_ene_envs(env_ids: Iterable[str] | None = None) -> list[str]:
    """Register ``ENE-<id>`` for each of ``env_ids`` (default: every id registered now, but the
    namespaced ones and the ENE ids themselves).

    :param env_ids: the real envs' ids
    :return: the noisy ids
    """
    ids = list(gym.registry) if env_ids is None else list(env_ids)
    return [register_ene_env(env_id) for env_id in ids
            if "/" not in env_id and not env_id.startswith(ENE_PREFIX)]
