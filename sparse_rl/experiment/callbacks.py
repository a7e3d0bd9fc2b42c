"""Training callbacks of a run: NaN guard, periodic evaluation (rows of ``metrics.csv``, whose
file is :mod:`sparse_rl.experiment.logs`), checkpoints, the transfer refill, Ctrl-C, progress bar.

SB3 calls ``on_rollout_start`` at the start of each ``collect_rollouts``, that is after the
gradient steps of the previous rollout: the model, its replay buffer and its counters are then
consistent, so evaluations and checkpoints happen there (when the step count has crossed a
multiple of their frequency) and once more at the end of training. Callbacks that act on the model
first ask the :class:`NanGuardCallback` whether the model is still finite.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy

from sparse_rl.experiment.checkpoint import prune_checkpoints, write_checkpoint
from sparse_rl.experiment.logs import MetricsLog


def crossed(previous: int, current: int, freq: int) -> bool:
    """Whether a multiple of ``freq`` lies in ``(previous, current]``.

    :param previous: the step of the last action
    :param current: the step now
    :param freq: the period (0: never)
    """
    return freq > 0 and current // freq > previous // freq


# --------------------------------------------------------------------------------------------------
# the transfer setting


class RefillAfterPermutation(BaseCallback):
    """ANF's transfer protocol (Grooten et al., AAMAS 2023): when the env permutes its features
    (``env.permute_at_step``), empty the replay buffer and act at random for ``refill_steps`` env
    steps, training again once the buffer holds them.

    :param at_step: the env step of the permutation
    :param refill_steps: random steps after it (their paper: 25,000)
    """

    def __init__(self, at_step: int, refill_steps: int) -> None:
        super().__init__()
        self.at_step = at_step
        self.refill_steps = refill_steps
        self._previous: int | None = None

    def _on_step(self) -> bool:
        previous = self.num_timesteps - 1 if self._previous is None else self._previous
        self._previous = self.num_timesteps
        if previous < self.at_step <= self.num_timesteps:
            self.model.replay_buffer.reset()
            self.model.learning_starts = self.num_timesteps + self.refill_steps
        return True


# --------------------------------------------------------------------------------------------------
# NaN guard


class NanGuardCallback(BaseCallback):
    """Stops training when a loss or a parameter stops being finite.

    Losses are read from SB3's logger (every ``train/*loss*`` value and ``train/ent_coef``) at
    every step; parameters of the policy when :meth:`check` is asked to (before every checkpoint,
    and at the end). Once tripped it stays tripped: :attr:`reason` names the culprit and
    :attr:`step` the env step.

    :param verbose: SB3's verbosity
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.reason: str | None = None
        self.step: int | None = None

    @property
    def tripped(self) -> bool:
        """Whether a non-finite value was found."""
        return self.reason is not None

    def check(self, parameters: bool = False) -> bool:
        """Look for non-finite losses (and parameters); ``True`` if all is finite.

        :param parameters: also scan the policy's parameters and buffers
        """
        if self.tripped:
            return False
        logger = getattr(self.model, "_logger", None) or getattr(self.model, "logger", None)
        values = logger.name_to_value if logger is not None else {}
        for key, value in values.items():
            watched = key.startswith("train/") and ("loss" in key or key == "train/ent_coef")
            if watched and not _finite(value):
                return self._trip(f"the loss {key!r} is {value}" if "loss" in key else f"{key!r} is {value}")
        if parameters:
            for name, tensor in self.model.policy.state_dict().items():
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    losses = ", ".join(f"{key}={value:.4g}" for key, value in values.items()
                                       if key.startswith("train/") and "loss" in key and _finite(value))
                    return self._trip(f"the parameter {name!r} holds non-finite values"
                                      + (f" (last losses: {losses})" if losses else ""))
        return True

    def _trip(self, reason: str) -> bool:
        self.reason = reason
        self.step = int(self.model.num_timesteps)
        return False

    def _on_rollout_start(self) -> None:
        self.check()

    def _on_step(self) -> bool:
        return self.check()

    def _on_training_end(self) -> None:
        self.check(parameters=True)


def _finite(value: Any) -> bool:
    try:
        return bool(np.all(np.isfinite(value)))
    except TypeError:
        return True


# --------------------------------------------------------------------------------------------------
# evaluation


