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
