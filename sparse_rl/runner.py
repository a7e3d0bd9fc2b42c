"""Run an experiment: build env and agent from an :class:`~sparse_rl.config.ExperimentConfig`, train
with evaluation, checkpoints, connectivity snapshots and a NaN guard into a run directory; resume a
run from its last checkpoint; evaluate a finished run.

Run directory (other tools build on these names)::

    runs/<env>-<agent>-<sparsity>-f<noise>-s<seed>-<YYYYmmdd-HHMMSS>/
      config.yaml      the resolved config (``sparse-rl train`` loads it again)
      metrics.csv      one row per evaluation (see :data:`~sparse_rl.callbacks.METRICS_FIELDS`)
      tb/              TensorBoard events (SB3's logger; ``sparsity/`` scalars come from the agents)
      checkpoints/     ``step_<N>/`` atomic checkpoints (see :mod:`sparse_rl.checkpoint`)
      connectivity/    input-layer snapshots (:mod:`sparse_rl.analysis.snapshots`)
      model.zip        the final model
      evaluations.npz  every evaluation's episode returns and lengths (SB3's ``EvalCallback`` format)
      best_model.zip   the model at its best evaluation (:mod:`sparse_rl.evaluations`)
      progress.csv …   the SB3 logger formats chosen in ``run.log_formats`` (:mod:`sparse_rl.tracking`)

Every sparsity, ``dense`` included, trains a :class:`~sparse_rl.agents.SparseSAC` /
:class:`~sparse_rl.agents.SparseTD3`: with ``dense`` they are parameter-identical to SB3's SAC /
TD3 for the same seed, and one code path keeps checkpoints and logs alike. With
``agent.implementation: sb3`` (and ``sparsity: dense``) the run trains ``stable_baselines3.SAC`` /
``TD3`` themselves instead, the reference baseline of the benchmarks, through the same code path;
on an extremely noisy env they get :class:`~sparse_rl.agents.buffers.NoiseFreeReplayBuffer` (the
same samples as SB3's buffer, without storing the noise) unless ``agent.hyperparams.store_noise``.
"""

from __future__ import annotations

import dataclasses
import errno
import io
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sparse_rl.callbacks import (
    CheckpointCallback,
    EvalCallback,
    InterruptCallback,
    Interrupted,
    MetricsLog,
    NanGuardCallback,
    ProgressBarCallback,
    RefillAfterPermutation,
    TopologyLog,
    filtering_columns,
)
from sparse_rl.checkpoint import (
    CHECKPOINTS,
    MODEL_FILE,
    Checkpoint,
    CheckpointError,
    RunWriteError,
    check_model_algorithm,
    env_state,
    latest_checkpoint,
    load_model,
    read_checkpoint,
    remove_partial,
    restore_env_state,
    restore_rng,
)
from sparse_rl.config import ConfigError, ExperimentConfig, UserError, config_from_dict, load_config
from sparse_rl.resources import check_resources
from sparse_rl.runlock import run_lock

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
TOPOLOGY_FILE = "topology.csv"
TB_DIR = "tb"
CONNECTIVITY_DIR = "connectivity"
FINAL_MODEL = "model.zip"

#: config keys a resumed run may change (anything else must equal the checkpoint's config)
RESUMABLE_CHANGES = ("total_timesteps", "eval", "checkpoint", "snapshots", "run", "description", "torch_threads",
                     "device", "agent.action_noise", "agent.hyperparams")
#: hyperparameters that shape the networks or the replay buffer: fixed once a run has started
FIXED_HYPERPARAMS = ("agent.hyperparams.policy_kwargs", "agent.hyperparams.buffer_size",
                     "agent.hyperparams.optimize_memory_usage", "agent.hyperparams.replay_buffer_class",
                     "agent.hyperparams.replay_buffer_kwargs", "agent.hyperparams.n_steps")

#: ``sparse-rl demo``: ANF-SAC on Pendulum-v1 with 90% of its inputs noise, about a minute on 2 cores.
DEMO_CONFIG: dict[str, Any] = {
    "description": "ANF-SAC on Pendulum-v1 whose observation is 90% noise features",
    "seed": 0,
    "total_timesteps": 5000,
    "agent": {"algorithm": "sac", "hyperparams": {
        "learning_rate": 1e-3, "batch_size": 128, "learning_starts": 500, "gamma": 0.98, "tau": 0.02,
        "ent_coef": "auto", "buffer_size": 50_000}},
    "sparsity": {"preset": "anf", "update_interval": 250},
    "net_arch": [64, 64],
    "torch_threads": 1,
    "env": {"id": "Pendulum-v1", "noise_fraction": 0.9},
    "eval": {"freq": 1000, "n_episodes": 3},
    "checkpoint": {"freq": 1000, "keep": 1},
    "snapshots": {"every_n_steps": 1000},
}


#: the errors of a write that the user can fix: a full disk, a quota, a read-only file system
_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)


class TrainingDiverged(UserError):
    """A loss or a parameter became NaN or infinite: the run stopped, its last good checkpoint kept."""

    exit_code = 3


class TrainingInterrupted(UserError):
    """The user interrupted training (Ctrl-C)."""

    exit_code = 130


@dataclass
class RunResult:
    """What a training (or resume) produced.

    :param run_dir: the run directory
    :param num_timesteps: env steps done
    :param last_eval: mean and std of the last evaluation's return (``None`` if none)
    :param completed: whether the run reached its ``total_timesteps``
    :param message: a one-line summary
    """

    run_dir: Path
    num_timesteps: int
    last_eval: tuple[float, float] | None
    completed: bool
    message: str = ""


