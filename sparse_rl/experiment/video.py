"""Videos of an evaluated policy (``sparse-rl evaluate RUN --video``) with SB3's ``VecVideoRecorder``.

The env must be built with ``render_mode="rgb_array"``. Classic-control envs (Pendulum) render with
pygame, MuJoCo envs with OpenGL: without a display MuJoCo needs ``MUJOCO_GL=egl`` (or ``osmesa``),
which :func:`prepare_headless_rendering` sets when nothing is set (and SDL, which pygame uses, gets
its ``dummy`` video driver, so that it prints no ``error: XDG_RUNTIME_DIR is invalid`` of its own).
Writing the MP4 needs MoviePy (``pip install 'sparse_rl[video]'`` brings MoviePy and pygame).

Where the video goes (:func:`video_target`, checked before anything is loaded): a path ending in
``.mp4`` is the video file itself; any other path is a directory that gets
``<prefix>-step-0-to-step-N.mp4`` (SB3's name).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparse_rl._util.outputs import check_output_file, prepare_output_dir
from sparse_rl.experiment.errors import UserError

#: the extra that brings what rendering and writing videos need
VIDEO_EXTRA = "pip install 'sparse_rl[video]'"


#: suffixes of video files that are not MP4 (refused: SB3's recorder writes MP4)
OTHER_VIDEO_SUFFIXES = (".avi", ".gif", ".mkv", ".mov", ".webm")


@dataclass(frozen=True)
class VideoTarget:
    """Where a video goes.

    :param folder: the directory the recorder writes into
    :param file: the video's own path, when the user named the file (``None``: SB3's name in ``folder``)
    """

    folder: Path
    file: Path | None = None


def video_target(path: str | Path) -> VideoTarget:
    """Where ``--video PATH`` puts the video, checked (created, writable) before anything is loaded.

    :param path: a directory, or a file ending in ``.mp4``
    :raises UserError: naming the path if it cannot be written or names another format
    """
    path = Path(path)
    if path.suffix.lower() in OTHER_VIDEO_SUFFIXES:
        raise UserError(f"--video {str(path)!r}: videos are written as MP4; give a file ending in .mp4 or a "
                        "directory")
    if path.suffix.lower() == ".mp4" and not path.is_dir():
        return VideoTarget(check_output_file(path, "--video").parent, path)
    return VideoTarget(prepare_output_dir(path, "the video directory"))


def prepare_headless_rendering() -> None:
    """Let MuJoCo render without a display: ``MUJOCO_GL=egl`` unless it is set or there is a display;
    and SDL (pygame, the classic-control envs) with its ``dummy`` video driver, which needs no display
    and prints nothing."""
    headless = not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"
    if headless and "SDL_VIDEODRIVER" not in os.environ:
        os.environ["SDL_VIDEODRIVER"] = "dummy"


def default_video_length(env: Any) -> int:
    """One episode of ``env`` (a VecEnv): its time limit, else 1000 steps."""
    spec = env.get_attr("spec", indices=[0])[0]
    limit = getattr(spec, "max_episode_steps", None)
    return int(limit) if limit else 1000


def record_video(env: Any, target: Path | VideoTarget, length: int | None = None,
                 prefix: str = "evaluation") -> tuple[Any, Callable[[], Path | None]]:
    """Wrap ``env`` (a VecEnv rendering ``rgb_array``) so that its first ``length`` steps from the
    first reset are recorded into ``target``; the video is written when the wrapper is closed.

    :param env: the evaluation VecEnv
    :param target: where the MP4 goes: a directory (created), or a :class:`VideoTarget` (from
        :func:`video_target`: a named ``.mp4`` file is written in a temporary directory beside it and
        renamed)
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
    if not isinstance(target, VideoTarget):
        target = VideoTarget(prepare_output_dir(target, "the video directory"))
    folder = target.folder
    if target.file is not None:
        folder = Path(tempfile.mkdtemp(prefix=".video-", dir=target.folder))
    try:
        recorder = VecVideoRecorder(env, str(folder), record_video_trigger=lambda step: step == 0,
                                    video_length=length, name_prefix=prefix)
    except gym_error.DependencyNotInstalled:
        _remove_temporary(target, folder)
        raise UserError(f"recording a video needs MoviePy: {VIDEO_EXTRA}") from None
    except AssertionError as error:
        _remove_temporary(target, folder)
        raise UserError(f"this env cannot render frames for a video: {error}") from None

    def path() -> Path | None:
        written = getattr(recorder, "video_path", None)
        found = Path(written) if written and Path(written).is_file() else None
        if target.file is not None:
            if found is not None:
                os.replace(found, target.file)
                found = target.file
            _remove_temporary(target, folder)
        return found

    return recorder, path


def _remove_temporary(target: VideoTarget, folder: Path) -> None:
    if target.file is not None:
        shutil.rmtree(folder, ignore_errors=True)
