"""Aggregates across tasks (IQM with stratified bootstrap, performance profiles, probability of
improvement) on hand-worked examples and against the rliable library, and the few-seeds warning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sparse_rl.benchmark.aggregates import score_matrices, seed_warning, write_aggregates
from sparse_rl.benchmark.results import write_summary
from sparse_rl.benchmark.stats import (
    aggregate_iqm,
    few_seeds_warning,
    performance_profile,
    probability_of_improvement,
    stratified_bootstrap_ci,
)


def test_hand_worked_examples() -> None:
    # task 0: X runs (1, 3) vs Y runs (2, 2): X wins 2 of 4 pairs; task 1: (5, 5) vs (5, 4): 2 wins, 2 ties of 4
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    y = np.array([[2.0, 5.0], [2.0, 4.0]])
    assert probability_of_improvement(x, y) == pytest.approx((2 / 4 + (2 + 0.5 * 2) / 4) / 2)
    assert probability_of_improvement(x, x) == pytest.approx(0.5)
    assert aggregate_iqm(np.arange(8.0).reshape(4, 2)) == pytest.approx(3.5)  # mean of 2..5
    assert performance_profile(x, [0.0, 2.0, 5.0]).tolist() == [1.0, 0.75, 0.0]


def test_stratified_bootstrap_resamples_runs_within_tasks() -> None:
    # every run of task 0 scores 0 and of task 1 scores 1: any stratified resample has mean 0.5
    scores = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    point, low, high = stratified_bootstrap_ci(lambda s: float(s.mean()), scores, n_resamples=200)
    assert point == low == high == 0.5


def test_the_definitions_match_rliable_and_scipy() -> None:
    """rliable's metrics are scipy's trimmed mean and Mann-Whitney U; its library module (bootstrap,
    profiles) needs the arch package, which fails to import with pandas 3 (seen here with arch 7.2):
    the stratified bootstrap is checked above by its invariant instead."""
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x, y = rng.normal(0.6, 0.2, size=(5, 4)), rng.normal(0.5, 0.2, size=(6, 4))
    x[0, 0] = y[0, 0]  # a tie
    assert aggregate_iqm(x) == pytest.approx(stats.trim_mean(x, 0.25, axis=None))
    per_task = [stats.mannwhitneyu(x[:, t], y[:, t], alternative="greater").statistic / (5 * 6) for t in range(4)]
    assert probability_of_improvement(x, y) == pytest.approx(np.mean(per_task))
    try:
        from rliable import metrics
    except ImportError:
        return
    assert aggregate_iqm(x) == pytest.approx(metrics.aggregate_iqm(x))
    assert probability_of_improvement(x, y) == pytest.approx(metrics.probability_of_improvement(x, y))


def _records(seeds: int) -> list[dict]:
    rng = np.random.default_rng(1)
    records = []
    for env, scale in (("Pendulum-v1", 1000.0), ("Hopper-v5", 3000.0)):
        for agent, level in (("ANF-SAC", 0.8), ("SAC", 0.5)):
            for seed in range(seeds):
                records.append({"agent": agent, "env": env, "noise_fraction": 0.98, "seed": seed,
                                "final_return": scale * (level + 0.1 * rng.normal())})
    return records


def test_sweep_aggregates_and_the_few_seeds_warning(tmp_path: Path) -> None:
    assert few_seeds_warning(5) is None and "only 2 seeds" in (few_seeds_warning(2) or "")
    records = _records(3)
    matrices, tasks = score_matrices(records, ["ANF-SAC", "SAC"])
    assert tasks == [("Pendulum-v1", 0.98), ("Hopper-v5", 0.98)]
    assert matrices["ANF-SAC"].shape == (3, 2) and matrices["SAC"].min() >= 0 and matrices["ANF-SAC"].max() <= 1
    files = write_aggregates(records, tmp_path, ["ANF-SAC", "SAC"])
    assert [f.name for f in files] == ["aggregates.md", "performance_profile.png"]
    text = files[0].read_text()
    assert "only 3 seeds" in text and "| ANF-SAC | 3 |" in text and "| ANF-SAC | SAC |" in text
    summary = write_summary(records, tmp_path / "summary.md", name="t", description="", agents=["ANF-SAC", "SAC"],
                            planned=12).read_text()
    assert "unreliable below 5 seeds" in summary
    assert seed_warning(_records(5)) is None
    clean = [dict(record, noise_fraction=0.0, final_return=record["final_return"] * 2) for record in _records(5)]
    (tmp_path / "two_levels").mkdir()
    pooled = write_aggregates(_records(5) + clean, tmp_path / "two_levels", ["ANF-SAC", "SAC"])[0].read_text()
    assert "4 task(s)" in pooled  # all tasks first, then each noise level alone
    assert pooled.index("## Noise fraction 0.98 only") < pooled.index("## Noise fraction 0 only")
    assert pooled.split("## Noise fraction 0 only")[1].count("2 task(s) (env, noise fraction): Pendulum-v1 f=0, ") == 1
    assert "unreliable" not in write_summary(_records(5), tmp_path / "s5.md", name="t", description="",
                                             agents=["ANF-SAC", "SAC"], planned=20).read_text()