@dataclass
class EvaluationResult:
    """The outcome of :func:`evaluate_run`.

    :param mean: mean return
    :param std: standard deviation of the return
    :param returns: every episode's return
    :param model_path: the model evaluated
    :param num_timesteps: the env steps that model was trained for
    :param video: the video recorded (``None`` if none)
    """

    mean: float
    std: float
    returns: list[float]
    model_path: Path
    num_timesteps: int
    video: Path | None = None


# --------------------------------------------------------------------------------------------------
# run directories


def run_name(config: ExperimentConfig, now: float | None = None) -> str:
    """``<env>-<agent>-<sparsity>-f<noise>-s<seed>-<YYYYmmdd-HHMMSS>`` (or ``run.name``).

    :param config: the experiment
    :param now: the time stamp (seconds since the epoch; default: now)
    """
    if config.run.name:
        return config.run.name
    env = "".join(c if c.isalnum() or c in "-_." else "_" for c in config.env.id)
    noise = f"{config.env.noise_fraction:g}" if config.env.n_noise is None else f"{config.env.n_noise}n"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    sparsity = "sb3" if config.agent.implementation == "sb3" else config.sparsity_name
    return f"{env}-{config.agent.algorithm}-{sparsity}-f{noise}-s{config.seed}-{stamp}"


def create_run_dir(config: ExperimentConfig) -> Path:
    """Make a new, empty run directory under ``run.root`` (a ``-2``, ``-3``… suffix if the name is
    taken) with its sub-directories, and write ``config.yaml`` into it.

    :param config: the experiment
    :raises UserError: if ``run.name`` is given and already exists
    """
    root = Path(config.run.root)
    base = run_name(config)
    for attempt in range(1, 1000):
        path = root / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            path.mkdir(parents=True, exist_ok=False)
            break
        except FileExistsError:
            if config.run.name:
                raise UserError(f"run directory {str(path)!r} already exists; choose another run.name, or resume it "
                                f"with: sparse-rl train --resume {path}") from None
        except OSError as error:
            raise UserError(f"cannot create the run directory {str(path)!r}: {error}") from None
    else:  # pragma: no cover - a thousand runs in one second
        raise UserError(f"cannot find a free run directory name under {str(root)!r}")
    for sub in (TB_DIR, CHECKPOINTS, CONNECTIVITY_DIR):
        (path / sub).mkdir()
    write_config(config, path)
    return path


def write_config(config: ExperimentConfig, run_dir: Path) -> None:
    """Write the resolved config to ``run_dir/config.yaml`` (atomically).

    :param config: the experiment
    :param run_dir: the run directory
    """
    temporary = run_dir / f".{CONFIG_FILE}.tmp"
    temporary.write_text(config.to_yaml(), encoding="utf-8")
    os.replace(temporary, run_dir / CONFIG_FILE)


