"""Videos of an evaluated policy (``sparse-rl evaluate RUN --video``) with SB3's ``VecVideoRecorder``.

The env must be built with ``render_mode="rgb_array"``. Classic-control envs (Pendulum) render with
pygame, MuJoCo envs with OpenGL: without a display MuJoCo needs ``MUJOCO_GL=egl`` (or ``osmesa``),
which :func:`prepare_headless_rendering` sets when nothing is set. Writing the MP4 needs MoviePy
(``pip install 'sparse_rl[video]'`` brings MoviePy and pygame).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sparse_rl.experiment.errors import UserError

#: the extra that brings what rendering and writing videos need
VIDEO_EXTRA = "pip install 'sparse_rl[video]'"


def prepare_headless_rendering() -> None:
    """Let MuJoCo render without a display: ``MUJOCO_GL=egl`` unless it is set or there is a display."""
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"


def default_video_length(env: Any) -> int:
    """One episode of ``env`` (a VecEnv): its time limit, else 1000 steps."""
    spec = env.get_attr("spec", indices=[0])[0]
    limit = getattr(spec, "max_episode_steps", None)
    return int(limit) if limit else 1000


def record_video(env: Any, folder: Path, length: int | None = None,
                 prefix: str = "evaluation") -> tuple[Any, Callable[[], Path | None]]:
    """Wrap ``env`` (a VecEnv rendering ``rgb_array``) so that its first ``length`` steps from the
    first reset are recorded into ``folder``; the video is written when the wrapper is closed.

    :param env: the evaluation VecEnv
    :param folder: where the MP4 goes (created)
    :param length: env steps to record (default: :func:`default_video_length`)
    :param prefix: the file name's start (SB3 appends ``-step-0-to-step-N.mp4``)
    :return: the wrapped env, and a function giving the video's path once the env is closed
    :raises UserError: if MoviePy is missing or the env cannot render
    """
    from gymnasium import error as gym_error
    from stable_baselines3.common.vec_env import VecVideoRecorder

    prepare_headless_rendering()
    if length is not None and length < 1:
        raise UserError(f"--video-length must be >= 1, got {length}")
    length = length or default_video_length(env)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        recorder = VecVideoRecorder(env, str(folder), record_video_trigger=lambda step: step == 0,
                                    video_length=length, name_prefix=prefix)
    except gym_error.DependencyNotInstalled:
        raise UserError(f"recording a video needs MoviePy: {VIDEO_EXTRA}") from None
    except AssertionError as error:
        raise UserError(f"this env cannot render frames for a video: {error}") from None

    def path() -> Path | None:
        written = getattr(recorder, "video_path", None)
        return Path(written) if written and Path(written).is_file() else None

    return recorder, path
