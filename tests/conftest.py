"""Shared helpers of the config / runner / CLI tests: a tiny experiment and a CLI runner."""

from __future__ import annotations

import copy
import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
import yaml

# The tests' networks are tiny: one thread is fastest, and immune to oversubscription when the machine
# is busy (torch's default of one thread per core slows tiny ops down badly under load).
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent

#: a run that trains in a couple of seconds: Pendulum with 50-step episodes, 32x32 nets
TINY_CONFIG: dict[str, Any] = {
    "seed": 1,
    "total_timesteps": 300,
    "torch_threads": 1,
    "device": "cpu",
    "agent": {"algorithm": "sac", "hyperparams": {"learning_starts": 100, "batch_size": 32, "buffer_size": 2000}},
    "sparsity": {"preset": "anf", "update_interval": 50},
    "net_arch": [32, 32],
    "env": {"id": "Pendulum-v1", "noise_fraction": 0.5, "make_kwargs": {"max_episode_steps": 50}},
    "eval": {"freq": 100, "n_episodes": 1},
    "checkpoint": {"freq": 100, "keep": 2},
    "run": {"progress_bar": False},
}



def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` as a module (the scripts are not a package), registered in
    ``sys.modules`` under ``name`` so that its dataclasses and pickles can find it."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _keep_torch_threads() -> Iterator[None]:
    """The runner sets ``torch.set_num_threads`` (``torch_threads``): restore it after each test."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_defaults() -> dict[str, Any]:
    """A copy of :data:`TINY_CONFIG` (for fixtures wider than one test)."""
    return copy.deepcopy(TINY_CONFIG)


@pytest.fixture
def tiny_config(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """Make a fresh tiny config dict whose runs go under ``tmp_path/runs``; keyword arguments are
    deep-merged into it (``agent={"algorithm": "td3"}``)."""
    from sparse_rl.experiment.config import deep_merge

    def make(**overrides: Any) -> dict[str, Any]:
        data = deep_merge(copy.deepcopy(TINY_CONFIG), {"run": {"root": str(tmp_path / "runs")}})
        return deep_merge(data, overrides)

    return make


@pytest.fixture
def tiny_yaml(tmp_path: Path, tiny_config: Callable[..., dict[str, Any]]) -> Callable[..., Path]:
    """Write a tiny config (with overrides) to a YAML file in ``tmp_path`` and return its path."""
    counter = iter(range(1000))

    def make(**overrides: Any) -> Path:
        path = tmp_path / f"tiny_{next(counter)}.yaml"
        path.write_text(yaml.safe_dump(tiny_config(**overrides)), encoding="utf-8")
        return path

    return make


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: the repository importable, one thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m sparse_rl.cli ARGS`` in a subprocess (cwd ``tmp_path``) and return the
    completed process (text output)."""

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sparse_rl.cli", *map(str, args)], cwd=tmp_path, env=cli_env(),
                              capture_output=True, text=True, timeout=timeout)

    return run


def _default_sigint() -> None:
    """In the child: Ctrl-C as in a terminal. A test run started in the background (``pytest &``, or
    a CI runner that ignores SIGINT) would otherwise hand its ignored SIGINT down, and the CLI leaves
    a process that ignores SIGINT alone (as ``nohup`` users expect)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def start_cli(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``python -m sparse_rl.cli ARGS`` in the background (cwd ``tmp_path``); the caller
    waits for it or kills it."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-m", "sparse_rl.cli", *map(str, args)], cwd=tmp_path,
                                   env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=_default_sigint)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.fixture
def only_run(tmp_path: Path) -> Callable[[], Path]:
    """Return the one run directory under ``tmp_path/runs``."""

    def find() -> Path:
        runs = [path for path in (tmp_path / "runs").iterdir() if path.is_dir()]
        assert len(runs) == 1, runs
        return runs[0]

    return find


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, tiny_defaults: dict[str, Any]) -> Path:
    """A finished tiny run, shared by a module's tests: copy it (:func:`copy_run`) before changing it."""
    from sparse_rl.experiment.config import config_from_dict
    from sparse_rl.experiment.runner import train

    root = tmp_path_factory.mktemp("finished")
    data = {**tiny_defaults, "total_timesteps": 200, "run": {"root": str(root), "progress_bar": False}}
    return train(config_from_dict(data)).run_dir


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of ``run_dir`` under ``tmp_path`` (same name), for a test that changes a run."""
    import shutil

    return Path(shutil.copytree(run_dir, tmp_path / run_dir.name))
