"""Evaluation outputs in the layout rl-zoo3 users expect: ``evaluations.npz`` and ``best_model.zip``.

``evaluations.npz`` has SB3's ``EvalCallback`` format (what rl-zoo3's plotting scripts read):
``timesteps`` (n_evaluations,), ``results`` and ``ep_lengths`` (n_evaluations × n_episodes; NaN
pads a row if ``eval.n_episodes`` changed on a resume). ``best_model.zip`` is the model at the
evaluation with the highest mean return so far (saved when an evaluation beats all earlier ones, as
SB3's ``EvalCallback`` does). A resumed run drops the entries after its checkpoint and goes on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sparse_rl._util.rundir import BEST_MODEL, EVALUATIONS_FILE


def read_evaluations(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an ``evaluations.npz`` (``timesteps``, ``results``, ``ep_lengths``)."""
    with np.load(path) as data:
        return {key: np.asarray(data[key]) for key in ("timesteps", "results", "ep_lengths")}


def _rows(values: list[list[float]]) -> np.ndarray:
    width = max((len(row) for row in values), default=0)
    table = np.full((len(values), width), np.nan)
    for index, row in enumerate(values):
        table[index, : len(row)] = row
    return table


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
        self.lengths: list[list[float]] = []
        self.best_mean = -np.inf
        self._archived: Any = None

    def _on_training_start(self) -> None:
        path = self.run_dir / EVALUATIONS_FILE
        if path.is_file():  # a resumed run: keep the evaluations up to its checkpoint
            data = read_evaluations(path)
            keep = data["timesteps"] <= self.num_timesteps
            self.timesteps = [int(step) for step in data["timesteps"][keep]]
            self.results = [[float(v) for v in row if np.isfinite(v)] for row in data["results"][keep]]
            self.lengths = [[float(v) for v in row if np.isfinite(v)] for row in data["ep_lengths"][keep]]
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
        self.lengths.append([float(n) for n in lengths])
        temporary = self.run_dir / f".{EVALUATIONS_FILE}.tmp.npz"
        np.savez(temporary, timesteps=np.asarray(self.timesteps, dtype=np.int64), results=_rows(self.results),
                 ep_lengths=_rows(self.lengths))
        os.replace(temporary, self.run_dir / EVALUATIONS_FILE)
        mean = float(np.mean(returns))
        if mean > self.best_mean:
            self.best_mean = mean
            temporary = self.run_dir / f".{BEST_MODEL}.tmp.zip"
            self.model.save(temporary)
            os.replace(temporary, self.run_dir / BEST_MODEL)