class EvalCallback(BaseCallback):
    """Evaluates the policy every ``freq`` env steps (and at the end) on a separate env, logs
    ``eval/*`` scalars and appends a row to ``metrics.csv``.

    :param make_eval_env: returns the evaluation VecEnv to use now (may change during training,
        e.g. after a feature permutation), seeded for this evaluation: called with the step
    :param metrics: the metrics log
    :param freq: env steps between evaluations (0: only at the end)
    :param n_episodes: episodes per evaluation
    :param deterministic: deterministic actions
    :param guard: skip evaluating once it has tripped
    :param wall_time_offset: wall time of the earlier segments of a resumed run, in seconds
    :param extra: called with the model, returns extra columns (e.g. real-feature shares)
    :param verbose: 1 prints each evaluation
    """

    def __init__(self, make_eval_env: Callable[[int], Any], metrics: MetricsLog, freq: int, n_episodes: int,
                 deterministic: bool = True, guard: NanGuardCallback | None = None, wall_time_offset: float = 0.0,
                 extra: Callable[[Any], Mapping[str, Any]] | None = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.make_eval_env = make_eval_env
        self.metrics = metrics
        self.freq = freq
        self.n_episodes = n_episodes
        self.deterministic = deterministic
        self.guard = guard
        self.wall_time_offset = wall_time_offset
        self.extra = extra
        self.last_result: tuple[float, float] | None = None
        self.last_step: int | None = None
        self.last_episodes: tuple[list[float], list[int]] | None = None
        self._started = 0.0
        self._segment_step = 0
        self._segment_time = 0.0
        self._eval_seconds = 0.0

    def _on_training_start(self) -> None:
        self._started = time.perf_counter()
        self.last_step = int(self.num_timesteps)
        self._segment_step = int(self.num_timesteps)
        self._segment_time = self._started
        self._eval_seconds = 0.0

    def _on_rollout_start(self) -> None:
        if crossed(self.last_step or 0, self.num_timesteps, self.freq):
            self.evaluate()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        if self.num_timesteps != self.last_step or not self.metrics.rows():
            self.evaluate()

    @property
    def wall_time(self) -> float:
        """Wall time of the run so far (all segments), in seconds."""
        return self.wall_time_offset + time.perf_counter() - self._started

    def evaluate(self) -> tuple[float, float] | None:
        """Run one evaluation now and record it; ``None`` if the guard has tripped."""
        if self.guard is not None and not self.guard.check():
            return None
        step = int(self.num_timesteps)
        start = time.perf_counter()
        train_seconds = start - self._segment_time - self._eval_seconds
        steps_per_second = (step - self._segment_step) / train_seconds if train_seconds > 0 else float("nan")
        returns, lengths = evaluate_policy(self.model, self.make_eval_env(step), n_eval_episodes=self.n_episodes,
                                           deterministic=self.deterministic, return_episode_rewards=True)
        mean, std = float(np.mean(returns)), float(np.std(returns))
        self.last_result, self.last_step = (mean, std), step
        self.last_episodes = (list(returns), list(lengths))  # for evaluations.npz (sparse_rl.experiment.evaluations)
        row = {"timesteps": step, "eval_return_mean": mean, "eval_return_std": std,
               "eval_length_mean": float(np.mean(lengths)), "episodes": int(getattr(self.model, "_episode_num", 0)),
               "steps_per_second": steps_per_second, "wall_time_s": self.wall_time}
        if self.extra is not None:
            row.update(self.extra(self.model))
        self.metrics.append(row)
        self.logger.record("eval/mean_reward", mean)
        self.logger.record("eval/std_reward", std)
        self.logger.record("eval/mean_ep_length", float(np.mean(lengths)))
        self.logger.record("time/steps_per_second", steps_per_second)
        self.logger.dump(step)
        if self.verbose:
            print(f"step {step}: eval return {mean:.2f} ± {std:.2f} ({steps_per_second:.0f} steps/s)")
        self._segment_step = step
        self._segment_time = time.perf_counter()
        self._eval_seconds = 0.0
        return mean, std


# --------------------------------------------------------------------------------------------------
# checkpoints


class CheckpointCallback(BaseCallback):
    """Writes an atomic checkpoint every ``freq`` env steps and at the end of training, keeping the
    newest ``keep``; never writes one once the NaN guard has tripped.

    :param directory: the run's ``checkpoints/`` directory
    :param freq: env steps between checkpoints (0: only at the end)
    :param keep: checkpoints to keep
    :param state: returns the JSON-able run state to store (counters, config, env state)
    :param guard: the NaN guard asked before writing
    :param replay_buffer: include the replay buffer
    :param verbose: 1 prints each checkpoint
    """

    def __init__(self, directory: str | Path, freq: int, keep: int, state: Callable[[], Mapping[str, Any]],
                 guard: NanGuardCallback | None = None, replay_buffer: bool = True, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.directory = Path(directory)
        self.freq = freq
        self.keep = keep
        self.state = state
        self.guard = guard
        self.replay_buffer = replay_buffer
        self.last_step = 0
        self.last_path: Path | None = None

    def _on_training_start(self) -> None:
        self.last_step = int(self.num_timesteps)

    def _on_rollout_start(self) -> None:
        if crossed(self.last_step, self.num_timesteps, self.freq):
            self.save()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        if self.num_timesteps != self.last_step or self.last_path is None:
            self.save()

    def save(self) -> Path | None:
        """Write a checkpoint now (unless the guard has tripped) and prune old ones."""
        if self.guard is not None and not self.guard.check(parameters=True):
            return None
        self.last_path = write_checkpoint(self.model, self.directory, self.state(), replay_buffer=self.replay_buffer)
        self.last_step = int(self.num_timesteps)
        prune_checkpoints(self.directory, self.keep)
        if self.verbose:
            print(f"checkpoint {self.last_path}")
        return self.last_path


# --------------------------------------------------------------------------------------------------
# Ctrl-C


class Interrupted(Exception):
    """Raised out of ``learn`` by :class:`InterruptCallback` after its checkpoint.

    :param checkpoint: the checkpoint written (``None`` if none could be, e.g. the guard tripped)
    """

    def __init__(self, checkpoint: Path | None) -> None:
        super().__init__(f"interrupted; checkpoint {checkpoint}")
        self.checkpoint = checkpoint


class InterruptCallback(BaseCallback):
    """Turns Ctrl-C (SIGINT) into a clean stop: the signal only sets a flag; at the next rollout
    start (where model, replay buffer and counters are consistent, and checkpoints are written) it
    writes a checkpoint and raises :class:`Interrupted`. A second Ctrl-C before that stops at once
    (``KeyboardInterrupt``). Put it after the checkpoint callback; call :meth:`restore` when
    training ends, however it ends. Outside the main thread (no signal handlers), or where SIGINT is
    ignored, it does nothing.

    :param checkpoints: writes the checkpoint
    """

    def __init__(self, checkpoints: CheckpointCallback) -> None:
        super().__init__(0)
        self.checkpoints = checkpoints
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _on_training_start(self) -> None:
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a process told to ignore it keeps doing so
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        self.restore()  # a second Ctrl-C: KeyboardInterrupt, at once
        print("\ninterrupted: writing a checkpoint, then stopping (Ctrl-C again to stop at once)", file=sys.stderr)

    def restore(self) -> None:
        """Put back the SIGINT handler that was there before training."""
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _on_rollout_start(self) -> None:
        if self.requested:
            done = self.checkpoints.last_path is not None and self.checkpoints.last_step == self.num_timesteps
            raise Interrupted(self.checkpoints.last_path if done else self.checkpoints.save())

    def _on_step(self) -> bool:
        return True


# --------------------------------------------------------------------------------------------------
# progress bar


class ProgressBarCallback(BaseCallback):
    """A tqdm bar over env steps, showing steps/s and the last evaluation return.

    :param total: the run's total env steps
    :param evaluation: where to read the last evaluation from
    :param file: the stream (stderr by default)
    """

    def __init__(self, total: int, evaluation: EvalCallback | None = None, file: Any = None) -> None:
        super().__init__(0)
        self.total = total
        self.evaluation = evaluation
        self.file = file
        self.bar: Any = None
        self._shown: tuple[float, float] | None = None

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, initial=int(self.num_timesteps), unit="step", dynamic_ncols=True,
                        file=self.file or sys.stderr, smoothing=0.05)

    def _on_step(self) -> bool:
        self.bar.update(int(self.num_timesteps) - self.bar.n)
        result = self.evaluation.last_result if self.evaluation else None
        if result is not None and result != self._shown:
            self.bar.set_postfix_str(f"eval return {result[0]:.1f} ± {result[1]:.1f}")
            self._shown = result
        return True

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self._on_step()
            self.bar.close()


# --------------------------------------------------------------------------------------------------
# helpers


def finite_or_none(value: float | None) -> float | None:
    """``value`` if it is a finite number, else ``None``.

    :param value: a number or ``None``
    """
    return value if value is not None and math.isfinite(value) else None