def require_run_dir(path: str | Path) -> Path:
    """``path`` if it is a run directory (it holds ``config.yaml``), else a :class:`UserError`.

    :param path: the directory given by the user
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"run directory {str(path)!r} does not exist")
    if not path.is_dir():
        raise UserError(f"{str(path)!r} is a file, not a run directory (to start a run from a config file use: "
                        f"sparse-rl train {path})")
    if not (path / CONFIG_FILE).is_file():
        raise UserError(f"{str(path)!r} is not a run directory: it has no {CONFIG_FILE}. Give a directory made by "
                        "'sparse-rl train', e.g. runs/<name>")
    return path


def load_run_config(run_dir: Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """The run's ``config.yaml`` (with ``--set`` overrides), validated.

    :param run_dir: a run directory
    :param overrides: ``KEY=VALUE`` strings
    """
    try:
        return load_config(run_dir / CONFIG_FILE, overrides)
    except ConfigError as error:
        raise ConfigError(f"the run's {CONFIG_FILE} does not load: {error}") from None


# --------------------------------------------------------------------------------------------------
# building env and agent


def build_env(config: ExperimentConfig, seed: int, permuted: bool | None = None, training: bool = False,
              render_mode: str | None = None) -> Any:
    """A VecEnv (each env with SB3's ``Monitor``) of the configured environment: one env in a
    ``DummyVecEnv``, or for training (``training=True``) the config's ``n_envs`` in its ``vec_env``
    class, env ``i`` seeded with ``seed + i``.

    :param config: the experiment
    :param seed: seeds its resets, action space and noise
    :param permuted: for an env with a feature permutation, force the phase (``True``: permuted from
        the start, ``False``: never); ``None`` keeps the config's schedule
    :param training: build the training envs (``n_envs``, ``vec_env``) instead of one
    :param render_mode: gymnasium's ``render_mode`` (e.g. ``rgb_array`` for videos)
    :raises ConfigError: if the env cannot be built
    """
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    env_config = config.env
    if permuted is not None and env_config.permute_at_step is not None:
        env_config = dataclasses.replace(env_config, permute_at_step=0 if permuted else None)
    if render_mode is not None:
        env_config = dataclasses.replace(env_config, make_kwargs={**env_config.make_kwargs, "render_mode": render_mode})
    n_envs = config.n_envs if training else 1
    first = _make_one_env(config.env.id, env_config, seed)  # built here: a config error shows before any process
    factories = [lambda: Monitor(first)] + [
        (lambda i=i: Monitor(_make_one_env(config.env.id, env_config, seed + i))) for i in range(1, n_envs)]
    if training and config.vec_env == "subproc":
        first.close()
        factories[0] = lambda: Monitor(_make_one_env(config.env.id, env_config, seed))
        vec_env = SubprocVecEnv(factories)
    else:
        vec_env = DummyVecEnv(factories)
    vec_env.seed(seed)
    return vec_env


def _make_one_env(env_id: str, env_config: Any, seed: int) -> Any:
    from sparse_rl.envs.factory import make_env

    try:
        return make_env(env_config, seed=seed)
    except (ValueError, TypeError, ImportError) as error:
        raise ConfigError(f"env: cannot build {env_id!r}: {' '.join(str(error).split())}") from None
    except Exception as error:  # noqa: BLE001 - gymnasium raises many kinds (e.g. a missing dependency)
        raise ConfigError(f"env: cannot build {env_id!r}: {type(error).__name__}: {error}") from None


def agent_class(config: ExperimentConfig) -> type:
    """:class:`~sparse_rl.agents.SparseSAC` or :class:`~sparse_rl.agents.SparseTD3`; with
    ``agent.implementation: sb3``, ``stable_baselines3.SAC`` or ``TD3``.

    :param config: the experiment
    """
    if config.agent.implementation == "sb3":
        from stable_baselines3 import SAC, TD3

        return {"sac": SAC, "td3": TD3}[config.agent.algorithm]
    from sparse_rl.agents import AGENTS

    return AGENTS[config.agent.algorithm]


def agent_kwargs(config: ExperimentConfig, n_actions: int) -> dict[str, Any]:
    """Keyword arguments of the agent's constructor from the config (``policy``/``env`` aside).

    :param config: the experiment
    :param n_actions: the action dimension (for the exploration noise)
    """
    import torch.nn as nn

    kwargs = {key: value for key, value in config.agent.hyperparams.items() if key != "policy_kwargs"}
    policy_kwargs = dict(config.agent.hyperparams.get("policy_kwargs") or {})
    if config.net_arch is not None:
        policy_kwargs["net_arch"] = config.net_arch
    activations = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU,
                   "silu": nn.SiLU}
    if isinstance(policy_kwargs.get("activation_fn"), str):
        policy_kwargs["activation_fn"] = activations[policy_kwargs["activation_fn"]]
    if isinstance(policy_kwargs.get("net_arch"), tuple):
        policy_kwargs["net_arch"] = list(policy_kwargs["net_arch"])
    if isinstance(kwargs.get("train_freq"), list):
        kwargs["train_freq"] = tuple(kwargs["train_freq"])
    kwargs.update(policy_kwargs=policy_kwargs, action_noise=action_noise(config, n_actions),
                  sparsity=config.sparsity, seed=config.seed, device=config.device, verbose=config.run.verbose)
    if config.agent.implementation == "sb3":
        del kwargs["sparsity"]
        kwargs.pop("store_noise", None)
    return kwargs


def sb3_replay_buffer(config: ExperimentConfig, env: Any) -> dict[str, Any]:
    """For ``agent.implementation: sb3`` on an extremely noisy env: the ``replay_buffer_class`` /
    ``replay_buffer_kwargs`` that keep SB3's agent from storing the noise (as SparseSAC/SparseTD3
    do by themselves); empty without noise or with ``agent.hyperparams.store_noise: true``.

    :param config: the experiment
    :param env: the training VecEnv
    """
    from sparse_rl.agents.buffers import NoiseFreeReplayBuffer

    if config.agent.hyperparams.get("store_noise"):
        return {}
    buffer_kwargs = NoiseFreeReplayBuffer.from_env(env)
    if buffer_kwargs is None:
        return {}
    return {"replay_buffer_class": NoiseFreeReplayBuffer, "replay_buffer_kwargs": buffer_kwargs}


def action_noise(config: ExperimentConfig, n_actions: int) -> Any:
    """The exploration noise object for ``agent.action_noise`` (``None`` if not set).

    :param config: the experiment
    :param n_actions: the action dimension
    """
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    noise = config.agent.action_noise
    if noise is None:
        return None
    kind = {"normal": NormalActionNoise, "ornstein_uhlenbeck": OrnsteinUhlenbeckActionNoise}[noise.kind]
    return kind(mean=np.zeros(n_actions), sigma=noise.sigma * np.ones(n_actions))


def build_model(config: ExperimentConfig, env: Any) -> Any:
    """A new agent for ``config`` on ``env``.

    :param config: the experiment
    :param env: the training VecEnv
    :raises ConfigError: if SB3 rejects a hyperparameter value
    """
    cls = agent_class(config)
    kwargs = agent_kwargs(config, int(np.prod(env.action_space.shape)))
    if config.agent.implementation == "sb3":
        kwargs.update(sb3_replay_buffer(config, env))
    try:
        return cls("MlpPolicy", env, **kwargs)
    except (ValueError, TypeError, AssertionError, KeyError) as error:
        raise ConfigError(f"cannot build a {cls.__name__} from agent.hyperparams / sparsity / net_arch: "
                          f"{type(error).__name__}: {' '.join(str(error).split())}") from None


def _set_threads(config: ExperimentConfig) -> None:
    """Set torch's threads, and check the device (before anything is built)."""
    check_device(config)
    if config.torch_threads is not None:
        import torch

        torch.set_num_threads(config.torch_threads)


