"""The config schema: one dataclass per section, each checking its own values on construction."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from sparse_rl.agents.loading import AGENT_KINDS, IMPLEMENTATIONS
from sparse_rl.envs.factory import EnvConfig
from sparse_rl.experiment.config.typed import _check_choice, _check_min, _check_net_arch, _plain
from sparse_rl.experiment.errors import ConfigError

#: deprecated name of :data:`~sparse_rl.agents.loading.AGENT_KINDS` (``agent.algorithm``; not the DST
#: algorithms of :data:`sparse_rl.sparse.ALGORITHMS`)
ALGORITHMS = AGENT_KINDS
ACTION_NOISE_KINDS = ("normal", "ornstein_uhlenbeck")
ACTIVATIONS = ("relu", "tanh", "elu", "leaky_relu", "gelu", "silu")
#: ``vec_env``: SB3's ``DummyVecEnv`` (envs stepped in turn in this process) or ``SubprocVecEnv``
VEC_ENVS = ("dummy", "subproc")
#: ``run.log_formats``: SB3 logger output formats (``tensorboard`` writes to the run's tb/)
LOG_FORMATS = ("tensorboard", "csv", "json", "stdout", "log")
#: the most env steps a run may ask for (10 billion: years at the speeds measured here)
MAX_TIMESTEPS = 10**10
#: the most training envs (each one a copy of the environment, stepped in turn or in its own process)
MAX_ENVS = 1024
#: seeds are what NumPy and Gymnasium take: integers in [0, 2**32)
MAX_SEED = 2**32 - 1


def _check_seed(value: int, path: str) -> None:
    if not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{path} must be an integer in [0, {MAX_SEED}], got {value!r}")


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
        _check_choice(self.algorithm, AGENT_KINDS, "agent.algorithm")
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
        if self.seed is not None:
            _check_seed(self.seed, "eval.seed")


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
        if self.total_timesteps > MAX_TIMESTEPS:
            raise ConfigError(f"total_timesteps must be <= {MAX_TIMESTEPS:.0e} (more than a run here can do), got "
                              f"{self.total_timesteps!r}")
        _check_seed(self.seed, "seed")
        _check_min(self.transfer_refill_steps, 0, "transfer_refill_steps")
        _check_min(self.n_envs, 1, "n_envs")
        if self.n_envs > MAX_ENVS:
            raise ConfigError(f"n_envs must be <= {MAX_ENVS} (each env is a copy of the environment in memory), got "
                              f"{self.n_envs!r}")
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
