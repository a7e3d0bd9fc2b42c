"""One training session: a new run (:func:`train`) or a resumed one, with evaluation, checkpoints,
connectivity snapshots, a NaN guard and Ctrl-C handling, into a run directory."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from sparse_rl._util.rundir import (
    CONFIG_FILE,
    CONNECTIVITY_DIR,
    FINAL_MODEL,
    METRICS_FILE,
    TOPOLOGY_FILE,
    create_run_dir,
)
from sparse_rl.experiment.callbacks import (
    CheckpointCallback,
    EvalCallback,
    InterruptCallback,
    Interrupted,
    NanGuardCallback,
    ProgressBarCallback,
    RefillAfterPermutation,
)
from sparse_rl.experiment.checkpoint import (
    CHECKPOINTS,
    Checkpoint,
    RunWriteError,
    env_state,
)
from sparse_rl.experiment.config import ExperimentConfig, load_config
from sparse_rl.experiment.errors import ConfigError, UserError
from sparse_rl.experiment.factory import _set_threads, build_env, build_model
from sparse_rl.experiment.logs import METRICS_FIELDS, MetricsLog, TopologyLog, filtering_columns
from sparse_rl.experiment.resources import check_resources
from sparse_rl.experiment.runlock import run_lock

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


def load_run_config(run_dir: Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """The run's ``config.yaml`` (with ``--set`` overrides), validated.

    :param run_dir: a run directory
    :param overrides: ``KEY=VALUE`` strings
    """
    try:
        return load_config(run_dir / CONFIG_FILE, overrides)
    except ConfigError as error:
        raise ConfigError(f"the run's {CONFIG_FILE} does not load: {error}") from None


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
        from sparse_rl.experiment.evaluations import EvalArchiveCallback

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
            from sparse_rl.analysis.snapshot_callback import ConnectivitySnapshotCallback
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

        from sparse_rl.experiment.tracking import finish_tracking, make_logger, start_tracking

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
            if last:
                advice = (f"the last good checkpoint, {last}, is kept. Start again with a lower learning rate, or "
                          f"resume from that checkpoint with one: sparse-rl train --resume {self.run_dir} --set "
                          "agent.hyperparams.learning_rate=...")
            else:
                advice = ("no checkpoint had been written, so there is nothing to resume: start a new run with a "
                          "lower learning rate (--set agent.hyperparams.learning_rate=...)")
            raise TrainingDiverged(
                f"training diverged at step {self.guard.step}: {self.guard.reason}. The run was stopped and {advice}")
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
    from sparse_rl.experiment.tracking import require_tracking

    require_tracking(config)
    _set_threads(config)
    check_resources(config)
    env = build_env(config, config.seed, training=True)
    model = build_model(config, env)
    run_dir = create_run_dir(config)
    if on_run_dir is not None:
        on_run_dir(run_dir)
    with run_lock(run_dir):  # against a `train --resume` of it while it trains
        return _Session(config, run_dir, model, env, None, progress_bar).learn()


def _env_attribute(env: Any, name: str, default: Any) -> Any:
    # has_attr, not a caught AttributeError: in a SubprocVecEnv the failed lookup kills the worker
    if not env.has_attr(name):
        return default
    return env.get_attr(name, indices=[0])[0]


def _metric_fields(model: Any) -> list[str]:
    return [*METRICS_FIELDS, *filtering_columns(model)]


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("sparse_rl")
    except Exception:  # noqa: BLE001 - not installed: still usable from a checkout
        return "unknown"