def check_device(config: ExperimentConfig) -> None:
    """A :class:`ConfigError` if ``device`` names an accelerator this machine lacks (torch would
    otherwise fail late, or SB3 fall back to the CPU without a word).

    :param config: the experiment
    """
    import torch

    device = config.device
    if device.startswith("cuda"):
        index = int(device.split(":")[1]) if ":" in device else 0
        if not torch.cuda.is_available():
            raise ConfigError(f"device is {device!r} but torch finds no CUDA GPU here (torch {torch.__version__}); "
                              "use device: cpu, or auto")
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device is {device!r} but this machine has {torch.cuda.device_count()} CUDA GPU(s); "
                              f"use cuda:0..cuda:{torch.cuda.device_count() - 1}")
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError("device is 'mps' but torch finds no Apple GPU (MPS) here; use device: cpu, or auto")


# --------------------------------------------------------------------------------------------------
# training


class _Session:
    """One training segment (a fresh run, or a resumed one) in a run directory.

    :param config: the experiment
    :param run_dir: the run directory
    :param model: the agent (new, or loaded from a checkpoint)
    :param env: its training VecEnv
    :param resumed_from: the checkpoint it continues (``None`` for a new run)
    :param show_progress: progress bar override (``None``: as configured)
    """

    def __init__(self, config: ExperimentConfig, run_dir: Path, model: Any, env: Any, resumed_from: Checkpoint | None,
                 show_progress: bool | None) -> None:
        self.config = config
        self.run_dir = run_dir
        self.model = model
        self.env = env
        self.resumed_from = resumed_from
        self.show_progress = show_progress
        self.resumes = 0 if resumed_from is None else int(resumed_from.state.get("resumes", 0)) + 1
        self._eval_envs: dict[bool | None, Any] = {}

    def eval_env(self, step: int) -> Any:
        """The evaluation env for an evaluation at ``step``: a separate instance in the training env's
        permutation phase, seeded with the evaluation seed plus ``step`` (so a resumed run evaluates
        exactly as an uninterrupted one would)."""
        permuted: bool | None = None
        if self.config.env.permute_at_step is not None:
            permuted = bool(_env_attribute(self.env, "permuted", False))
        if permuted not in self._eval_envs:
            self._eval_envs[permuted] = build_env(self.config, self.config.eval_seed, permuted=permuted)
        env = self._eval_envs[permuted]
        env.seed(self.config.eval_seed + step)
        return env

    def state(self) -> dict[str, Any]:
        """The run state a checkpoint stores beside the model (counters, config, env wrappers)."""
        return {
            "config": self.config.to_dict(),
            "episodes": int(getattr(self.model, "_episode_num", 0)),
            "gradient_steps": int(getattr(self.model, "_n_updates", 0)),
            "wall_time_s": self.evaluation.wall_time,
            "metrics_rows": len(self.metrics.rows()),
            "last_eval": list(self.evaluation.last_result) if self.evaluation.last_result else None,
            "env_state": env_state(self.env),
            "resumes": self.resumes,
            "sparse_rl_version": _version(),
        }

    def callbacks(self) -> list[Any]:
        """NaN guard, evaluation, checkpoints, connectivity snapshots and progress bar, in the order
        they must run (the guard first, so the others can ask it)."""
        config = self.config
        self.metrics = MetricsLog(self.run_dir / METRICS_FILE, _metric_fields(self.model))
        self.guard = NanGuardCallback()
        offset = float(self.resumed_from.state.get("wall_time_s", 0.0)) if self.resumed_from else 0.0
        self.evaluation = EvalCallback(self.eval_env, self.metrics, config.eval.freq, config.eval.n_episodes,
                                       deterministic=config.eval.deterministic, guard=self.guard,
                                       wall_time_offset=offset, extra=filtering_columns, verbose=config.run.verbose)
        if hasattr(self.model, "add_topology_listener"):
            TopologyLog(self.run_dir / TOPOLOGY_FILE, self.model)
        if self.resumed_from and self.resumed_from.state.get("last_eval"):
            self.evaluation.last_result = tuple(self.resumed_from.state["last_eval"])  # type: ignore[assignment]
        self.checkpoints = CheckpointCallback(
            self.run_dir / CHECKPOINTS, config.checkpoint.freq, config.checkpoint.keep, self.state, guard=self.guard,
            replay_buffer=config.checkpoint.replay_buffer, verbose=config.run.verbose)
        from sparse_rl.evaluations import EvalArchiveCallback

        archive = EvalArchiveCallback(self.evaluation, self.run_dir)  # evaluations.npz, best_model.zip
        callbacks: list[Any] = [self.guard, BindNoiseFreeBuffer(), self.evaluation, archive, self.checkpoints]
        if config.env.permute_at_step is not None and config.transfer_refill_steps > 0:
            callbacks.insert(1, RefillAfterPermutation(config.env.permute_at_step, config.transfer_refill_steps))
        snapshots = self._snapshot_callback()
        if snapshots is not None:
            callbacks.append(snapshots)
        self.interrupt = InterruptCallback(self.checkpoints)
        callbacks.append(self.interrupt)
        show = config.run.progress_bar if self.show_progress is None else self.show_progress
        if show is None:
            show = sys.stderr.isatty()
        self.progress = ProgressBarCallback(config.total_timesteps, self.evaluation) if show else None
        if self.progress is not None:
            callbacks.append(self.progress)
        return callbacks

    def _snapshot_callback(self) -> Any:
        if not self.config.snapshots.enabled:
            return None
        try:
            from sparse_rl.analysis.snapshots import ConnectivitySnapshotCallback
        except ImportError:  # the analysis package is optional for training
            print("warning: sparse_rl.analysis.snapshots is not available; no connectivity snapshots",
                  file=sys.stderr)
            return None
        every = self.config.snapshots.every_n_steps
        sparsity = getattr(self.model, "sparsity", None)  # SB3's own agents have none: dense
        if every is None and (sparsity is None or not sparsity.is_sparse):
            every = self.config.eval.freq or None
        return ConnectivitySnapshotCallback(self.run_dir / CONNECTIVITY_DIR, every_n_steps=every)

    def learn(self) -> RunResult:
        """Train up to ``total_timesteps``, then save the final model.

        :raises TrainingDiverged: when the guard found a non-finite loss or parameter
        :raises TrainingInterrupted: on Ctrl-C
        """
        from stable_baselines3.common.callbacks import CallbackList

        from sparse_rl.tracking import finish_tracking, make_logger, start_tracking

        config = self.config
        formats = list(config.run.log_formats) + (["stdout"] if config.run.verbose else [])
        wandb_run = start_tracking(config, self.run_dir) if config.run.track else None
        self.model.set_logger(make_logger(self.run_dir, formats, wandb_run))
        callbacks = CallbackList(self.callbacks())
        start = int(self.model.num_timesteps)
        remaining = config.total_timesteps - start
        try:
            self.model.learn(remaining, callback=callbacks, log_interval=config.run.log_interval,
                             reset_num_timesteps=self.resumed_from is None)
        except (ValueError, RuntimeError):
            # non-finite weights often fail inside SB3 (e.g. a Normal with a NaN mean) before a loss shows it
            if self.guard.check(parameters=True):
                raise
        except Interrupted as stop:
            where = f"checkpoint {stop.checkpoint} written" if stop.checkpoint else "no checkpoint could be written"
            raise TrainingInterrupted(f"interrupted at step {self.model.num_timesteps}; {where}. Continue with: "
                                      f"sparse-rl train --resume {self.run_dir}") from None
        except KeyboardInterrupt:
            last = self.checkpoints.last_path or (self.resumed_from.path if self.resumed_from else None)
            where = f"the last checkpoint is {last}" if last else "no checkpoint was written yet"
            raise TrainingInterrupted(f"interrupted at step {self.model.num_timesteps}; {where}. Continue with: "
                                      f"sparse-rl train --resume {self.run_dir}") from None
        except (RunWriteError, OSError) as error:
            if isinstance(error, OSError) and error.errno not in _WRITE_ERRORS:
                raise
            if isinstance(error, OSError):
                error = RunWriteError(f"cannot write {error.filename or 'a file of the run'}: {error.strerror}")
            raise type(error)(f"{error}. Training stopped at step {self.model.num_timesteps}; make room (or make the "
                              f"directory writable), then continue with: sparse-rl train --resume {self.run_dir}") \
                from None
        finally:
            self.interrupt.restore()
            self.model.logger.close()
            finish_tracking(wandb_run)
            if config.vec_env == "subproc":
                self.env.close()  # its worker processes
            if self.progress is not None and self.progress.bar is not None:
                self.progress.bar.close()
        if self.guard.tripped:
            last = self.checkpoints.last_path or (self.resumed_from.path if self.resumed_from else None)
            kept = f"the last good checkpoint, {last}, is kept" if last else "no checkpoint had been written"
            raise TrainingDiverged(
                f"training diverged at step {self.guard.step}: {self.guard.reason}. The run was stopped and {kept}. "
                "Start again with a lower learning rate, or resume from that checkpoint with one: sparse-rl train "
                f"--resume {self.run_dir} --set agent.hyperparams.learning_rate=...")
        save_final_model(self.model, self.run_dir)
        result = self.evaluation.last_result
        summary = f"run finished at step {self.model.num_timesteps}" + (
            f": eval return {result[0]:.2f} ± {result[1]:.2f}" if result else "")
        return RunResult(self.run_dir, int(self.model.num_timesteps), result, True, summary)


