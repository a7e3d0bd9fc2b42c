"""Extremely noisy environments (ENE), feature permutation and the env factory.

The ENE of Grooten et al. (AAMAS 2023) appends i.i.d. noise features after the real observation
(:class:`NoisyObservation`), regenerable from ``(noise seed, observation index)``
(:class:`CounterNoise` by default, :class:`IndexedNoise` for any distribution); the transfer
experiment permutes all features once
(:class:`FeaturePermutation`); :func:`make_env` builds both from an :class:`EnvConfig`.

Importing this package registers the noisy version of every Gymnasium id as ``ENE-<id>``
(:mod:`~sparse_rl.envs.registration`): ``gym.make("sparse_rl.envs:ENE-HalfCheetah-v5",
noise_fraction=0.98)`` works in any library.
"""

from sparse_rl.envs.factory import EnvConfig, make_env
from sparse_rl.envs.noise import (
    NOISE_DISTRIBUTIONS,
    CounterNoise,
    IndexedNoise,
    NoiseDistribution,
    NoiseStream,
    NormalNoise,
    UniformNoise,
    derive_noise_seed,
    make_noise_distribution,
    make_noise_stream,
    register_noise_distribution,
)
from sparse_rl.envs.registration import ENE_PREFIX, make_ene, register_ene_env, register_ene_envs
from sparse_rl.envs.wrappers import FeaturePermutation, NoisyObservation, noise_feature_count, real_feature_mask

register_ene_envs()

__all__ = [
    "ENE_PREFIX",
    "NOISE_DISTRIBUTIONS",
    "CounterNoise",
    "EnvConfig",
    "FeaturePermutation",
    "IndexedNoise",
    "NoiseDistribution",
    "NoiseStream",
    "NoisyObservation",
    "NormalNoise",
    "UniformNoise",
    "derive_noise_seed",
    "make_ene",
    "make_env",
    "make_noise_distribution",
    "make_noise_stream",
    "noise_feature_count",
    "real_feature_mask",
    "register_ene_env",
    "register_ene_envs",
    "register_noise_distribution",
]
