"""Evaluation outputs in the layout rl-zoo3 users expect: ``evaluations.npz`` and ``best_model.zip``.

``evaluations.npz`` has SB3's ``EvalCallback`` format (what rl-zoo3's plotting scripts read):
``timesteps`` (n_evaluations,), ``results`` (float64) and ``ep_lengths`` (int64) (n_evaluations ×
n_episodes; NaN, and -1 for the lengths, pad a row if ``eval.n_episodes`` changed on a resume).
``best_model.zip`` is the model at the evaluation with the highest mean return so far (saved when an
evaluation beats all earlier ones, as SB3's ``EvalCallback`` does). A resumed run drops the entries
after its checkpoint and goes on.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sparse_rl._util.errors import UserError
from sparse_rl._util.rundir import BEST_MODEL, EVALUATIONS_FILE


def read_evaluations(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an ``evaluations.npz`` (``timesteps``, ``results``, ``ep_lengths``), read
    without pickle and checked.

    :raises UserError: naming the file if it is not such an archive
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: np.asarray(data[key]) for key in ("timesteps", "results", "ep_lengths")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(f"{str(path)!r} is not an evaluations archive (timesteps, results, ep_lengths): "
                        f"{' '.join(str(error).split()) or type(error).__name__}; move it away to start a new one") \
            from None
    rows = len(arrays["timesteps"])
    if arrays["timesteps"].ndim != 1 or any(arrays[key].ndim != 2 or len(arrays[key]) != rows or
                                            arrays[key].dtype.kind not in "iuf" for key in ("results", "ep_lengths")):
        raise UserError(f"{str(path)!r} is damaged: its arrays do not have the shapes of an evaluations archive "
                        "(timesteps: n; results, ep_lengths: n x episodes); move it away to start a new one")
    return arrays


def _rows(values: list[list[float]], dtype: Any = np.float64, fill: float = np.nan) -> np.ndarray:
    width = max((len(row) for row in values), default=0)
    table = np.full((len(values), width), fill, dtype=dtype)
    for index, row in enumerate(values):
        table[index, : len(row)] = row
    return table


def _kept(row: np.ndarray) -> list[float]:
    """A row's entries without the padding (NaN for returns and older lengths, -1 for lengths)."""
    return [float(v) for v in row if np.isfinite(v) and not (row.dtype.kind in "iu" and v < 0)]


class EvalArchiveCallback(BaseCallback):
    """After each evaluation of an :class:`~sparse_rl.experiment.callbacks.EvalCallback` (placed before this
    one in the callback list), append it to ``run_dir/evaluations.npz`` and save
    ``run_dir/best_model.zip`` when its mean return is the best so far.

    :param evaluation: the evaluation callback whose results are archived
    :param run_dir: the run directory
    """

    def __init__(self, evaluation: Any, run_dir: str | Path) -> None:
        super().__init__()
        self.evaluation = evaluation
        self.run_dir = Path(run_dir)
        self.timesteps: list[int] = []
        self.results: list[list[float]] = []
        self.lengths: list[list[int]] = []
        self.best_mean = -np.inf
        self._archived: Any = None

    def _on_training_start(self) -> None:
        path = self.run_dir / EVALUATIONS_FILE
        if path.is_file():  # a resumed run: keep the evaluations up to its checkpoint
            data = read_evaluations(path)
            keep = data["timesteps"] <= self.num_timesteps
            self.timesteps = [int(step) for step in data["timesteps"][keep]]
            self.results = [_kept(row) for row in data["results"][keep]]
            self.lengths = [[int(v) for v in _kept(row)] for row in data["ep_lengths"][keep]]
            means = [float(np.mean(row)) for row in self.results if row]
            self.best_mean = max(means, default=-np.inf)
        self._archived = self.evaluation.last_episodes

    def _on_rollout_start(self) -> None:
        self._archive()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self._archive()

    def _archive(self) -> None:
        episodes = self.evaluation.last_episodes
        if episodes is None or episodes is self._archived:
            return
        self._archived = episodes
        returns, lengths = episodes
        self.timesteps.append(int(self.evaluation.last_step))
        self.results.append([float(r) for r in returns])
        self.lengths.append([int(n) for n in lengths])
        temporary = self.run_dir / f".{EVALUATIONS_FILE}.tmp.npz"
        np.savez(temporary, timesteps=np.asarray(self.timesteps, dtype=np.int64), results=_rows(self.results),
                 ep_lengths=_rows(self.lengths, np.int64, -1))
        os.replace(temporary, self.run_dir / EVALUATIONS_FILE)
        mean = float(np.mean(returns))
        if mean > self.best_mean:
            self.best_mean = mean
            temporary = self.run_dir / f".{BEST_MODEL}.tmp.zip"
            self.model.save(temporary)
            os.replace(temporary, self.run_dir / BEST_MODEL)