class BindNoiseFreeBuffer(BaseCallback):
    """Bind a :class:`~sparse_rl.agents.buffers.NoiseFreeReplayBuffer` to the training env's noise
    streams when training starts (before the first transition is stored). SparseSAC/SparseTD3 do it
    themselves; SB3's own agents given that buffer (``agent.implementation: sb3``) need this."""

    def _on_training_start(self) -> None:
        from sparse_rl.agents.buffers import NoiseFreeReplayBuffer

        buffer = getattr(self.model, "replay_buffer", None)
        if isinstance(buffer, NoiseFreeReplayBuffer):
            buffer.bind_to(self.model.get_env())

    def _on_step(self) -> bool:
        return True


def save_final_model(model: Any, run_dir: Path) -> Path:
    """Save ``model`` as ``run_dir/model.zip`` (written to a temporary file, then renamed).

    :param model: the trained agent
    :param run_dir: the run directory
    """
    temporary = run_dir / f".{FINAL_MODEL}.tmp.zip"
    model.save(temporary)
    os.replace(temporary, run_dir / FINAL_MODEL)
    return run_dir / FINAL_MODEL


def train(config: ExperimentConfig, progress_bar: bool | None = None,
          on_run_dir: Callable[[Path], None] | None = None) -> RunResult:
    """Train a new run of ``config`` in a new run directory.

    :param config: the experiment
    :param progress_bar: show a progress bar (``None``: ``run.progress_bar``, or when stderr is a terminal)
    :param on_run_dir: called with the run directory once it exists (e.g. to print it)
    :raises UserError: for a bad config (before the run directory is made), :class:`TrainingDiverged`
        when a loss turns non-finite
    """
    _set_threads(config)
    check_resources(config)
    env = build_env(config, config.seed, training=True)
    model = build_model(config, env)
    run_dir = create_run_dir(config)
    if on_run_dir is not None:
        on_run_dir(run_dir)
    with run_lock(run_dir):  # against a `train --resume` of it while it trains
        return _Session(config, run_dir, model, env, None, progress_bar).learn()


