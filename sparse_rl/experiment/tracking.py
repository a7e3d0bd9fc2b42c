"""Where a run's scalars go: SB3's logger formats, chosen in the config (``run.log_formats``), and
Weights & Biases (``run.track``, ``sparse-rl train --track``).

Every scalar the agents and callbacks record (``sparsity/*``, ``eval/*``, ``train/*``, ``time/*``)
goes through SB3's :class:`~stable_baselines3.common.logger.Logger`, so it reaches every format:
``tensorboard`` writes events into the run's ``tb/``; ``csv`` (``progress.csv``), ``json``
(``progress.json``) and ``log`` (``log.txt``) go into the run directory; ``stdout`` prints. W&B is
one more format (:class:`WandbOutputFormat`) that calls ``wandb.log`` with SB3's step, so W&B shows
exactly the scalars TensorBoard shows. Set ``WANDB_MODE=offline`` to log without an account (sync
later with ``wandb sync``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.logger import KVWriter, Logger, make_output_format

from sparse_rl.experiment.config import ExperimentConfig
from sparse_rl.experiment.errors import UserError

#: the sub-directory of a run that holds TensorBoard events
TB_DIR = "tb"


class WandbOutputFormat(KVWriter):
    """An SB3 logger format that sends each dump's numeric scalars to a W&B run (``wandb.log``).

    :param run: a ``wandb`` run (from ``wandb.init``)
    """

    def __init__(self, run: Any) -> None:
        self.run = run

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        """Log the numeric values of ``key_values`` at ``step``."""
        scalars = {}
        for key, value in key_values.items():
            excluded = key_excluded.get(key) or ()
            if "wandb" in excluded:
                continue
            if isinstance(value, (bool, int, float, np.integer, np.floating)):
                scalars[key] = float(value)
            elif isinstance(value, np.ndarray) and value.size == 1:
                scalars[key] = float(value.reshape(()))
        if scalars:
            self.run.log({**scalars, "global_step": step})

    def close(self) -> None:
        """Nothing to do: :func:`finish_tracking` ends the W&B run."""


def make_logger(run_dir: str | Path, formats: Sequence[str], wandb_run: Any = None) -> Logger:
    """An SB3 logger writing ``formats`` for a run: TensorBoard into ``run_dir/tb``, files into
    ``run_dir``, plus W&B when ``wandb_run`` is given.

    :param run_dir: the run directory
    :param formats: ``tensorboard``, ``csv``, ``json``, ``log``, ``stdout`` (see the module's docstring)
    :param wandb_run: a ``wandb`` run to log to as well
    """
    run_dir = Path(run_dir)
    outputs = []
    for name in dict.fromkeys(formats):  # once each, in order
        folder = run_dir / TB_DIR if name == "tensorboard" else run_dir
        folder.mkdir(parents=True, exist_ok=True)
        outputs.append(make_output_format(name, str(folder)))
    if wandb_run is not None:
        outputs.append(WandbOutputFormat(wandb_run))
    return Logger(str(run_dir), outputs)


def require_tracking(config: ExperimentConfig) -> None:
    """With ``run.track``, a :class:`UserError` if Weights & Biases is not installed (checked before a
    run directory is made).

    :param config: the experiment
    """
    import importlib.util

    if config.run.track and importlib.util.find_spec("wandb") is None:
        raise UserError("run.track (--track) needs Weights & Biases: pip install wandb (or "
                        "pip install 'sparse_rl[track]')")


def start_tracking(config: ExperimentConfig, run_dir: Path) -> Any:
    """Start (or, for a resumed run, continue) the W&B run of ``run_dir``: named and identified
    after the run directory, with the resolved config; files under ``run_dir/wandb``.

    :param config: the experiment
    :param run_dir: the run directory
    :raises UserError: if ``wandb`` is not installed
    """
    try:
        import wandb
    except ImportError:
        raise UserError("run.track (--track) needs Weights & Biases: pip install wandb (or "
                        "pip install 'sparse_rl[track]')") from None
    run_id = re.sub(r"[^A-Za-z0-9_-]", "_", run_dir.name)[-120:]
    run = wandb.init(project=config.run.wandb_project, entity=config.run.wandb_entity, name=run_dir.name,
                     id=run_id, resume="allow", dir=str(run_dir), config=config.to_dict(),
                     settings=wandb.Settings(console="off"))
    run.define_metric("*", step_metric="global_step")
    return run


def finish_tracking(run: Any) -> None:
    """End a W&B run started by :func:`start_tracking` (``None``: nothing to do)."""
    if run is not None:
        run.finish()
