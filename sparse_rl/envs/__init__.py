"""Extremely noisy environments (ENE), feature permutation and the env factory.

The ENE of Grooten et al. (AAMAS 2023) appends i.i.d. noise features after the real observation
(:class:`NoisyObservation`), regenerable from ``(noise seed, observation index)``
(:class:`CounterNoise` by default, :class:`IndexedNoise` for any distribution); the transfer
experiment permutes all features once
(:class:`FeaturePermutation`); :func:`make_env` builds both from an :class:`EnvConfig`.
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
from sparse_rl.envs.wrappers import FeaturePermutation, NoisyObservation, noise_feature_count, real_feature_mask

__all__ = [
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
    "make_env",
    "make_noise_distribution",
    "make_noise_stream",
    "noise_feature_count",
    "real_feature_mask",
    "register_noise_distribution",
]
