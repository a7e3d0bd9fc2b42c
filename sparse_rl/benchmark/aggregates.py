"""Aggregate metrics of a sweep across its tasks, as reviewers expect them (Agarwal et al., NeurIPS
2021, "Deep RL at the edge of the statistical precipice"; the rliable library): the IQM of
normalized scores with a stratified-bootstrap 95% interval, performance profiles (run-score
distributions) and the probability of improvement of each agent over each other.

A *task* is a cell of the sweep (env, noise fraction) in which every agent has finished runs; a
run's *score* is its final return, normalized per task to [0, 1] by the lowest and highest final
return of any agent's run on that task (returns of different envs have different scales). Each
agent's scores form a runs × tasks matrix (its first ``n`` seeds, ``n`` the fewest it has on any
task). Written to ``aggregates.md`` and ``plots/performance_profile.png`` of the sweep directory.
The statistics are in :mod:`sparse_rl.benchmark.stats` (NumPy; the same definitions as rliable's,
checked against it in the tests).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from sparse_rl.benchmark.stats import (
    aggregate_iqm,
    few_seeds_warning,
    performance_profile,
    probability_of_improvement,
    stratified_bootstrap_ci,
)

AGGREGATES_MD = "aggregates.md"
PROFILE_PLOT = "performance_profile.png"
#: colour-blind-safe (Okabe-Ito), as the learning curves
COLORS = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


def score_matrices(records: Sequence[Mapping[str, Any]],
                   agents: Sequence[str]) -> tuple[dict[str, np.ndarray], list[tuple[str, float]]]:
    """Per agent, its normalized final scores as a runs × tasks matrix, and the tasks.

    :param records: finished runs' records (``agent``, ``env``, ``noise_fraction``, ``seed``, ``final_return``)
    :param agents: the agents, in the sweep's order
    """
    finals: dict[tuple[str, float], dict[str, list[tuple[int, float]]]] = {}
    for record in records:
        value = record.get("final_return")
        if value is None or not np.isfinite(float(value)):
            continue
        task = (str(record["env"]), float(record["noise_fraction"]))
        finals.setdefault(task, {}).setdefault(str(record["agent"]), []).append((int(record["seed"]), float(value)))
    present = [a for a in agents if any(a in by_agent for by_agent in finals.values())]
    tasks = [task for task, by_agent in finals.items() if all(a in by_agent for a in present)]
    matrices: dict[str, np.ndarray] = {}
    if not tasks or not present:
        return matrices, []
    for agent in present:
        n_runs = min(len(finals[task][agent]) for task in tasks)
        columns = []
        for task in tasks:
            every = np.array([v for by_agent in finals[task].values() for _, v in by_agent])
            low, high = float(every.min()), float(every.max())
            values = np.array([v for _, v in sorted(finals[task][agent])[:n_runs]])
            columns.append((values - low) / (high - low) if high > low else np.zeros_like(values))
        matrices[agent] = np.column_stack(columns)
    return matrices, tasks


def profile_figure(matrices: Mapping[str, np.ndarray], thresholds: np.ndarray) -> Figure:
    """Performance profiles with their 95% stratified-bootstrap bands, one line per agent."""
    figure = Figure(figsize=(6.5, 4.2), dpi=110)
    ax = figure.subplots()
    for index, (agent, scores) in enumerate(matrices.items()):
        color = COLORS[index % len(COLORS)]
        point, low, high = stratified_bootstrap_ci(lambda s: performance_profile(s, thresholds), scores,
                                                   n_resamples=500)
        ax.fill_between(thresholds, low, high, color=color, alpha=0.2, linewidth=0)
        ax.plot(thresholds, point, color=color, label=agent)
    n_tasks = next(iter(matrices.values())).shape[1]
    ax.set_title(f"performance profile over {n_tasks} task{'s' if n_tasks != 1 else ''} (95% stratified bootstrap)",
                 fontsize=10)
    ax.set_xlabel("normalized final return τ (0: worst run on the task, 1: best)")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def aggregates_markdown(matrices: Mapping[str, np.ndarray], tasks: Sequence[tuple[str, float]],
                        title: str = "# Aggregates across tasks") -> str:
    """The text of ``aggregates.md``: the IQM table and the probability-of-improvement table.

    :param matrices: per agent, its normalized scores (runs × tasks), from :func:`score_matrices`
    :param tasks: the tasks (env, noise fraction) of the matrices' columns
    :param title: the section's heading
    """
    lines = [f"{title}\n",
             f"{len(tasks)} task(s) (env, noise fraction): "
             + ", ".join(f"{env} f={fraction:g}" for env, fraction in tasks) + ".\n",
             "Scores: final returns normalized per task to [0, 1] (the worst and the best run of any agent). "
             "IQM over all runs and tasks, with a 95% stratified-bootstrap interval (runs resampled within each "
             "task, 2,000 resamples); P(X > Y): the probability that a run of X beats a run of Y on a task, "
             "averaged over tasks (Agarwal et al., NeurIPS 2021).\n"]
    fewest = min(scores.shape[0] for scores in matrices.values())
    warning = few_seeds_warning(fewest)
    if warning:
        lines.append(f"**{warning}**\n")
    lines += ["| agent | runs per task | IQM [95% CI] | mean [95% CI] |", "|---|---:|---:|---:|"]
    for agent, scores in matrices.items():
        iqm_point, iqm_low, iqm_high = stratified_bootstrap_ci(aggregate_iqm, scores)
        mean_point, mean_low, mean_high = stratified_bootstrap_ci(lambda s: float(np.mean(s)), scores)
        lines.append(f"| {agent} | {scores.shape[0]} | {iqm_point:.3f} [{iqm_low:.3f}, {iqm_high:.3f}] "
                     f"| {mean_point:.3f} [{mean_low:.3f}, {mean_high:.3f}] |")
    names = list(matrices)
    if len(names) > 1:
        lines += ["", "| X | Y | P(X > Y) [95% CI] |", "|---|---|---:|"]
        for x in names:
            for y in names:
                if x != y:
                    point, low, high = stratified_bootstrap_ci(probability_of_improvement, matrices[x], matrices[y])
                    lines.append(f"| {x} | {y} | {point:.2f} [{low:.2f}, {high:.2f}] |")
    return "\n".join(lines) + "\n"


def write_aggregates(records: Sequence[Mapping[str, Any]], out_dir: str | Path, agents: Sequence[str],
                     plots_dir: str = "plots") -> list[Path]:
    """Write ``aggregates.md`` and the performance-profile plot (nothing without a task that
    every agent has finished). With several noise fractions, ``aggregates.md`` also has a section per
    noise fraction (scores normalized the same way, per task).

    :param records: finished runs' records
    :param out_dir: the sweep directory
    :param agents: the agents in the sweep's order
    :param plots_dir: the plots' sub-directory
    :return: the files written
    """
    matrices, tasks = score_matrices(records, agents)
    if not matrices:
        return []
    out = Path(out_dir)
    markdown = out / AGGREGATES_MD
    temporary = out / f".{AGGREGATES_MD}.tmp"
    text = aggregates_markdown(matrices, tasks)
    fractions = sorted({fraction for _, fraction in tasks}, reverse=True)
    if len(fractions) > 1:  # each noise level on its own as well: pooled, a weak level can hide a strong one
        for fraction in fractions:
            level = [record for record in records if float(record["noise_fraction"]) == fraction]
            level_matrices, level_tasks = score_matrices(level, agents)
            if level_matrices:
                text += "\n" + aggregates_markdown(level_matrices, level_tasks,
                                                    title=f"## Noise fraction {fraction:g} only")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, markdown)
    plot = out / plots_dir / PROFILE_PLOT
    plot.parent.mkdir(parents=True, exist_ok=True)
    profile_figure(matrices, np.linspace(0.0, 1.0, 51)).savefig(plot)
    return [markdown, plot]


def seed_warning(records: Sequence[Mapping[str, Any]]) -> str | None:
    """The warning of :func:`~sparse_rl.benchmark.stats.few_seeds_warning` for the fewest seeds of
    any cell (env, noise fraction, agent) of ``records``, or ``None``."""
    counts: dict[tuple[str, float, str], int] = {}
    for record in records:
        key = (str(record["env"]), float(record["noise_fraction"]), str(record["agent"]))
        counts[key] = counts.get(key, 0) + 1
    return few_seeds_warning(min(counts.values())) if counts else None
