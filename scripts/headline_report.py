"""The headline tier's report: our HalfCheetah curve at 98% noise against the ANF paper's own.

Reads a sweep directory of ``configs/bench/headline.yaml`` (its ``results/*.json`` records and each
run's ``metrics.csv`` / ``topology.csv``) and writes, into ``--out`` (default: the sweep directory):

- ``headline_curves.png``: mean return over training steps (env steps minus the random warm-up)
  with a 95% bootstrap band per agent, and the points read off Grooten et al.'s Fig. 5
  (HalfCheetah-v3, f = 0.98, ±0.2k) as hollow markers;
- ``headline_filtering.png``: the mean in-degree ratio (real / noise columns) of the actor and both
  Q-networks over training, per sparse agent;
- ``headline.md``: final return and AUC with 95% CIs, the ratios and P(X > Y) of the issue's pairs,
  the in-degree ratio at the end and the training steps until 2× and 3×, steps/s, and the goals,
  each marked met or not. Usage::

    python scripts/headline_report.py bench_runs/headline [--out docs/results/headline]
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sparse_rl.benchmark.plots import aligned_curves
from sparse_rl.benchmark.results import read_records
from sparse_rl.benchmark.stats import (
    MIN_SEEDS_FOR_A_VERDICT,
    bootstrap_ci,
    curve_band,
    mean_ci_text,
    probability_of_improvement,
    ratio_of_means_ci,
    stratified_bootstrap_ci,
)

#: Grooten et al. (AAMAS 2023) Fig. 5, HalfCheetah-v3 at f = 0.98, read off the figure (±0.2k):
#: mean return at 100k and 250k training steps
PAPER_POINTS: dict[str, dict[int, float]] = {
    "ANF-SAC": {100_000: 5300.0, 250_000: 6600.0}, "ANF-TD3": {100_000: 6000.0, 250_000: 7300.0},
    "SAC": {100_000: 3300.0, 250_000: 4600.0}, "TD3": {100_000: 3500.0, 250_000: 4600.0},
}
#: the issue's comparisons: (better, baseline, the factor the goal asks for)
PAIRS = (("ANF-SAC", "SAC", 1.3), ("ANF-TD3", "TD3", 1.3), ("SF-SAC", "ANF-SAC", 1.0))
NETWORKS = ("actor", "qf0", "qf1")
COLORS = {"SAC": "tab:blue", "ANF-SAC": "tab:orange", "SF-SAC": "tab:green", "TD3": "tab:purple",
          "ANF-TD3": "tab:red"}


def read_csv(path: Path) -> list[dict[str, float]]:
    """Rows of a CSV file as floats (an empty or non-numeric cell becomes ``nan``)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [{key: _number(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def by_agent(records: Mapping[str, Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The finished records grouped by agent, seeds in order, agents in the order of first seen."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in sorted(records.values(), key=lambda r: (r["seed"], r["agent"])):
        if record.get("status", "finished") == "finished":
            groups.setdefault(record["agent"], []).append(record)
    order = [agent for agent in COLORS if agent in groups] + [agent for agent in groups if agent not in COLORS]
    return {agent: groups[agent] for agent in order}


def first_step_reaching(steps: Sequence[float], values: Sequence[float], threshold: float) -> float:
    """The first step whose value is >= ``threshold`` (``nan`` if none)."""
    for step, value in zip(steps, values):
        if value >= threshold:
            return float(step)
    return math.nan


def training_rate(run_dir: Path, warmup: int) -> float:
    """Env steps per second of the training phase (first to last evaluation after the warm-up,
    evaluations included), from the run's metrics.csv."""
    rows = [row for row in read_csv(run_dir / "metrics.csv") if row["timesteps"] > warmup]
    if len(rows) < 2:
        return math.nan
    return (rows[-1]["timesteps"] - rows[0]["timesteps"]) / (rows[-1]["wall_time_s"] - rows[0]["wall_time_s"])


def plot_curves(groups: Mapping[str, list[Mapping[str, Any]]], warmup: int, path: Path) -> None:
    """Mean return with a 95% band per agent, and the paper's points."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, ax = plt.subplots(figsize=(8, 5))
    last = 0.0
    for agent, runs in groups.items():
        steps, returns = aligned_curves(runs)
        mean, low, high = curve_band(returns)
        x = steps - warmup
        keep = x >= 0
        color = COLORS.get(agent)
        ax.plot(x[keep], mean[keep], label=f"{agent} (n={len(runs)})", color=color)
        ax.fill_between(x[keep], low[keep], high[keep], alpha=0.2, color=color)
        last = max(last, float(x[keep].max()) if keep.any() else 0.0)
        for step, value in PAPER_POINTS.get(agent, {}).items():
            if step <= max(last, 100_000):
                ax.errorbar([step], [value], yerr=[200.0], fmt="o", mfc="none", color=color, capsize=3)
    ax.plot([], [], "o", mfc="none", color="gray", label="Grooten et al. Fig. 5 (v3, read off, ±0.2k)")
    ax.set_xlabel(f"training steps (env steps − {warmup:,} random)")
    ax.set_ylabel("mean evaluation return")
    ax.set_title("HalfCheetah-v5, 98% noise features (850 inputs)")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def filtering_rows(runs: Sequence[Mapping[str, Any]]) -> dict[str, list[list[dict[str, float]]]]:
    """Per network, the topology.csv rows of each seed (one row per update of that network's owner)."""
    rows: dict[str, list[list[dict[str, float]]]] = {}
    for run in runs:
        table = read_csv(Path(run["run_dir"]) / "topology.csv")
        for network in NETWORKS:
            rows.setdefault(network, []).append(
                [row for row in table if not math.isnan(row.get(f"in_degree_ratio_{network}", math.nan))])
    return rows


def plot_filtering(groups: Mapping[str, list[Mapping[str, Any]]], warmup: int, path: Path) -> None:
    """Mean in-degree ratio over training per sparse agent and network."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    for agent, runs in groups.items():
        per_network = filtering_rows(runs)
        for ax, network in zip(axes, NETWORKS):
            seeds = [rows for rows in per_network.get(network, []) if rows]
            if not seeds:
                continue
            length = min(len(rows) for rows in seeds)
            steps = np.array([row["timesteps"] for row in seeds[0][:length]]) - warmup
            ratios = np.array([[row[f"in_degree_ratio_{network}"] for row in rows[:length]] for rows in seeds])
            ax.plot(steps, ratios.mean(axis=0), label=agent, color=COLORS.get(agent))
    for ax, network in zip(axes, NETWORKS):
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_title(network)
        ax.set_xlabel("training steps")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("in-degree ratio, real / noise columns")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def report(sweep: Path, out: Path, warmup: int) -> str:
    """The markdown report (and its two figures, written into ``out``)."""
    groups = by_agent(read_records(sweep))
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Headline: HalfCheetah-v5 at 98% noise ({sweep.name})", ""]
    if not groups:
        return "\n".join([*lines, "No finished runs yet."])
    plot_curves(groups, warmup, out / "headline_curves.png")
    lines += ["![learning curves](headline_curves.png)", "",
              "| agent | seeds | final return: mean [95% CI] | AUC: mean [95% CI] | paper at 100k (v3) "
              "| training steps/s |", "|---|---:|---:|---:|---:|---:|"]
    finals = {agent: np.array([r["final_return"] for r in runs], dtype=float) for agent, runs in groups.items()}
    for agent, runs in groups.items():
        aucs = np.array([r["auc"] for r in runs], dtype=float)
        rates = [training_rate(Path(r["run_dir"]), warmup) for r in runs]
        steps = int(max(r["timesteps"] for r in runs)) - warmup
        paper = PAPER_POINTS.get(agent, {}).get(100_000)
        final_text, auc_text = mean_ci_text(finals[agent], ",.0f"), mean_ci_text(aucs, ",.0f")
        lines.append(f"| {agent} | {len(runs)} | {final_text} | {auc_text} | "
                     f"{'–' if paper is None else f'{paper:,.0f}'} | {np.nanmean(rates):.1f} |")
    lines += ["", f"Final return: the last evaluation ({steps:,} training steps), 10 episodes per seed.", "",
              "| comparison | ratio of means [95% CI] | P(X > Y) [95% CI] | goal | met |", "|---|---:|---:|---|---|"]
    for better, baseline, factor in PAIRS:
        if better not in finals or baseline not in finals:
            continue
        x, y = finals[better], finals[baseline]
        p_improve, p_low, p_high = stratified_bootstrap_ci(probability_of_improvement, x[:, None], y[:, None])
        if y.mean() <= 0:  # a ratio of returns means nothing unless the baseline's is positive
            lines.append(f"| {better} / {baseline} | – ({baseline}'s mean return ≤ 0) | {p_improve:.2f} "
                         f"[{p_low:.2f}, {p_high:.2f}] | ≥ {factor:g}× | no |")
            continue
        ratio = x.mean() / y.mean()
        if min(x.size, y.size) < MIN_SEEDS_FOR_A_VERDICT:  # one seed has no interval: no verdict either
            lines.append(f"| {better} / {baseline} | {ratio:.2f} (no CI: {min(x.size, y.size)} seed) | – | "
                         f"≥ {factor:g}× | not yet: needs ≥ {MIN_SEEDS_FOR_A_VERDICT} seeds of each |")
            continue
        low, high = ratio_of_means_ci(x, y)
        disjoint = bootstrap_ci(x)[0] > bootstrap_ci(y)[1]
        goal = f"≥ {factor:g}× with disjoint CIs" if factor > 1 else "≥ 1×"
        met = (ratio >= factor and disjoint) if factor > 1 else ratio >= factor
        lines.append(f"| {better} / {baseline} | {ratio:.2f} [{low:.2f}, {high:.2f}] | {p_improve:.2f} "
                     f"[{p_low:.2f}, {p_high:.2f}] | {goal} | {'yes' if met else 'no'} |")
    lines += ["", "![filtering](headline_filtering.png)", "",
              "| agent | network | in-degree ratio at the end: mean [95% CI] | steps to 2×: median (seeds) "
              "| steps to 3×: median (seeds) |", "|---|---|---:|---:|---:|"]
    sparse = {agent: runs for agent, runs in groups.items() if runs[0].get("in_degree_ratio_actor") not in (None, "")}
    plot_filtering(sparse, warmup, out / "headline_filtering.png")
    for agent, runs in sparse.items():
        for network, seeds in filtering_rows(runs).items():
            ends = np.array([rows[-1][f"in_degree_ratio_{network}"] for rows in seeds if rows])
            cells = []
            for threshold in (2.0, 3.0):
                hits = [first_step_reaching([row["timesteps"] - warmup for row in rows],
                                            [row[f"in_degree_ratio_{network}"] for row in rows], threshold)
                        for rows in seeds if rows]
                reached = [hit for hit in hits if not math.isnan(hit)]
                cells.append(f"{np.median(reached):,.0f} ({len(reached)}/{len(hits)})" if reached else
                             f"– (0/{len(hits)})")
            lines.append(f"| {agent} | {network} | {mean_ci_text(ends, '.2f')} | {cells[0]} | {cells[1]} |")
    lines += ["", "In-degree ratio: mean connections of a real input column over those of a noise column "
              "(Grooten et al.'s metric; 1.0 at the start), from each run's topology.csv (after every "
              "topology update, every 1000 gradient steps). Steps to 2× / 3×: the first update at which a "
              "seed's ratio reaches it, median over the seeds that did (how many of all in brackets)."]
    return "\n".join(lines) + "\n"



def main(argv: Sequence[str] | None = None) -> int:
    """Write the report for a sweep directory."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="the sweep directory (bench_runs/headline)")
    parser.add_argument("--out", type=Path, default=None, help="where headline.md and the figures go")
    parser.add_argument("--warmup", type=int, default=25_000, help="random warm-up steps (learning_starts)")
    args = parser.parse_args(argv)
    out = args.out or args.sweep
    text = report(args.sweep, out, args.warmup)
    (out / "headline.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
