"""Experiment configuration: typed dataclasses, YAML composition, ``--set`` overrides, validation.

A config file is YAML. It may start with a ``defaults:`` list of other YAML files (paths relative
to the including file), which are loaded (recursively), deep-merged in order, and then the file's
own keys are deep-merged on top; mappings merge key by key, anything else (lists, scalars) is
replaced. ``--set a.b=value`` overrides are applied last, each value parsed as YAML. Floats in
exponent notation without a dot (``1e-3``) are floats, not strings (PyYAML reads YAML 1.1, where
they would be strings).

Every key is checked: an unknown key names its full path and the closest valid key, a wrong type
names the key, the expected type and the value; the agent's ``hyperparams`` are checked against the
Stable-Baselines3 class's constructor, ``policy_kwargs`` against the policy's, the sparsity and the
env against what :func:`~sparse_rl.agents.sparsity.resolve_sparsity` and
:class:`~sparse_rl.envs.factory.EnvConfig` accept. All such problems raise :class:`ConfigError`.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sparse_rl._util.validation import close_matches, did_you_mean
from sparse_rl.agents.methods import METHODS
from sparse_rl.envs.factory import EnvConfig

ALGORITHMS = ("sac", "td3")
#: ``agent.implementation``: this library's agents, or Stable-Baselines3's own classes (dense only)
IMPLEMENTATIONS = ("sparse_rl", "sb3")
ACTION_NOISE_KINDS = ("normal", "ornstein_uhlenbeck")
ACTIVATIONS = ("relu", "tanh", "elu", "leaky_relu", "gelu", "silu")
#: ``vec_env``: SB3's ``DummyVecEnv`` (envs stepped in turn in this process) or ``SubprocVecEnv``
VEC_ENVS = ("dummy", "subproc")
#: ``run.log_formats``: SB3 logger output formats (``tensorboard`` writes to the run's tb/)
LOG_FORMATS = ("tensorboard", "csv", "json", "stdout", "log")

#: SB3 constructor arguments that the config sets elsewhere, and where.
RESERVED_HYPERPARAMS = {
    "policy": "the policy is always 'MlpPolicy'",
    "env": "set the environment under 'env'",
    "seed": "set the top-level 'seed'",
    "device": "set the top-level 'device'",
    "verbose": "set 'run.verbose'",
    "tensorboard_log": "TensorBoard events always go to the run directory's tb/",
    "sparsity": "set the top-level 'sparsity'",
    "action_noise": "set 'agent.action_noise' (e.g. {kind: normal, sigma: 0.1})",
    "_init_setup_model": "internal to Stable-Baselines3",
}
RESERVED_POLICY_KWARGS = {
    "sparsity": "set the top-level 'sparsity'",
    "observation_space": "taken from the environment",
    "action_space": "taken from the environment",
    "lr_schedule": "set 'agent.hyperparams.learning_rate'",
}


class UserError(Exception):
    """A mistake a user can fix (a bad config, a missing file, a corrupt checkpoint…): the CLI prints
    its message as one paragraph and exits with :attr:`exit_code`, without a traceback."""

    exit_code: int = 2


class ConfigError(UserError):
    """A config that cannot be loaded or does not validate."""


# --------------------------------------------------------------------------------------------------
# the schema


@dataclass
class ActionNoiseConfig:
    """Exploration noise added to the actions of a deterministic policy (TD3).

    :param kind: ``normal`` (Gaussian, the TD3 paper's) or ``ornstein_uhlenbeck``
    :param sigma: standard deviation, per action dimension (actions in [-1, 1] after SB3's scaling)
    """

    kind: str = "normal"
    sigma: float = 0.1

    def __post_init__(self) -> None:
        _check_choice(self.kind, ACTION_NOISE_KINDS, "agent.action_noise.kind")
        if not self.sigma >= 0:
            raise ConfigError(f"agent.action_noise.sigma must be >= 0, got {self.sigma!r}")


@dataclass
class AgentConfig:
    """Which algorithm and its Stable-Baselines3 hyperparameters.

    :param algorithm: ``sac`` or ``td3``
    :param hyperparams: keyword arguments of SB3's ``SAC`` / ``TD3`` constructor (``learning_rate``,
        ``batch_size``, ``policy_kwargs``…), checked against its signature
    :param action_noise: exploration noise for TD3 (``None``: none)
    :param implementation: ``sparse_rl`` (:class:`~sparse_rl.agents.SparseSAC` /
        :class:`~sparse_rl.agents.SparseTD3`, any sparsity) or ``sb3`` (``stable_baselines3.SAC`` /
        ``TD3`` themselves, the reference dense baseline; needs ``sparsity: dense``)
    """

    algorithm: str = "sac"
    hyperparams: dict[str, Any] = field(default_factory=dict)
    action_noise: ActionNoiseConfig | None = None
    implementation: str = "sparse_rl"

    def __post_init__(self) -> None:
        _check_choice(self.algorithm, ALGORITHMS, "agent.algorithm")
        _check_choice(self.implementation, IMPLEMENTATIONS, "agent.implementation")


@dataclass
class EvalConfig:
    """Periodic evaluation on a separate env instance.

    :param freq: evaluate every ``freq`` env steps (and once at the end); 0 evaluates only at the end
    :param n_episodes: episodes per evaluation
    :param seed: the evaluation env's seed; ``None``: the run's seed + 10000
    :param deterministic: act with the policy's mean / deterministic action
    """

    freq: int = 5000
    n_episodes: int = 5
    seed: int | None = None
    deterministic: bool = True

    def __post_init__(self) -> None:
        _check_min(self.freq, 0, "eval.freq")
        _check_min(self.n_episodes, 1, "eval.n_episodes")


@dataclass
class CheckpointConfig:
    """Checkpoints of everything a resumed run needs.

    :param freq: write one every ``freq`` env steps (and one at the end); 0 only at the end
    :param keep: keep the newest ``keep`` checkpoints
    :param replay_buffer: include the replay buffer (a resume without it starts from an empty one)
    """

    freq: int = 50_000
    keep: int = 2
    replay_buffer: bool = True

    def __post_init__(self) -> None:
        _check_min(self.freq, 0, "checkpoint.freq")
        _check_min(self.keep, 1, "checkpoint.keep")


@dataclass
class SnapshotConfig:
    """Connectivity snapshots of the input layers (``connectivity/``).

    :param enabled: write snapshots
    :param every_n_steps: for dense agents (no topology updates), a snapshot every this many env
        steps; ``None``: the evaluation frequency
    """

    enabled: bool = True
    every_n_steps: int | None = None

    def __post_init__(self) -> None:
        if self.every_n_steps is not None:
            _check_min(self.every_n_steps, 1, "snapshots.every_n_steps")


@dataclass
class RunConfig:
    """Where the run goes and how it reports.

    :param root: the directory holding run directories
    :param name: the run directory's name; ``None``: ``<env>-<agent>-<sparsity>-f<noise>-s<seed>-<time>``
    :param progress_bar: show a progress bar; ``None``: when stderr is a terminal
    :param verbose: SB3's verbosity (0 quiet, 1 training logs on stdout)
    :param log_interval: episodes between two writes of SB3's logger (TensorBoard)
    :param log_formats: SB3 logger formats: ``tensorboard`` (into ``tb/``), ``csv`` (``progress.csv``),
        ``json`` (``progress.json``), ``log`` (``log.txt``) go to the run directory, ``stdout`` prints
        (also added by ``verbose: 1``)
    :param track: log to Weights & Biases too (``sparse-rl train --track``; needs ``pip install wandb``)
    :param wandb_project: the W&B project
    :param wandb_entity: the W&B entity (team or user; ``None``: your default)
    """

    root: str = "runs"
    name: str | None = None
    progress_bar: bool | None = None
    verbose: int = 0
    log_interval: int = 4
    log_formats: list[str] = field(default_factory=lambda: ["tensorboard"])
    track: bool = False
    wandb_project: str = "sparse_rl"
    wandb_entity: str | None = None

    def __post_init__(self) -> None:
        _check_min(self.verbose, 0, "run.verbose")
        _check_min(self.log_interval, 1, "run.log_interval")
        for index, name in enumerate(self.log_formats):
            _check_choice(name, LOG_FORMATS, f"run.log_formats[{index}]")
        if self.name is not None and (not self.name or "/" in self.name or self.name in (".", "..")):
            raise ConfigError(f"run.name must be a plain directory name, got {self.name!r}")


@dataclass
class ExperimentConfig:
    """One training run: everything ``sparse-rl train`` needs.

    :param env: the environment (id, noise…), see :class:`~sparse_rl.envs.factory.EnvConfig`
    :param seed: seeds the agent, the training env and (derived) the evaluation env
    :param total_timesteps: env steps of training
    :param agent: algorithm and hyperparameters
    :param sparsity: a preset name or a dict (``{preset: anf, density: 0.1}``), see
        :func:`~sparse_rl.agents.sparsity.resolve_sparsity`
    :param net_arch: hidden layer sizes of actor and critics (``policy_kwargs.net_arch``)
    :param n_envs: parallel training envs (env ``i`` seeded with ``seed + i``; evaluation uses one)
    :param vec_env: ``dummy`` (SB3's ``DummyVecEnv``) or ``subproc`` (``SubprocVecEnv``, one process per env)
    :param torch_threads: ``torch.set_num_threads`` (``None``: torch's default)
    :param device: ``cpu``, ``cuda`` or ``auto``
    :param eval: periodic evaluation
    :param checkpoint: periodic checkpoints
    :param snapshots: connectivity snapshots
    :param run: run directory and reporting
    :param description: free text, kept in the resolved config
    :param transfer_refill_steps: with ``env.permute_at_step``, empty the replay buffer at the
        permutation and act at random for this many steps before training again (ANF's transfer
        protocol: 25,000); 0 keeps the buffer and trains on
    :param method: a paper's method (``anf_sac``, ``anf_td3``, ``ds_sac``, ``ds_td3``,
        ``rigl_sac``; :data:`~sparse_rl.agents.methods.METHODS`): its agent, sparsity, hyperparameters
        and ``net_arch`` are the defaults under every other key of the config
    """

    env: EnvConfig
    seed: int = 0
    total_timesteps: int = 1_000_000
    agent: AgentConfig = field(default_factory=AgentConfig)
    sparsity: str | dict[str, Any] = "anf"
    net_arch: list[int] | dict[str, list[int]] | None = None
    n_envs: int = 1
    vec_env: str = "dummy"
    torch_threads: int | None = None
    device: str = "auto"
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    snapshots: SnapshotConfig = field(default_factory=SnapshotConfig)
    run: RunConfig = field(default_factory=RunConfig)
    description: str = ""
    transfer_refill_steps: int = 0
    method: str | None = None

    def __post_init__(self) -> None:
        _check_min(self.total_timesteps, 1, "total_timesteps")
        _check_min(self.seed, 0, "seed")
        _check_min(self.transfer_refill_steps, 0, "transfer_refill_steps")
        _check_min(self.n_envs, 1, "n_envs")
        _check_choice(self.vec_env, VEC_ENVS, "vec_env")
        if self.torch_threads is not None:
            _check_min(self.torch_threads, 1, "torch_threads")
        if self.device != "auto" and not re.fullmatch(r"cpu|cuda(:\d+)?|mps", self.device):
            raise ConfigError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {self.device!r}")
        _check_net_arch(self.net_arch, "net_arch")

    @property
    def eval_seed(self) -> int:
        """The evaluation env's seed."""
        return self.seed + 10_000 if self.eval.seed is None else self.eval.seed

    @property
    def sparsity_name(self) -> str:
        """A short name of the sparsity: the preset, or the algorithm of a preset-less dict."""
        if isinstance(self.sparsity, str):
            return self.sparsity
        return str(self.sparsity.get("preset") or self.sparsity.get("algorithm") or "custom")

    def to_dict(self) -> dict[str, Any]:
        """Plain data, loadable again by :func:`config_from_dict` (the main keys first)."""
        data = _plain(dataclasses.asdict(self))
        first = ("description", "seed", "total_timesteps", "agent", "sparsity", "net_arch", "env")
        return {**{key: data[key] for key in first}, **{k: v for k, v in data.items() if k not in first}}

    def to_yaml(self) -> str:
        """The resolved config as YAML text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)


# --------------------------------------------------------------------------------------------------
# YAML reading and composition


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, also reading ``1e-3`` / ``1e6`` as floats."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def parse_yaml(text: str, source: str = "<string>") -> Any:
    """Parse YAML text (with ``1e-3`` read as a float).

    :param text: the YAML text
    :param source: where it came from, for the error message
    :raises ConfigError: on a syntax error
    """
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ConfigError(f"{source} is not valid YAML: {_one_line(str(error))}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read one YAML file holding a mapping (an empty file is an empty mapping).

    :param path: the file
    :raises ConfigError: if it is missing, unreadable, not YAML or not a mapping
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a config file" if path.is_dir() else "does not exist"
        raise ConfigError(f"config file {str(path)!r} {what}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {str(path)!r}: {error}") from None
    data = parse_yaml(text, source=f"config file {str(path)!r}")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys, got {type(data).__name__}")
    return data


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` merged into a copy of ``base``: mappings key by key (recursively), anything else
    replaced.

    :param base: the lower layer
    :param overlay: the upper layer (wins)
    """
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def compose(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Load ``path`` with its ``defaults:`` resolved: each listed file (relative to ``path``'s
    directory) composed recursively and merged in order, then ``path``'s own keys on top.

    :param path: the config file
    :raises ConfigError: on a missing file, a cycle, or a malformed ``defaults`` list
    """
    path = Path(path)
    resolved = path.resolve()
    if resolved in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, resolved))
        raise ConfigError(f"config files include each other in a cycle: {cycle}")
    data = read_yaml(path)
    defaults = data.pop("defaults", None) or []
    if isinstance(defaults, str):
        defaults = [defaults]
    if not isinstance(defaults, list) or not all(isinstance(item, str) for item in defaults):
        raise ConfigError(f"'defaults' in {str(path)!r} must be a list of file paths, got {defaults!r}")
    merged: dict[str, Any] = {}
    for item in defaults:
        included = path.parent / item
        if not included.is_file():
            raise ConfigError(f"config file {str(included)!r} (listed in 'defaults' of {str(path)!r}) does not exist")
        merged = deep_merge(merged, compose(included, (*_chain, resolved)))
    return deep_merge(merged, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into a key path and a YAML-parsed value.

    :param text: one ``--set`` argument
    :raises ConfigError: if there is no ``=`` or the key is empty
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not sep or not key or not all(parts):
        raise ConfigError(f"--set expects KEY=VALUE with a dotted key (e.g. env.noise_fraction=0.98), got {text!r}")
    return parts, parse_yaml(raw, source=f"the value of --set {key}")


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``data`` with every ``KEY=VALUE`` override set (creating mappings on the way).

    :param data: the composed config
    :param overrides: ``--set`` arguments, applied in order
    :raises ConfigError: on a malformed override, or one that goes through a non-mapping value
    """
    result = copy.deepcopy(dict(data))
    for text in overrides:
        parts, value = parse_override(text)
        _set_path(result, parts, value)
    return result


def apply_settings(data: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with each dotted key of ``settings`` set to its (already parsed) value,
    like ``--set KEY=VALUE`` overrides given as a mapping (``{"env.noise_fraction": 0.98}``).

    :param data: the composed config
    :param settings: dotted keys and their values, applied in order
    :raises ConfigError: on an empty key part, or a key that goes through a non-mapping value
    """
    result = copy.deepcopy(dict(data))
    for key, value in settings.items():
        parts = str(key).split(".")
        if not all(parts):
            raise ConfigError(f"a setting needs a dotted key (e.g. env.noise_fraction), got {key!r}")
        _set_path(result, parts, copy.deepcopy(value))
    return result


def _set_path(result: dict[str, Any], parts: Sequence[str], value: Any) -> None:
    node = result
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            hint = f" (for a sparsity preset plus changes, set {where}.preset)" if where == "sparsity" else ""
            raise ConfigError(f"cannot set {'.'.join(parts)}: {where} is {child!r}, not a mapping{hint}")
        node = child
    node[parts[-1]] = value


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


# --------------------------------------------------------------------------------------------------
# validation


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
    return config


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


def build_dataclass(cls: type, data: Any, path: str = "") -> Any:
    """Validate plain data into the dataclass ``cls`` (recursively), with this module's messages:
    an unknown key names its path and the closest valid key, a wrong type names the type expected.
    For other typed YAML files (e.g. the benchmark's sweep files).

    :param cls: a dataclass whose fields are annotated with plain data types
    :param data: the parsed YAML (a mapping)
    :param path: the key path of ``data`` inside its file, for messages (``""``: the top level)
    :raises ConfigError: on an unknown key, a wrong type, a missing key or a bad value
    """
    return _build_dataclass(cls, data, path)


def _build_dataclass(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"config key {path or '<top level>'!r} must be a mapping, got {_describe(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _type_hints(cls)
    for key in data:
        if key not in fields:
            raise ConfigError(_unknown_key(_join(path, str(key)), str(key), list(fields)))
    kwargs = {}
    for name, f in fields.items():
        key_path = _join(path, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
                raise ConfigError(f"config key {key_path!r} is missing; it is required")
            continue
        kwargs[name] = _convert(data[name], hints.get(name, Any), key_path)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{path or 'config'}: {_one_line(str(error))}") from None


def _type_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an unresolvable annotation: check nothing for that class
        return {}


def _convert(value: Any, hint: Any, path: str) -> Any:
    """``value`` checked against (and lightly coerced to) the type ``hint``."""
    if hint is Any or hint is object:
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _build_dataclass(hint, value, path)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(hint)
        if value is None:
            if type(None) in members:
                return None
            raise _type_error(path, hint, value)
        for member in members:
            if member is type(None):
                continue
            try:
                return _convert(value, member, path)
            except ConfigError as error:
                if _is_structural(member):
                    raise error from None
        raise _type_error(path, hint, value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(path, hint, value)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _type_error(path, hint, value)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _type_error(path, hint, value)
    if hint is str:
        if isinstance(value, str):
            return value
        raise _type_error(path, hint, value)
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _type_error(path, hint, value)
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise _type_error(path, hint, value)
            return tuple(_convert(v, a, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or hint is tuple else items
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _type_error(path, hint, value)
        args = typing.get_args(hint)
        value_hint = args[1] if len(args) == 2 else Any
        return {k: _convert(v, value_hint, _join(path, str(k))) for k, v in value.items()}
    if origin is typing.Literal:
        if value in typing.get_args(hint):
            return value
        raise _type_error(path, hint, value)
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise _type_error(path, hint, value)
    return value  # an annotation we do not understand: accept


def _is_structural(hint: Any) -> bool:
    """A dataclass member of a union reports its own (more precise) error."""
    return dataclasses.is_dataclass(hint)


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    if isinstance(hint, type) and not typing.get_args(hint):
        return {"dict": "mapping", "list": "list"}.get(hint.__name__, hint.__name__)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(member) for member in typing.get_args(hint))
    if origin in (list, Sequence):
        return f"list of {_type_name(typing.get_args(hint)[0])}" if typing.get_args(hint) else "list"
    if origin is tuple:
        return "list [" + ", ".join(_type_name(a) for a in typing.get_args(hint)) + "]"
    if origin in (dict, Mapping):
        return "mapping"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    return str(hint).replace("typing.", "")


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _type_error(path: str, hint: Any, value: Any) -> ConfigError:
    return ConfigError(f"config key {path!r} expects {_type_name(hint)}, got {_describe(value)}")


def _unknown_key(path: str, key: str, valid: Sequence[str]) -> str:
    close = close_matches(key, valid, cutoff=0.5)
    hint = f"; did you mean {_join(path.rpartition('.')[0], close[0])!r}?" if close else ""
    return f"unknown config key {path!r}{hint} (valid keys here: {', '.join(sorted(valid))})"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _check_choice(value: str, allowed: Sequence[str], path: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{path} must be one of {', '.join(allowed)}; got {value!r}{did_you_mean(value, allowed)}")


def _check_min(value: int, minimum: int, path: str) -> None:
    if value < minimum:
        raise ConfigError(f"{path} must be >= {minimum}, got {value!r}")


def _check_net_arch(value: Any, path: str) -> None:
    """Hidden layer sizes must be positive integers (a list, or a list per network)."""
    if value is None:
        return
    groups = value.items() if isinstance(value, Mapping) else [(None, value)]
    for name, sizes in groups:
        where = path if name is None else f"{path}.{name}"
        if not isinstance(sizes, (list, tuple)):
            raise ConfigError(f"{where} must be a list of layer sizes (positive integers), got {sizes!r}")
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ConfigError(f"{where} must hold positive integers (hidden layer sizes), got {list(sizes)!r}")


def _check_sparsity(config: ExperimentConfig) -> None:
    from sparse_rl.agents.sparsity import resolve_sparsity

    try:
        resolve_sparsity(config.sparsity, agent=config.agent.algorithm)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"sparsity: {_one_line(str(error))}") from None


def _check_implementation(config: ExperimentConfig) -> None:
    from sparse_rl.agents.sparsity import resolve_sparsity

    if config.agent.implementation != "sb3":
        return
    if resolve_sparsity(config.sparsity, agent=config.agent.algorithm).is_sparse:
        algorithm = config.agent.algorithm.upper()
        raise ConfigError(f"agent.implementation 'sb3' trains stable_baselines3's own {algorithm}, whose networks are "
                          f"dense, but sparsity is {config.sparsity!r}; set sparsity: dense (or "
                          "agent.implementation: sparse_rl for a sparse agent)")


# --------------------------------------------------------------------------------------------------
# SB3 hyperparameters


def accepted_arguments(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword arguments ``cls(...)`` accepts, following ``**kwargs`` up the MRO.

    :param cls: a class
    """
    accepted: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            signature = inspect.signature(init)
        except (TypeError, ValueError):
            break
        open_ended = False
        for name, parameter in signature.parameters.items():
            if name == "self" or parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                open_ended = True
                continue
            accepted.setdefault(name, parameter)
        if not open_ended:
            break
    return accepted


def _annotation(function_owner: type, parameter: inspect.Parameter) -> Any:
    """The parameter's annotation evaluated in its module; ``Any`` if that is impossible."""
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return Any
    if not isinstance(annotation, str):
        return annotation
    for klass in function_owner.__mro__:
        module = inspect.getmodule(klass)
        namespace = dict(vars(typing))
        namespace.update(vars(module) if module else {})
        try:
            return eval(annotation, namespace)  # noqa: S307 - annotations of installed SB3 code
        except Exception:  # noqa: BLE001,S112 - try the next class's module
            continue
    return Any


def _check_kwargs(owner: type, values: Mapping[str, Any], path: str, reserved: Mapping[str, str],
                  special: Mapping[str, Callable[[Any, str], Any]] | None = None) -> dict[str, Any]:
    """Check ``values`` against ``owner``'s constructor: names, then types where the annotation is
    a plain data type (callables and classes cannot come from YAML)."""
    accepted = accepted_arguments(owner)
    checked = {}
    for key, value in values.items():
        key_path = _join(path, str(key))
        if key in reserved:
            raise ConfigError(f"config key {key_path!r} cannot be set here: {reserved[key]}")
        if key not in accepted:
            valid = [name for name in accepted if name not in reserved and not name.startswith("_")]
            raise ConfigError(_unknown_key(key_path, str(key), valid))
        if special and key in special:
            checked[key] = special[key](value, key_path)
            continue
        hint = _annotation(owner, accepted[key])
        checked[key] = _convert(value, _data_part(hint, key_path, value), key_path)
    return checked


def _data_part(hint: Any, path: str, value: Any) -> Any:
    """The part of ``hint`` that YAML data can satisfy (drops callables and classes)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(hint) if _is_data(m)]
        if not members or (members == [type(None)] and value is not None):
            raise ConfigError(f"config key {path!r} cannot be set from a config file (it needs a Python object)")
        return typing.Union[tuple(members)] if len(members) > 1 else members[0]  # noqa: UP007
    if not _is_data(hint):
        raise ConfigError(f"config key {path!r} cannot be set from a config file (it needs a Python object), "
                          f"got {_describe(value)}")
    return hint


def _is_data(hint: Any) -> bool:
    if hint is Any or hint is type(None):
        return True
    origin = typing.get_origin(hint) or hint
    if origin is typing.Literal:
        return True
    return origin in (bool, int, float, str, list, tuple, dict, Mapping, Sequence)


def _check_activation(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"config key {path!r} expects an activation name ({', '.join(ACTIVATIONS)}), "
                          f"got {_describe(value)}")
    _check_choice(value, ACTIVATIONS, path)
    return value


def _check_optimizer_kwargs(value: Any, path: str) -> dict[str, Any]:
    import torch

    if not isinstance(value, Mapping):
        raise _type_error(path, dict, value)
    return _check_kwargs(torch.optim.Adam, value, path, {"params": "the network's parameters"})


def _check_hyperparams(config: ExperimentConfig) -> None:
    from sparse_rl.agents import AGENTS

    agent_class = AGENTS[config.agent.algorithm]
    path = "agent.hyperparams"
    hyperparams = dict(config.agent.hyperparams)
    policy_kwargs = hyperparams.pop("policy_kwargs", None)
    checked = _check_kwargs(agent_class, hyperparams, path, RESERVED_HYPERPARAMS)
    if policy_kwargs is not None:
        if not isinstance(policy_kwargs, Mapping):
            raise _type_error(f"{path}.policy_kwargs", dict, policy_kwargs)
        policy_class = agent_class.policy_aliases["MlpPolicy"]
        if "net_arch" in policy_kwargs and config.net_arch is not None:
            raise ConfigError(f"net_arch is set twice, as 'net_arch' and as '{path}.policy_kwargs.net_arch'; "
                              "keep one (the top-level 'net_arch')")
        special: dict[str, Callable[[Any, str], Any]] = {"activation_fn": _check_activation}
        if "optimizer_class" not in policy_kwargs:
            special["optimizer_kwargs"] = _check_optimizer_kwargs
        checked["policy_kwargs"] = _check_kwargs(policy_class, policy_kwargs, f"{path}.policy_kwargs",
                                                 RESERVED_POLICY_KWARGS, special)
        _check_net_arch(checked["policy_kwargs"].get("net_arch"), f"{path}.policy_kwargs.net_arch")
    _check_hyperparam_values(checked, path)
    config.agent.hyperparams = checked


def _range(low: float | None, high: float | None, low_open: bool = False,
           integer: bool = False) -> Callable[[Any], str]:
    """A check of a number in a range: returns what is allowed when ``value`` is outside, else ``""``."""

    def check(value: Any) -> str:
        kind = "an integer" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            return kind
        if value != value or (low is not None and (value <= low if low_open else value < low)) or \
                (high is not None and value > high):
            bounds = [f"{'>' if low_open else '>='} {low:g}" if low is not None else "",
                      f"<= {high:g}" if high is not None else ""]
            return f"{kind} " + " and ".join(b for b in bounds if b)
        return ""

    return check


def _train_freq(value: Any) -> str:
    allowed = "an integer >= 1, or [N >= 1, 'step' or 'episode']"
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and not _range(1, None, integer=True)(value[0]) and value[1] in ("step", "episode"):
            return ""
        return allowed
    return allowed if _range(1, None, integer=True)(value) else ""


def _gradient_steps(value: Any) -> str:
    return "" if value == -1 and not isinstance(value, bool) else (
        "an integer >= 1, or -1 (as many as env steps)" if _range(1, None, integer=True)(value) else "")


def _ent_coef(value: Any) -> str:
    if isinstance(value, str):
        ok = value == "auto" or (value.startswith("auto_") and not _range(0, None, low_open=True)(_float(value[5:])))
        return "" if ok else "'auto', 'auto_<initial value > 0>' or a number > 0"
    return "'auto', 'auto_<initial value > 0>' or a number > 0" if _range(0, None, low_open=True)(value) else ""


def _target_entropy(value: Any) -> str:
    return "" if value == "auto" or not _range(None, None)(value) else "'auto' or a number"


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


#: checks of SB3's numeric hyperparameters: name -> returns what is allowed ("" if the value is fine)
HYPERPARAM_RANGES: dict[str, Callable[[Any], str]] = {
    "learning_rate": _range(0, None, low_open=True),
    "batch_size": _range(1, None, integer=True),
    "buffer_size": _range(1, None, integer=True),
    "learning_starts": _range(0, None, integer=True),
    "tau": _range(0, 1, low_open=True),
    "gamma": _range(0, 1),
    "train_freq": _train_freq,
    "gradient_steps": _gradient_steps,
    "policy_delay": _range(1, None, integer=True),
    "target_policy_noise": _range(0, None),
    "target_noise_clip": _range(0, None),
    "target_update_interval": _range(1, None, integer=True),
    "ent_coef": _ent_coef,
    "target_entropy": _target_entropy,
    "sde_sample_freq": _range(-1, None, integer=True),
}


def _check_hyperparam_values(hyperparams: Mapping[str, Any], path: str) -> None:
    """SB3's numeric hyperparameters in their ranges (SB3 would accept many bad ones and fail, or
    diverge, much later)."""
    for name, check in HYPERPARAM_RANGES.items():
        if name in hyperparams:
            allowed = check(hyperparams[name])
            if allowed:
                raise ConfigError(f"{path}.{name} must be {allowed}, got {hyperparams[name]!r}")


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively (YAML-safe data)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
