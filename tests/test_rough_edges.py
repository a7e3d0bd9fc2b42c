"""Issue 24: the last rough edges a new user and a fault meet. Each test reproduces one of them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sparse_rl.cli import main
from tests.conftest import cli_env

Factory = Callable[..., dict[str, Any]]


def _error(capsys: pytest.CaptureFixture[str], argv: list[Any], code: int = 2) -> str:
    assert main([str(arg) for arg in argv]) == code
    err = capsys.readouterr().err
    assert "error: " in err and "Traceback" not in err, err
    return " ".join(err[err.index("error: "):].split())


# --------------------------------------------------------------------------------------------------
# 5. a closed pipe; 20. a Ctrl-C during the exit handlers


def test_a_command_piped_into_head_exits_quietly(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "sparse_rl.cli", "configs", "list"], cwd=tmp_path,
                               env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the command writes a line (`| head -0`)
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 141
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "Exception ignored" not in stderr, stderr


def test_a_ctrl_c_during_the_exit_handlers_exits_quietly(tmp_path: Path) -> None:
    script = ("import atexit, os, signal, sys, time\n"
              "from sparse_rl.cli import main\n"
              "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(2)))\n"
              "sys.argv = ['sparse-rl', 'configs', 'show', 'base']\n"
              "sys.exit(main())\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 130
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr, done.stderr


# --------------------------------------------------------------------------------------------------
# a finished tiny run (copy it before changing it)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, tiny_defaults: dict[str, Any]) -> Path:
    from sparse_rl.experiment.config import config_from_dict
    from sparse_rl.experiment.runner import train

    root = tmp_path_factory.mktemp("finished")
    data = {**tiny_defaults, "total_timesteps": 200, "run": {"root": str(root), "progress_bar": False}}
    return train(config_from_dict(data)).run_dir


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run_dir, tmp_path / run_dir.name))


# --------------------------------------------------------------------------------------------------
# 1, 2, 9. evaluate --video


def test_a_video_path_that_cannot_be_written_is_refused_before_loading(capsys: pytest.CaptureFixture[str],
                                                                        finished_run: Path, tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    message = _error(capsys, ["evaluate", finished_run, "--best", "--video", tmp_path / "a_file" / "videos"])
    assert "cannot create the video directory" in message and "a_file" in message
    message = _error(capsys, ["evaluate", finished_run, "--video", tmp_path / "clip.gif"])
    assert "clip.gif" in message and "MP4" in message
    assert "--video-length must be >= 1" in _error(capsys, ["evaluate", finished_run, "--video", "--video-length", 0])
    if Path("/proc").is_dir():
        assert "/proc/forbidden" in _error(capsys, ["evaluate", finished_run, "--best", "--video", "/proc/forbidden"])


def test_a_video_path_ending_in_mp4_is_the_file_and_sdl_prints_nothing(finished_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("moviepy")
    pytest.importorskip("pygame")
    env = {name: value for name, value in cli_env().items()
           if name not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER", "XDG_RUNTIME_DIR")}
    target = tmp_path / "sub" / "myvideo.mp4"
    done = subprocess.run([sys.executable, "-m", "sparse_rl.cli", "evaluate", str(finished_run), "--episodes", "1",
                           "--video", str(target), "--video-length", "10"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert target.is_file() and target.stat().st_size > 1000
    assert list(target.parent.iterdir()) == [target]  # no temporary directory left
    assert f"video: {target}" in done.stdout
    assert "error:" not in done.stderr and "XDG_RUNTIME_DIR" not in done.stderr, done.stderr
