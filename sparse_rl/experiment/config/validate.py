"""From composed data to a validated :class:`~sparse_rl.experiment.config.schema.ExperimentConfig`:
methods expanded, every section typed, the sparsity, implementation and SB3 arguments checked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sparse_rl._util.validation import did_you_mean
from sparse_rl.agents.methods import METHODS
from sparse_rl.experiment.config.compose import apply_overrides, compose, deep_merge
from sparse_rl.experiment.config.sb3 import _check_hyperparams
from sparse_rl.experiment.config.schema import ExperimentConfig
from sparse_rl.experiment.config.typed import _build_dataclass, _one_line
from sparse_rl.experiment.errors import ConfigError


def load_config(paths: str | Path | Sequence[str | Path], overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Compose config files (merged in order), apply ``--set`` overrides, validate.

    :param paths: one config file or several (later ones win)
    :param overrides: ``KEY=VALUE`` strings
    :raises ConfigError: on any problem, with a message naming the key
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    data: dict[str, Any] = {}
    for path in paths:
        data = deep_merge(data, compose(path))
    return config_from_dict(apply_overrides(data, overrides))


def config_from_dict(data: Mapping[str, Any]) -> ExperimentConfig:
    """Validate plain data into an :class:`ExperimentConfig`.

    :param data: the composed config (a mapping)
    :raises ConfigError: on an unknown key, a wrong type, a missing key or a bad value
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"a config must be a mapping of keys, got {type(data).__name__}")
    data = _expand_method({key: value for key, value in data.items() if key != "defaults"})
    config = _build_dataclass(ExperimentConfig, data, "")
    _check_sparsity(config)
    _check_implementation(config)
    _check_hyperparams(config)
    _check_episodes(config)
    return config


def _check_episodes(config: ExperimentConfig) -> None:
    """Every episode must end: ``env.make_kwargs.max_episode_steps`` a positive integer, and an env
    without a time limit of its own given one (an evaluation would otherwise never end)."""
    import gymnasium as gym

    limit = config.env.make_kwargs.get("max_episode_steps")
    if "max_episode_steps" in config.env.make_kwargs and \
            (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"env.make_kwargs.max_episode_steps must be an integer >= 1 (episodes must end), got "
                          f"{limit!r}")
    if limit is None:
        try:
            spec = gym.spec(config.env.id)
        except gym.error.Error:
            return  # an unknown id: building the env says so
        if spec.max_episode_steps is None:
            raise ConfigError(f"env {config.env.id!r} has no time limit, so an episode (and an evaluation) may never "
                              "end; set env.make_kwargs.max_episode_steps")


def _expand_method(data: dict[str, Any]) -> dict[str, Any]:
    """Put a ``method``'s values (:data:`~sparse_rl.agents.methods.METHODS`) under the config's own."""
    name = data.get("method")
    if name is None:
        return data
    if not isinstance(name, str) or name not in METHODS:
        raise ConfigError(f"method: {_unknown_choice_text(name, METHODS)}")
    env = data.get("env")
    env_id = env.get("id") if isinstance(env, Mapping) else None
    fragment = METHODS[name].config_fragment(env_id if isinstance(env_id, str) else None)
    own = data.get("sparsity")
    if isinstance(own, str) or (isinstance(own, Mapping) and "preset" in own):
        fragment.pop("sparsity")  # another preset (plus overrides) replaces the method's whole
    return deep_merge(fragment, data)


def _unknown_choice_text(value: Any, known: Mapping[str, Any]) -> str:
    return f"unknown method {value!r}{did_you_mean(value, known)}; known: {', '.join(known)}"


#: sparsity keys that only a sparse configuration uses (set on a dense one, they would be ignored)
SPARSE_ONLY_KEYS = ("density", "distribution", "epsilon", "role_densities", "update_interval", "update_start",
                    "update_stop", "drop_fraction", "drop_schedule", "algorithm_kwargs", "target_rule")


def _check_sparsity(config: ExperimentConfig) -> None:
    import dataclasses

    from sparse_rl.agents.sparsity import SparsityConfig, resolve_sparsity

    try:
        resolved = resolve_sparsity(config.sparsity, agent=config.agent.algorithm)
    except (ValueError, TypeError) as error:
        message = _one_line(str(error))
        keys = [f.name for f in dataclasses.fields(SparsityConfig)]
        named = next((key for key in keys if message.startswith((f"{key} ", f"{key}:"))), None)
        raise ConfigError(f"sparsity.{message}" if named else f"sparsity: {message}") from None
    if isinstance(config.sparsity, Mapping) and not resolved.is_sparse:
        ignored = [key for key in SPARSE_ONLY_KEYS if key in config.sparsity]
        if ignored:
            raise ConfigError(f"sparsity.{ignored[0]} is set, but this config's networks are dense (sparsity "
                              f"{config.sparsity_name!r}), so it would have no effect; remove it, or choose a sparse "
                              f"preset (e.g. sparsity: {{preset: anf, {ignored[0]}: ...}})")


def _check_implementation(config: ExperimentConfig) -> None:
    from sparse_rl.agents.sparsity import resolve_sparsity

    if config.agent.implementation != "sb3":
        return
    if resolve_sparsity(config.sparsity, agent=config.agent.algorithm).is_sparse:
        algorithm = config.agent.algorithm.upper()
        raise ConfigError(f"agent.implementation 'sb3' trains stable_baselines3's own {algorithm}, whose networks are "
                          f"dense, but sparsity is {config.sparsity!r}; set sparsity: dense (or "
                          "agent.implementation: sparse_rl for a sparse agent)")