def resume(run_dir: str | Path, overrides: Sequence[str] = (), checkpoint: str | Path | None = None,
           progress_bar: bool | None = None) -> RunResult:
    """Continue a run from its newest checkpoint (or ``checkpoint``) up to its ``total_timesteps``.

    Rows of ``metrics.csv`` after the checkpoint's step are dropped (they are redone). A resumed
    episode starts afresh: the env is reset (seeded with the run's seed plus the step), the
    unfinished episode's transitions stay in the replay buffer. Topology schedules keep the plan of
    the original run (a stop at 80% of training stays where it was when ``total_timesteps`` grows).
    A run killed before its first checkpoint starts over from its ``config.yaml``, in its directory.
    ``config.yaml`` is rewritten (with the overrides) only once the checkpoint has loaded.

    :param run_dir: the run directory
    :param overrides: ``--set`` overrides of the run's config (``total_timesteps`` to extend it,
        learning-rate-like hyperparameters; not the env, the sparsity or the networks)
    :param checkpoint: a specific checkpoint directory instead of the newest
    :param progress_bar: show a progress bar (``None``: as configured)
    :raises UserError: if ``run_dir`` is not a run, has no usable checkpoint, the checkpoint does
        not fit the config, or another process is using the run
    """
    run_dir = require_run_dir(run_dir)
    config = load_run_config(run_dir, overrides)
    _require_writable(run_dir)
    with run_lock(run_dir):  # one process at a time: a second one fails at once, naming the first's pid
        return _resume_locked(run_dir, config, overrides, checkpoint, progress_bar)


def _resume_locked(run_dir: Path, config: ExperimentConfig, overrides: Sequence[str], checkpoint: str | Path | None,
                   progress_bar: bool | None) -> RunResult:
    checkpoints_dir = run_dir / CHECKPOINTS
    remove_partial(checkpoints_dir)
    found = latest_checkpoint(run_dir) if checkpoint is None else read_checkpoint(_own_checkpoint(run_dir, checkpoint))
    if found is None and (run_dir / FINAL_MODEL).is_file():  # finished, its checkpoints deleted (a sweep's)
        if overrides:
            raise UserError(f"run {str(run_dir)!r} has finished and holds no checkpoint (they were deleted), so it "
                            "cannot be continued or changed; start a new run instead")
        return RunResult(run_dir, config.total_timesteps, None, True, f"run already complete ({FINAL_MODEL}); its "
                         "checkpoints were deleted, so it cannot be extended")
    if found is None:
        return _start_over(run_dir, config, overrides, progress_bar)
    if found.step > config.total_timesteps:
        raise ConfigError(f"total_timesteps must be >= {found.step}, the steps this run has done already "
                          f"({found.path.name}), got {config.total_timesteps}")
    changed = _check_compatible(found, config)
    if found.step >= config.total_timesteps:
        if not (run_dir / FINAL_MODEL).is_file():
            _set_threads(config)
            save_final_model(load_model(found, agent_class(config), build_env(config, config.seed), config.device),
                             run_dir)
        if overrides:
            write_config(config, run_dir)
        last = found.state.get("last_eval")
        return RunResult(run_dir, found.step, tuple(last) if last else None, True,
                         f"run already complete at step {found.step} (total_timesteps {config.total_timesteps}); "
                         "extend it with --set total_timesteps=N")
    print(f"resuming {run_dir} from {found.path.name} (step {found.step} of {config.total_timesteps})", file=sys.stderr)
    _set_threads(config)
    check_resources(config)
    env = build_env(config, config.seed, training=True)
    restore_env_state(env, found.state.get("env_state", []))
    model = load_model(found, agent_class(config), env, config.device, **changed)
    if checkpoint is not None:
        _set_aside_newer(checkpoints_dir, found.step)
    if overrides:  # only now: a resume that fails leaves config.yaml as it was
        write_config(config, run_dir)
    if not found.has_replay_buffer:
        print(f"warning: {found.path.name} holds no replay buffer (checkpoint.replay_buffer: false); training goes "
              "on from an empty one", file=sys.stderr)
    model.action_noise = action_noise(config, int(np.prod(env.action_space.shape)))
    model.verbose = config.run.verbose
    rng = _read_rng(found)
    restore_rng(rng, model)
    env.seed(config.seed + found.step)  # a fresh episode, seeded from the step it starts at
    for log_file in (METRICS_FILE, TOPOLOGY_FILE):
        if (run_dir / log_file).is_file():
            MetricsLog(run_dir / log_file).truncate_after(found.step)
    return _Session(config, run_dir, model, env, found, progress_bar).learn()


