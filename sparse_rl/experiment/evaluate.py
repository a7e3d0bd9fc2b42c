"""Evaluating a run's model (final, best or a checkpoint's) on fresh episodes, optionally with a
video."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparse_rl._util.rundir import BEST_MODEL, FINAL_MODEL, require_run_dir
from sparse_rl.experiment.checkpoint import (
    MODEL_FILE,
    CheckpointError,
    check_model_algorithm,
    latest_checkpoint,
    read_checkpoint,
)
from sparse_rl.experiment.errors import UserError

#: config keys a resumed run may change (anything else must equal the checkpoint's config)
from sparse_rl.experiment.factory import _set_threads, agent_class, build_env
from sparse_rl.experiment.resume import _own_checkpoint
from sparse_rl.experiment.session import load_run_config


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
    :param video_dir: record an MP4 of the evaluation there: a directory, or a file ending in ``.mp4``
        (SB3's ``VecVideoRecorder``; needs ``pip install 'sparse_rl[video]'``; MuJoCo renders headless
        with ``MUJOCO_GL=egl``, the default set here when there is no display); checked first
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
    if video_length is not None and video_length < 1:
        raise UserError(f"--video-length must be >= 1, got {video_length}")
    target = None
    if video_dir is not None:
        from sparse_rl.experiment.video import prepare_headless_rendering, video_target

        target = video_target(video_dir)  # a path that cannot be written fails before anything is loaded
        prepare_headless_rendering()  # before MuJoCo is imported: it picks its OpenGL backend then
    _set_threads(config)
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
        from sparse_rl.experiment.video import record_video

        env, video = record_video(env, target, video_length, prefix=f"{run_dir.name}-{model_path.stem}")
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
