"""Sweep files: a grid of agents × (environment, noise fraction) × seeds, and its plan of runs.

A sweep file is YAML (see ``configs/bench/`` and ``configs/README.md``)::

    name: quick                       # default out dir: bench_runs/<name> (default: the file's stem)
    description: ANF-SAC vs SB3's SAC on a noisy Pendulum
    agents:                           # label -> experiment config files (+ settings)
      ANF-SAC:
        configs: [../quick/pendulum_sac_anf.yaml]
      SAC:
        configs: [../quick/pendulum_sac_dense.yaml]
        set: {agent.implementation: sb3}        # the real stable_baselines3.SAC
    envs:                             # label -> env config files and/or an id (default: the label)
      Pendulum-v1: {}
    noise_fractions: [0.0, 0.98]      # per env: envs.<label>.noise_fractions
    seeds: 3                          # 3 -> seeds 0, 1, 2; or a list [0, 5, 7]
    set: {total_timesteps: 20000}     # settings for every run
    keep_checkpoints: false           # delete a run's checkpoints once it has finished (default)
    run_order: [[ANF-SAC, SAC]]       # optional: groups of agents, each group over every seed in turn

The config of one run is composed in this order, later layers winning: the agent's ``configs``,
the env's ``configs``, the env's ``id``, the sweep's ``set``, the env's ``set``, the agent's
``set``, the command line's ``--set``, and last the cell: ``env.noise_fraction``, ``seed``, one
torch thread, and the run directory ``<out>/runs/<run id>``. Every run's config is validated
before anything trains.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparse_rl.experiment.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    apply_settings,
    build_dataclass,
    compose,
    config_from_dict,
    deep_merge,
    read_yaml,
)

#: labels of agents and envs become parts of directory names
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
RUNS_DIR = "runs"


@dataclass
class AgentEntry:
    """One agent of a sweep (a line of the learning-curve plots, a row per cell of the summary).

    :param configs: experiment config files (relative to the sweep file), merged in order
    :param set: settings for this agent's runs, as ``{dotted.key: value}``
    :param description: free text
    """

    configs: list[str] = field(default_factory=list)
    set: dict[str, Any] = field(default_factory=dict)
    description: str = ""


@dataclass
class EnvEntry:
    """One environment of a sweep.

    :param configs: env config files (relative to the sweep file), merged after the agent's
    :param id: the gymnasium id; ``None``: from ``configs``, else the entry's label
    :param noise_fractions: this env's noise fractions (``None``: the sweep's)
    :param set: settings for this env's runs, as ``{dotted.key: value}``
    """

    configs: list[str] = field(default_factory=list)
    id: str | None = None
    noise_fractions: list[float] | None = None
    set: dict[str, Any] = field(default_factory=dict)


@dataclass
class SweepSpec:
    """A sweep file, validated.

    :param agents: agents by label (the order is kept in tables and plots)
    :param envs: environments by label
    :param noise_fractions: noise fractions of every env that does not list its own
    :param seeds: a number of seeds (``n`` -> ``0 … n-1``) or a list of seeds
    :param set: settings for every run, as ``{dotted.key: value}``
    :param name: the sweep's name (default: the file's stem)
    :param description: free text, shown in ``summary.md``
    :param keep_checkpoints: keep a run's checkpoints once it has finished (``False``: delete them,
        keeping ``model.zip`` and ``metrics.csv``; checkpoints with replay buffers of 1M transitions
        take gigabytes, and a finished run is never resumed)
    :param run_order: groups of agent labels, every agent in exactly one: the runs of the first group
        (all its seeds, its agents side by side per seed) come before the second's, so that a sweep
        stopped part way has the comparisons that matter most for every seed; ``None``: one group
        of all agents
    """

    agents: dict[str, AgentEntry]
    envs: dict[str, EnvEntry]
    noise_fractions: list[float] = field(default_factory=lambda: [0.0])
    seeds: int | list[int] = 3
    set: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    description: str = ""
    keep_checkpoints: bool = False
    run_order: list[list[str]] | None = None

    def __post_init__(self) -> None:
        if not self.agents:
            raise ConfigError("sweep key 'agents' is empty; give at least one agent (label: {configs: [...]})")
        if not self.envs:
            raise ConfigError("sweep key 'envs' is empty; give at least one env (e.g. Pendulum-v1: {})")
        for kind, labels in (("agents", self.agents), ("envs", self.envs)):
            for label in labels:
                if not LABEL.match(str(label)):
                    raise ConfigError(f"sweep {kind} label {label!r} must be a plain name (letters, digits, "
                                      "'_', '.', '+', '-'; it names directories)")
        for label, agent in self.agents.items():
            if not agent.configs:
                raise ConfigError(f"sweep key 'agents.{label}.configs' is empty; list the agent's config files")
        fractions = [("noise_fractions", self.noise_fractions)]
        fractions += [(f"envs.{label}.noise_fractions", env.noise_fractions) for label, env in self.envs.items()
                      if env.noise_fractions is not None]
        for key, values in fractions:
            if not values:
                raise ConfigError(f"sweep key {key!r} is empty; give at least one noise fraction (e.g. [0.0])")
            for value in values:
                if not 0.0 <= value < 1.0:
                    raise ConfigError(f"sweep key {key!r}: a noise fraction must be in [0, 1), got {value!r}")
            if len(set(values)) != len(values):
                raise ConfigError(f"sweep key {key!r} lists a noise fraction twice: {values!r}")
        if self.run_order is not None:
            listed = [label for group in self.run_order for label in group]
            unknown = [label for label in listed if label not in self.agents]
            if unknown or sorted(listed) != sorted(self.agents) or any(not group for group in self.run_order):
                raise ConfigError(f"sweep key 'run_order' must list every agent exactly once, in non-empty groups "
                                  f"(agents: {', '.join(self.agents)}), got {self.run_order!r}")
        seeds = self.seed_list
        if not seeds or any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
            raise ConfigError(f"sweep key 'seeds' must be a number >= 1 or a list of distinct seeds >= 0, "
                              f"got {self.seeds!r}")

    @property
    def agent_groups(self) -> list[list[str]]:
        """The agents in the order their runs are planned (:attr:`run_order`)."""
        return [list(group) for group in self.run_order] if self.run_order else [list(self.agents)]

    @property
    def seed_list(self) -> list[int]:
        """The seeds, as a list."""
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def env_noise_fractions(self, label: str) -> list[float]:
        """The noise fractions of env ``label``."""
        own = self.envs[label].noise_fractions
        return list(self.noise_fractions if own is None else own)


@dataclass(frozen=True)
class RunTask:
    """One run of a sweep: its identity in the grid and its resolved, validated config.

    :param run_id: ``<env>-f<noise>-<agent>-s<seed>``, also the run directory's name
    :param agent: the agent's label
    :param env: the env's label
    :param noise_fraction: the cell's noise fraction
    :param seed: the seed
    :param config: the resolved config (plain data, :meth:`ExperimentConfig.to_dict`)
    :param run_dir: where the run directory goes
    :param keep_checkpoints: keep the run's checkpoints once it has finished
    """

    run_id: str
    agent: str
    env: str
    noise_fraction: float
    seed: int
    config: dict[str, Any]
    run_dir: str
    keep_checkpoints: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what a worker process receives)."""
        return {"run_id": self.run_id, "agent": self.agent, "env": self.env, "noise_fraction": self.noise_fraction,
                "seed": self.seed, "config": self.config, "run_dir": self.run_dir,
                "keep_checkpoints": self.keep_checkpoints}


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep file.

    :param path: the YAML file
    :raises ConfigError: on a missing file, bad YAML, an unknown key (with the closest valid one),
        a wrong type or a bad value
    """
    data = read_yaml(path)
    envs = data.get("envs")
    if isinstance(envs, list) and all(isinstance(item, str) for item in envs):
        data["envs"] = dict.fromkeys(envs)  # a list of ids: one entry each
    for kind in ("agents", "envs"):
        if isinstance(data.get(kind), Mapping):
            data[kind] = {label: ({} if entry is None else entry) for label, entry in data[kind].items()}
    for key in ("agents", "envs"):
        if key not in data:
            raise ConfigError(f"sweep file {str(path)!r} has no {key!r}: a sweep needs agents and envs (see "
                              "configs/bench/quick.yaml)")
    try:
        spec: SweepSpec = build_dataclass(SweepSpec, data)
    except ConfigError as error:
        raise ConfigError(f"sweep file {str(path)!r}: {_sweep_words(str(error))}") from None
    if spec.name is None:
        spec.name = Path(path).stem
    return spec


def _sweep_words(message: str) -> str:
    return message.replace("config key", "sweep key")


def run_id(env: str, noise_fraction: float, agent: str, seed: int) -> str:
    """The name of a run in a sweep: ``<env>-f<noise>-<agent>-s<seed>``.

    :param env: the env's label
    :param noise_fraction: the noise fraction
    :param agent: the agent's label
    :param seed: the seed
    """
    return f"{env}-f{noise_fraction:g}-{agent}-s{seed}"


def plan_runs(spec: SweepSpec, sweep_file: str | Path, out_dir: str | Path,
              overrides: Sequence[str] = ()) -> list[RunTask]:
    """Every run of the sweep with its config composed and validated, in the order env, noise
    fraction, agent group (:attr:`SweepSpec.run_order`), seed, agent (so that a partly done sweep
    has whole cells).

    :param spec: the sweep
    :param sweep_file: the sweep file (config paths are relative to its directory)
    :param out_dir: the sweep's output directory (run directories go to ``<out>/runs``)
    :param overrides: ``KEY=VALUE`` settings for every run (the command line's ``--set``)
    :raises ConfigError: naming the run and the problem, if any run's config does not validate
    """
    base = Path(sweep_file).parent
    runs_root = str(Path(out_dir).resolve() / RUNS_DIR)  # absolute: workers may run in another directory
    agent_data = {label: _compose_files(agent.configs, base, f"agents.{label}.configs")
                  for label, agent in spec.agents.items()}
    tasks = []
    for env_label, env in spec.envs.items():
        env_data = _compose_files(env.configs, base, f"envs.{env_label}.configs")
        for fraction in spec.env_noise_fractions(env_label):
            for group, seed in ((group, seed) for group in spec.agent_groups for seed in spec.seed_list):
                for agent_label, agent in ((label, spec.agents[label]) for label in group):
                    name = run_id(env_label, fraction, agent_label, seed)
                    where = f"run {name} (agent {agent_label}, env {env_label})"
                    try:
                        data = deep_merge(agent_data[agent_label], env_data)
                        if env.id is not None or not env.configs:
                            data = apply_settings(data, {"env.id": env.id or env_label})
                        for settings in (spec.set, env.set, agent.set):
                            data = apply_settings(data, settings)
                        data = apply_overrides(data, overrides)
                        data = apply_settings(data, {"env.noise_fraction": fraction, "seed": seed,
                                                     "torch_threads": 1, "run.root": runs_root, "run.name": name,
                                                     "run.progress_bar": False})
                        config: ExperimentConfig = config_from_dict(data)
                    except ConfigError as error:
                        raise ConfigError(f"{where}: {error}") from None
                    tasks.append(RunTask(name, agent_label, env_label, fraction, seed, config.to_dict(),
                                         str(Path(runs_root) / name), spec.keep_checkpoints))
    return tasks


def _compose_files(files: Sequence[str], base: Path, key: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in files:
        path = base / name
        if not path.is_file():
            raise ConfigError(f"sweep key {key!r}: config file {str(path)!r} does not exist")
        data = deep_merge(data, compose(path))
    return data