def _start_over(run_dir: Path, config: ExperimentConfig, overrides: Sequence[str],
                progress_bar: bool | None) -> RunResult:
    """Train a run that stopped before its first checkpoint again from the start, in its directory
    (its metrics, TensorBoard events and snapshots, all from before that first checkpoint, are
    cleared)."""
    print(f"note: {run_dir} stopped before its first checkpoint; starting it over from its {CONFIG_FILE}",
          file=sys.stderr)
    _set_threads(config)
    check_resources(config)
    env = build_env(config, config.seed, training=True)
    model = build_model(config, env)
    (run_dir / METRICS_FILE).unlink(missing_ok=True)
    for sub in (TB_DIR, CHECKPOINTS, CONNECTIVITY_DIR):
        shutil.rmtree(run_dir / sub, ignore_errors=True)
        (run_dir / sub).mkdir()
    if overrides:
        write_config(config, run_dir)
    return _Session(config, run_dir, model, env, None, progress_bar).learn()


def _require_writable(run_dir: Path) -> None:
    """A :class:`UserError` if the run directory (or its checkpoints) cannot be written."""
    for path in (run_dir, run_dir / CHECKPOINTS):
        if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
            raise UserError(f"run directory {str(run_dir)!r} is read-only ({str(path)!r} is not writable): a resumed "
                            "run writes checkpoints and metrics there. Make it writable, or copy the run elsewhere")


def _own_checkpoint(run_dir: Path, checkpoint: str | Path) -> Path:
    """``checkpoint`` (a path, or a name like ``step_200``) as a directory of ``run_dir/checkpoints``."""
    path = Path(checkpoint)
    if not path.exists() and len(path.parts) == 1:
        path = run_dir / CHECKPOINTS / path
    if path.resolve().parent != (run_dir / CHECKPOINTS).resolve():
        raise CheckpointError(f"{str(checkpoint)!r} is not a checkpoint of run {str(run_dir)!r}: give one of its "
                              f"{CHECKPOINTS}/step_<N> directories (or just step_<N>)")
    return path


def _read_rng(checkpoint: Checkpoint) -> dict[str, Any]:
    import json

    from sparse_rl.checkpoint import RNG_FILE

    return json.loads((checkpoint.path / RNG_FILE).read_text(encoding="utf-8"))


def _set_aside_newer(directory: Path, step: int) -> None:
    """Rename checkpoints newer than the one resumed (``.discarded-step_N``): the resumed run
    replaces that future, and pruning must not keep them as the newest."""
    from sparse_rl.checkpoint import checkpoint_dirs

    for newer_step, path in checkpoint_dirs(directory):
        if newer_step > step:
            target = directory / f".discarded-{path.name}-{time.strftime('%Y%m%d-%H%M%S')}"
            os.replace(path, target)
            print(f"note: set aside {path} (newer than the checkpoint resumed) as {target}", file=sys.stderr)


def _check_compatible(checkpoint: Checkpoint, config: ExperimentConfig) -> dict[str, Any]:
    """Raise if the checkpoint's config differs from ``config`` where a resume cannot follow;
    return the hyperparameters that changed (to set on the loaded model)."""
    saved = checkpoint.state.get("config")
    if not isinstance(saved, Mapping):
        raise CheckpointError(f"checkpoint {str(checkpoint.path)!r} records no config; it was not written by "
                              "'sparse-rl train'")
    try:
        saved_config = config_from_dict(saved)
    except ConfigError as error:
        raise CheckpointError(f"checkpoint {str(checkpoint.path)!r} records a config this version cannot read: "
                              f"{error}") from None
    before, after = _flatten(saved_config.to_dict()), _flatten(config.to_dict())
    differences = sorted(key for key in set(before) | set(after)
                         if before.get(key, _MISSING) != after.get(key, _MISSING))
    fixed = [key for key in differences
             if not key.startswith(RESUMABLE_CHANGES) or key.startswith(FIXED_HYPERPARAMS)]
    if fixed:
        details = "; ".join(f"{key} is {_show(before.get(key, _MISSING))} there but {_show(after.get(key, _MISSING))} "
                            "here" for key in fixed[:4])
        more = f" (and {len(fixed) - 4} more)" if len(fixed) > 4 else ""
        raise CheckpointError(f"checkpoint {str(checkpoint.path)!r} does not match this run's config: {details}{more}. "
                              "A resumed run must keep its algorithm, env, sparsity, networks and seed; start a new "
                              "run for a different setting")
    changed = {}
    prefix = "agent.hyperparams."
    for key in differences:
        if key.startswith(prefix):
            name = key[len(prefix):].split(".")[0]
            changed[name] = config.agent.hyperparams.get(name)
    if isinstance(changed.get("train_freq"), list):
        changed["train_freq"] = tuple(changed["train_freq"])
    if changed:
        print("note: resuming with changed hyperparameters: " + ", ".join(
            f"{k}={v!r}" for k, v in changed.items()), file=sys.stderr)
    return {k: v for k, v in changed.items() if v is not None}


_MISSING = object()


def _show(value: Any) -> str:
    return "absent" if value is _MISSING else repr(value)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


# --------------------------------------------------------------------------------------------------
# evaluation of a finished run


