"""Experiment configuration: typed dataclasses, YAML composition, ``--set`` overrides, validation.

One module per job:

- :mod:`~sparse_rl.experiment.config.schema`: the dataclasses (:class:`ExperimentConfig` and its
  sections), each checking its own values;
- :mod:`~sparse_rl.experiment.config.compose`: YAML reading, ``defaults:`` composition, overrides;
- :mod:`~sparse_rl.experiment.config.typed`: the generic typed validator (:func:`build_dataclass`);
- :mod:`~sparse_rl.experiment.config.sb3`: ``agent.hyperparams`` and ``policy_kwargs`` against
  Stable-Baselines3's constructors;
- :mod:`~sparse_rl.experiment.config.validate`: :func:`config_from_dict` and :func:`load_config`.

Every key is checked: an unknown key names its full path and the closest valid key, a wrong type
names the key, the expected type and the value; the sparsity and the env are checked against what
:func:`~sparse_rl.agents.sparsity.resolve_sparsity` and :class:`~sparse_rl.envs.factory.EnvConfig`
accept. All such problems raise :class:`~sparse_rl.experiment.errors.ConfigError`.
"""

from sparse_rl.experiment.config.compose import (
    apply_overrides,
    apply_settings,
    compose,
    deep_merge,
    parse_override,
    parse_yaml,
    read_yaml,
)
from sparse_rl.experiment.config.sb3 import (
    HYPERPARAM_RANGES,
    RESERVED_HYPERPARAMS,
    RESERVED_POLICY_KWARGS,
    accepted_arguments,
)
from sparse_rl.experiment.config.schema import (
    ACTION_NOISE_KINDS,
    ACTIVATIONS,
    AGENT_KINDS,
    ALGORITHMS,
    IMPLEMENTATIONS,
    LOG_FORMATS,
    VEC_ENVS,
    ActionNoiseConfig,
    AgentConfig,
    CheckpointConfig,
    EvalConfig,
    ExperimentConfig,
    RunConfig,
    SnapshotConfig,
)
from sparse_rl.experiment.config.typed import build_dataclass
from sparse_rl.experiment.config.validate import config_from_dict, load_config
from sparse_rl.experiment.errors import ConfigError, UserError

__all__ = [
    "ACTION_NOISE_KINDS",
    "ACTIVATIONS",
    "AGENT_KINDS",
    "ALGORITHMS",
    "HYPERPARAM_RANGES",
    "IMPLEMENTATIONS",
    "LOG_FORMATS",
    "RESERVED_HYPERPARAMS",
    "RESERVED_POLICY_KWARGS",
    "VEC_ENVS",
    "ActionNoiseConfig",
    "AgentConfig",
    "CheckpointConfig",
    "ConfigError",
    "EvalConfig",
    "ExperimentConfig",
    "RunConfig",
    "SnapshotConfig",
    "UserError",
    "accepted_arguments",
    "apply_overrides",
    "apply_settings",
    "build_dataclass",
    "compose",
    "config_from_dict",
    "deep_merge",
    "load_config",
    "parse_override",
    "parse_yaml",
    "read_yaml",
]
