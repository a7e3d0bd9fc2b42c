"""Resuming a run from its newest (or a chosen) verified checkpoint: what may change on resume,
the checks that the checkpoint fits the config, and starting over when there is none."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sparse_rl._util.rundir import (
    CONFIG_FILE,
    CONNECTIVITY_DIR,
    FINAL_MODEL,
    METRICS_FILE,
    TB_DIR,
    TOPOLOGY_FILE,
    require_run_dir,
    write_config,
)
from sparse_rl.experiment.checkpoint import (
    CHECKPOINTS,
    RNG_FILE,
    STATE_FILE,
    Checkpoint,
    CheckpointError,
    checkpoint_dirs,
    latest_checkpoint,
    load_model,
    read_checkpoint,
    read_checkpoint_json,
    remove_partial,
    restore_env_state,
    restore_rng,
)
from sparse_rl.experiment.config import ExperimentConfig, config_from_dict
from sparse_rl.experiment.errors import ConfigError, UserError
from sparse_rl.experiment.factory import _set_threads, action_noise, agent_class, build_env, build_model
from sparse_rl.experiment.logs import MetricsLog
from sparse_rl.experiment.resources import check_resources
from sparse_rl.experiment.runlock import run_lock
from sparse_rl.experiment.session import RunResult, _Session, load_run_config, save_final_model

#: config keys a resumed run may change (anything else must equal the checkpoint's config)
RESUMABLE_CHANGES = ("total_timesteps", "eval", "checkpoint", "snapshots", "run", "description", "torch_threads",
                     "device", "agent.action_noise", "agent.hyperparams")


#: hyperparameters that shape the networks or the replay buffer: fixed once a run has started
FIXED_HYPERPARAMS = ("agent.hyperparams.policy_kwargs", "agent.hyperparams.buffer_size",
                     "agent.hyperparams.optimize_memory_usage", "agent.hyperparams.replay_buffer_class",
                     "agent.hyperparams.replay_buffer_kwargs", "agent.hyperparams.n_steps")


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
    from sparse_rl.experiment.tracking import require_tracking

    run_dir = require_run_dir(run_dir)
    config = load_run_config(run_dir, overrides)
    require_tracking(config)
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
    _check_run_files(run_dir)
    print(f"resuming {run_dir} from {found.path.name} (step {found.step} of {config.total_timesteps})", file=sys.stderr)
    _set_threads(config)
    check_resources(config)
    env = build_env(config, config.seed, training=True)
    env_states = found.state.get("env_state", [])
    if not isinstance(env_states, list) or not all(isinstance(entry, Mapping) for entry in env_states):
        raise CheckpointError(f"checkpoint {str(found.path)!r} is corrupt: {STATE_FILE}'s 'env_state' is not a list "
                              "of wrapper states")
    try:
        restore_env_state(env, env_states)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {str(found.path)!r} is corrupt: {STATE_FILE}'s 'env_state' cannot be "
                              f"restored ({type(error).__name__}: {error})") from None
    model = load_model(found, agent_class(config), env, config.device, **changed)
    _restore_rng(found, model)
    if checkpoint is not None:
        _set_aside_newer(checkpoints_dir, found.step)
    if overrides:  # only now: a resume that fails leaves config.yaml as it was
        write_config(config, run_dir)
    if not found.has_replay_buffer:
        print(f"warning: {found.path.name} holds no replay buffer (checkpoint.replay_buffer: false); training goes "
              "on from an empty one", file=sys.stderr)
    model.action_noise = action_noise(config, int(np.prod(env.action_space.shape)))
    model.verbose = config.run.verbose
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


def _restore_rng(checkpoint: Checkpoint, model: Any) -> None:
    """Put back the random generators' states of ``checkpoint``'s ``rng.json``.

    :raises CheckpointError: naming the file if its states are not what :func:`capture_rng` writes
    """
    data = read_checkpoint_json(checkpoint.path / RNG_FILE, checkpoint.path, RNG_FILE)
    try:
        if not isinstance(data, dict):
            raise TypeError(f"it holds a {type(data).__name__}, not a mapping of generators")
        restore_rng(data, model)
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError, IndexError) as error:
        raise CheckpointError(f"checkpoint {str(checkpoint.path)!r} is corrupt: {RNG_FILE} holds no valid generator "
                              f"states ({type(error).__name__}: {' '.join(str(error).split())[:120]})") from None


def _check_run_files(run_dir: Path) -> None:
    """Read the run's logs that a resumed run appends to: a damaged one is a :class:`UserError`
    naming it, before anything is loaded or changed."""
    from sparse_rl._util.rundir import EVALUATIONS_FILE, read_csv_header, read_csv_rows
    from sparse_rl.experiment.evaluations import read_evaluations

    for name in (METRICS_FILE, TOPOLOGY_FILE):
        if (run_dir / name).is_file():
            read_csv_header(run_dir / name)
            read_csv_rows(run_dir / name)
    if (run_dir / EVALUATIONS_FILE).is_file():
        read_evaluations(run_dir / EVALUATIONS_FILE)


def _set_aside_newer(directory: Path, step: int) -> None:
    """Rename checkpoints newer than the one resumed (``.discarded-step_N``): the resumed run
    replaces that future, and pruning must not keep them as the newest."""
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