def evaluate_run(run_dir: str | Path, n_episodes: int | None = None, seed: int | None = None,
                 checkpoint: str | Path | None = None, deterministic: bool = True, best: bool = False,
                 video_dir: str | Path | None = None, video_length: int | None = None) -> EvaluationResult:
    """Evaluate a run's final model (or its newest checkpoint, or ``checkpoint``) for ``n_episodes``.

    :param run_dir: the run directory
    :param n_episodes: episodes (default: the config's ``eval.n_episodes``)
    :param seed: the evaluation env's seed (default: the config's evaluation seed)
    :param checkpoint: a checkpoint directory to evaluate instead of ``model.zip``
    :param deterministic: deterministic actions
    :param best: evaluate ``best_model.zip`` (the best periodic evaluation) instead of ``model.zip``
    :param video_dir: record an MP4 of the evaluation there (SB3's ``VecVideoRecorder``; needs
        ``pip install 'sparse_rl[video]'``; MuJoCo renders headless with ``MUJOCO_GL=egl``, the
        default set here when there is no display)
    :param video_length: env steps in the video (default: one episode, the env's time limit)
    :raises UserError: if there is no model to evaluate or it does not load
    """
    from stable_baselines3.common.evaluation import evaluate_policy

    run_dir = require_run_dir(run_dir)
    config = load_run_config(run_dir)
    if n_episodes is not None and n_episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {n_episodes}")
    if best and checkpoint is not None:
        raise UserError("give --best or --checkpoint, not both")
    _set_threads(config)
    if video_dir is not None:
        from sparse_rl.video import prepare_headless_rendering

        prepare_headless_rendering()  # before MuJoCo is imported: it picks its OpenGL backend then
    env_seed = config.eval_seed if seed is None else seed
    probe = build_env(config, env_seed)
    cls = agent_class(config)
    model_path, data = _read_model(run_dir, checkpoint, best)
    check_model_algorithm(data, cls)
    try:
        model = cls.load(data, env=probe, device=config.device)
    except Exception as error:  # noqa: BLE001 - SB3 raises many kinds for a file that does not fit
        raise CheckpointError(f"cannot load {str(model_path)!r} as a {cls.__name__}: "
                              f"{' '.join(str(error).split())}") from None
    steps = int(model.num_timesteps)
    env = probe
    permuted = None if config.env.permute_at_step is None else steps >= config.env.permute_at_step
    if permuted is not None or video_dir is not None:
        env = build_env(config, env_seed, permuted=permuted, render_mode="rgb_array" if video_dir else None)
    video = None
    if video_dir is not None:
        from sparse_rl.video import record_video

        env, video = record_video(env, Path(video_dir), video_length, prefix=f"{run_dir.name}-{model_path.stem}")
    env.seed(env_seed)
    episodes = n_episodes or config.eval.n_episodes
    try:
        returns, _ = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=deterministic,
                                     return_episode_rewards=True)
    finally:
        if video is not None:
            env.close()  # writes the video
    values = [float(r) for r in returns]
    return EvaluationResult(float(np.mean(values)), float(np.std(values)), values, model_path, steps,
                            None if video is None else video())


def _read_model(run_dir: Path, checkpoint: str | Path | None, best: bool = False,
                attempts: int = 5) -> tuple[Path, io.BytesIO]:
    """The model to evaluate, read into memory: ``checkpoint``'s, the best one (``best``), else
    ``model.zip``, else the newest complete checkpoint's. A training run may prune that checkpoint
    while it is read: then the newest one is looked up again (up to ``attempts`` times)."""
    from sparse_rl.evaluations import BEST_MODEL

    if checkpoint is not None:
        path = read_checkpoint(_own_checkpoint(run_dir, checkpoint)).path / MODEL_FILE
        return path, io.BytesIO(path.read_bytes())
    if best:
        path = run_dir / BEST_MODEL
        if not path.is_file():
            raise UserError(f"run {str(run_dir)!r} has no {BEST_MODEL} (written at its first evaluation)")
        return path, io.BytesIO(path.read_bytes())
    for attempt in range(attempts):
        if (run_dir / FINAL_MODEL).is_file():  # written once, by a rename: complete if there
            try:
                return run_dir / FINAL_MODEL, io.BytesIO((run_dir / FINAL_MODEL).read_bytes())
            except FileNotFoundError:
                continue
        try:
            found = latest_checkpoint(run_dir)
            if found is None:
                raise UserError(f"run {str(run_dir)!r} has no model.zip and no checkpoint yet: nothing to evaluate")
            path = found.path / MODEL_FILE
            return path, io.BytesIO(path.read_bytes())
        except (CheckpointError, FileNotFoundError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))  # pruned while read: the run wrote a newer one
    raise UserError(f"cannot read a model of run {str(run_dir)!r}")  # pragma: no cover


# --------------------------------------------------------------------------------------------------
# helpers


def _env_attribute(env: Any, name: str, default: Any) -> Any:
    # has_attr, not a caught AttributeError: in a SubprocVecEnv the failed lookup kills the worker
    if not env.has_attr(name):
        return default
    return env.get_attr(name, indices=[0])[0]


def _metric_fields(model: Any) -> list[str]:
    from sparse_rl.callbacks import METRICS_FIELDS

    return [*METRICS_FIELDS, *filtering_columns(model)]


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("sparse_rl")
    except Exception:  # noqa: BLE001 - not installed: still usable from a checkout
        return "unknown"
