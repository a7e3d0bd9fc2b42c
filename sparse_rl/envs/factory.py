"""Build an environment from a typed config: ``gym.make`` → :class:`NoisyObservation` (ENE) →
:class:`FeaturePermutation` (transfer)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from sparse_rl._util.validation import check_choice, check_keys, close_matches
from sparse_rl.envs.noise import (
    check_noise_generator,
    check_non_negative_int,
    check_seed,
    derive_noise_seed,
    make_noise_distribution,
)
from sparse_rl.envs.wrappers import COUNT_RULES, FeaturePermutation, NoisyObservation, check_noise_fraction

__all__ = ["EnvConfig", "make_env"]


@dataclass
class EnvConfig:
    """What environment to build, with its noise and permutation (validated on construction).

    :param id: a registered gymnasium id, e.g. ``"HalfCheetah-v5"``
    :param noise_fraction: fraction of all inputs that are noise, in ``[0, 1)`` (Grooten et al.,
        AAMAS 2023, use 0, 0.8, 0.9, 0.95, 0.98, 0.99); 0 adds no noise
    :param n_noise: number of noise features instead of a fraction (then ``noise_fraction`` stays 0)
    :param noise_distribution: a registered noise kind (``"normal"``, ``"uniform"``)
    :param noise_kwargs: its parameters, e.g. ``{"std": 1.0}``
    :param noise_generator: how the noise is made regenerable: ``auto`` (the default) resolves to
        ``counter`` (i.i.d., a native kernel) for ``normal`` and ``uniform``, else ``philox`` (numpy's
        Philox, any distribution). The resolved name is stored, so a saved config keeps its generator; see
        :mod:`sparse_rl.envs.noise`
    :param count_rule: how ``noise_fraction`` becomes a number of noise features: ``exact`` (the
        default: ``ceil(n_real / (1 − f))`` with ``f`` read as its decimal) or ``float`` (the same in
        floating point, as Grooten et al.'s code: 171 inputs for 17 real ones at f = 0.9, not 170);
        see :func:`~sparse_rl.envs.wrappers.noise_feature_count`
    :param permute_at_step: permute all features from this ``step`` call on (see
        :class:`~sparse_rl.envs.wrappers.FeaturePermutation`); ``None`` never permutes
    :param permutation_seed: seed of that permutation
    :param make_kwargs: keyword arguments of ``gym.make`` (e.g. ``{"max_episode_steps": 200}``)
    """

    id: str
    noise_fraction: float = 0.0
    n_noise: int | None = None
    noise_distribution: str = "normal"
    noise_generator: str = "auto"
    noise_kwargs: dict[str, Any] = field(default_factory=dict)
    count_rule: str = "exact"
    permute_at_step: int | None = None
    permutation_seed: int = 0
    make_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"id must be a non-empty environment id string, got {self.id!r}")
        self.noise_fraction = check_noise_fraction(self.noise_fraction)
        if self.n_noise is not None:
            self.n_noise = check_non_negative_int(self.n_noise, "n_noise")
            if self.noise_fraction > 0:
                raise ValueError(
                    "give either noise_fraction or n_noise, not both, "
                    f"got noise_fraction={self.noise_fraction!r}, n_noise={self.n_noise!r}"
                )
        for name in ("noise_kwargs", "make_kwargs"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise ValueError(f"{name} must be a mapping of keyword arguments, got {value!r}")
            setattr(self, name, dict(value))
        try:
            distribution = make_noise_distribution(self.noise_distribution, **self.noise_kwargs)
        except ValueError as err:
            field_name = "noise_distribution" if "unknown noise distribution" in str(err) else "noise_kwargs"
            raise ValueError(f"{field_name}: {err}") from None
        try:
            self.noise_generator = check_noise_generator(self.noise_generator, distribution)
        except ValueError as err:
            raise ValueError(f"noise_generator: {err}") from None
        try:
            check_choice(self.count_rule, COUNT_RULES, "count_rule")
        except ValueError as err:
            raise ValueError(f"count_rule: {err}") from None
        if self.permute_at_step is not None:
            self.permute_at_step = check_non_negative_int(self.permute_at_step, "permute_at_step")
        self.permutation_seed = check_non_negative_int(self.permutation_seed, "permutation_seed")

    @property
    def has_noise(self) -> bool:
        """Whether :func:`make_env` adds noise features."""
        return self.noise_fraction > 0 or bool(self.n_noise)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnvConfig:
        """Build from a mapping (a YAML section); an unknown key raises ``ValueError`` naming it
        and the closest valid key."""
        if not isinstance(data, Mapping):
            raise ValueError(f"an env config must be a mapping, got {data!r}")
        valid = [f.name for f in dataclasses.fields(cls)]
        check_keys(data, valid, "unknown env config key {key}{hint} (valid keys: {accepted})",
                   hint_template="; did you mean {!r}?")
        if "id" not in data:
            raise ValueError("an env config needs the key 'id' (a registered gymnasium id)")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (what :meth:`from_dict` takes)."""
        return dataclasses.asdict(self)


def make_env(config: EnvConfig | Mapping[str, Any], seed: int | None = None, noise_seed: int | None = None) -> gym.Env:
    """Build the environment ``config`` describes.

    ``gym.make(id, **make_kwargs)``, then :class:`~sparse_rl.envs.wrappers.NoisyObservation` when
    it has noise, then :class:`~sparse_rl.envs.wrappers.FeaturePermutation` when
    ``permute_at_step`` is set. The env itself is not reset (SB3 resets it with its seed).

    :param config: an :class:`EnvConfig` or a mapping of its fields
    :param seed: seeds the action space; also the noise seed's source when ``noise_seed`` is not given
        (:func:`~sparse_rl.envs.noise.derive_noise_seed`, the value a first ``reset(seed=seed)``
        would derive)
    :param noise_seed: the noise seed itself; with neither, it is fixed on the first ``reset``
    :return: the (wrapped) environment
    :raises ValueError: for an invalid config or an id gymnasium does not know
    """
    if not isinstance(config, EnvConfig):
        config = EnvConfig.from_dict(config)
    if seed is not None:
        seed = check_seed(seed, "seed")
    if noise_seed is not None:
        noise_seed = check_seed(noise_seed, "noise_seed")
    env = _gym_make(config.id, config.make_kwargs)
    if config.has_noise:
        if noise_seed is None and seed is not None:
            noise_seed = derive_noise_seed(seed)
        env = NoisyObservation(
            env,
            noise_fraction=None if config.n_noise is not None else config.noise_fraction,
            n_noise=config.n_noise,
            distribution=config.noise_distribution,
            noise_kwargs=config.noise_kwargs,
            seed=noise_seed,
            noise_generator=config.noise_generator,
            count_rule=config.count_rule,
        )
    if config.permute_at_step is not None:
        env = FeaturePermutation(env, at_step=config.permute_at_step, seed=config.permutation_seed)
    if seed is not None:
        env.action_space.seed(seed)
    return env


def _gym_make(env_id: str, make_kwargs: Mapping[str, Any]) -> gym.Env:
    try:
        return gym.make(env_id, **make_kwargs)
    except (gym.error.UnregisteredEnv, gym.error.DeprecatedEnv) as err:
        close = close_matches(env_id, gym.registry, n=3)
        hint = f"; closest registered ids: {', '.join(close)}" if close else ""
        raise ValueError(
            f"environment id {env_id!r} is not registered with gymnasium ({err}){hint}. "
            "Check the spelling and version, or import the package that registers it."
        ) from err
