"""Run directories of the experiment layer: naming and creating one, writing and loading its
validated config. The layout itself (file names, "is this a run directory", verified checkpoints)
has one owner, :class:`~sparse_rl._util.rundir.RunDir` (re-exported here), which sits below the
analysis so that it reads runs the same way."""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from sparse_rl._util.rundir import (
    BEST_MODEL,
    CHECKPOINTS,
    CONFIG_FILE,
    CONNECTIVITY_DIR,
    EVALUATIONS_FILE,
    FINAL_MODEL,
    LOCK_FILE,
    METRICS_FILE,
    PLOTS_DIR,
    RUN_MARKERS,
    TB_DIR,
    TOPOLOGY_FILE,
    NotARunDir,
    RunDir,
)
from sparse_rl.experiment.config import ExperimentConfig, load_config
from sparse_rl.experiment.errors import ConfigError, RunWriteError, UserError

__all__ = [
    "BEST_MODEL",
    "CHECKPOINTS",
    "CONFIG_FILE",
    "CONNECTIVITY_DIR",
    "EVALUATIONS_FILE",
    "FINAL_MODEL",
    "LOCK_FILE",
    "METRICS_FILE",
    "PLOTS_DIR",
    "RUN_MARKERS",
    "TB_DIR",
    "TOPOLOGY_FILE",
    "NotARunDir",
    "RunDir",
    "create_run_dir",
    "load_run_config",
    "require_run_dir",
    "run_name",
    "write_config",
]


def run_name(config: ExperimentConfig, now: float | None = None) -> str:
    """``<env>-<agent>-<sparsity>-f<noise>-s<seed>-<YYYYmmdd-HHMMSS>`` (or ``run.name``).

    :param config: the experiment
    :param now: the time stamp (seconds since the epoch; default: now)
    """
    if config.run.name:
        return config.run.name
    env = "".join(c if c.isalnum() or c in "-_." else "_" for c in config.env.id)
    noise = f"{config.env.noise_fraction:g}" if config.env.n_noise is None else f"{config.env.n_noise}n"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    sparsity = "sb3" if config.agent.implementation == "sb3" else config.sparsity_name
    return f"{env}-{config.agent.algorithm}-{sparsity}-f{noise}-s{config.seed}-{stamp}"


def create_run_dir(config: ExperimentConfig) -> Path:
    """Make a new, empty run directory under ``run.root`` (a ``-2``, ``-3``… suffix if the name is
    taken) with its sub-directories, and write ``config.yaml`` into it.

    :param config: the experiment
    :raises UserError: if ``run.name`` is given and already exists
    """
    root = Path(config.run.root)
    base = run_name(config)
    for attempt in range(1, 1000):
        path = root / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            path.mkdir(parents=True, exist_ok=False)
            break
        except FileExistsError:
            if config.run.name:
                raise UserError(f"run directory {str(path)!r} already exists; choose another run.name, or resume it "
                                f"with: sparse-rl train --resume {path}") from None
        except OSError as error:
            raise UserError(f"cannot create the run directory {str(path)!r}: {error}") from None
    else:  # pragma: no cover - a thousand runs in one second
        raise UserError(f"cannot find a free run directory name under {str(root)!r}")
    try:
        for sub in (TB_DIR, CHECKPOINTS, CONNECTIVITY_DIR):
            (path / sub).mkdir()
        write_config(config, path)
    except OSError as error:
        shutil.rmtree(path, ignore_errors=True)  # new and empty: nothing of a run is lost
        full = " (the disk is full)" if error.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        raise RunWriteError(f"cannot write the run directory {str(path)!r}: {error.strerror or error}{full}; it was "
                            "removed again. Make room (or give a writable run.root), then start the run again") \
            from None
    return path


def write_config(config: ExperimentConfig, run_dir: Path) -> None:
    """Write the resolved config to ``run_dir/config.yaml`` (atomically).

    :param config: the experiment
    :param run_dir: the run directory
    """
    temporary = run_dir / f".{CONFIG_FILE}.tmp"
    temporary.write_text(config.to_yaml(), encoding="utf-8")
    os.replace(temporary, run_dir / CONFIG_FILE)


def require_run_dir(path: str | Path) -> Path:
    """``path`` if it is a run directory (it holds ``config.yaml``), else a :class:`UserError`.

    :param path: the directory given by the user
    """
    return RunDir.require(path).path


def load_run_config(run_dir: Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """The run's ``config.yaml`` (with ``--set`` overrides), validated.

    :param run_dir: a run directory
    :param overrides: ``KEY=VALUE`` strings
    """
    try:
        return load_config(run_dir / CONFIG_FILE, overrides)
    except ConfigError as error:
        raise ConfigError(f"the run's {CONFIG_FILE} does not load: {error}") from None
