"""Every code block of the README works as written (issue 24): the Python blocks run, and every
``sparse-rl`` command in the shell blocks parses and names files that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    return [(text[:match.start()].count("\n") + 1, match.group(2)) for match in BLOCK.finditer(text)
            if match.group(1) == language]


PYTHON = _blocks("python")
COMMANDS = [(line, command) for start, block in _blocks("bash")
            for offset, command in enumerate(block.splitlines()) if command.startswith("sparse-rl ")
            for line in [start + 1 + offset]]


def test_the_readme_has_code_blocks() -> None:
    assert len(PYTHON) >= 3 and len(COMMANDS) >= 10


@pytest.mark.parametrize(("line", "code"), PYTHON, ids=[f"line{line}" for line, _ in PYTHON])
def test_python_blocks_run_as_written(line: int, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # what a block writes (a model.zip) goes there
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})  # noqa: S102 - our own README


@pytest.mark.parametrize(("line", "command"), COMMANDS, ids=[f"line{line}" for line, _ in COMMANDS])
def test_shell_commands_parse_and_name_existing_configs(line: int, command: str) -> None:
    from sparse_rl.cli import build_parser

    words = shlex.split(command.split("  #")[0])[1:]
    build_parser().parse_args([word.replace("<", "").replace(">", "") for word in words])  # exits 2 if wrong
    for word in words:
        if word.startswith("configs/") and word.endswith(".yaml"):
            assert (REPO / word).is_file(), f"README.md:{line} names {word}, which does not exist"
