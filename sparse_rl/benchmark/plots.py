"""Learning curves of a sweep: per env and noise fraction, the mean evaluation return over seeds
with its 95% bootstrap confidence band, one line per agent; and per env, one panel per noise
fraction side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure  # the object API: no backend chosen, no pyplot state
from matplotlib.ticker import FuncFormatter

from sparse_rl.analysis.plots.saving import save_figure
from sparse_rl.analysis.plots.style import METRIC_STYLES, SERIES_COLORS, filtering_panels, finite
from sparse_rl.benchmark.stats import curve_band

PLOTS_DIR = "plots"


def aligned_curves(records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """The seeds' learning curves on the evaluation steps they all have.

    :param records: runs of one agent in one cell (each with ``curve.timesteps`` and ``curve.returns``)
    :return: ``(steps, returns)``, ``returns`` of shape ``(n_seeds, n_steps)`` (empty if no common step)
    """
    curves = [dict(zip(r["curve"]["timesteps"], r["curve"]["returns"])) for r in records]
    common = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    returns = np.array([[np.nan if c[s] is None else c[s] for s in common] for c in curves], dtype=float)
    return np.asarray(common, dtype=float), returns.reshape(len(curves), len(common))


def draw_cell(ax: Axes, records: Sequence[Mapping[str, Any]], agents: Sequence[str], title: str) -> None:
    """Draw one cell's curves (one line and band per agent) on ``ax``.

    :param ax: the axes
    :param records: the cell's runs (all agents, all seeds)
    :param agents: agent labels in the sweep's order (colours follow it)
    :param title: the axes' title
    """
    for index, agent in enumerate(agents):
        runs = [r for r in records if r["agent"] == agent]
        if not runs:
            continue
        steps, returns = aligned_curves(runs)
        if steps.size == 0:
            continue
        mean, low, high = curve_band(returns)
        color = SERIES_COLORS[index % len(SERIES_COLORS)]  # in the sweep's order
        ax.plot(steps, mean, color=color, linewidth=1.8, label=f"{agent} ({len(runs)} seeds)")
        if len(runs) > 1:
            ax.fill_between(steps, low, high, color=color, alpha=0.2, linewidth=0)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("env steps")
    ax.set_ylabel("evaluation return")
    ax.grid(True, alpha=0.3)
    ax.xaxis.set_major_formatter(FuncFormatter(_steps_label))


def _steps_label(value: float, _position: int) -> str:
    """Env steps as ``500``, ``15k``, ``1.5M``."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def plot_learning_curves(records: Sequence[Mapping[str, Any]], out_dir: str | Path,
                         agents: Sequence[str]) -> list[Path]:
    """Write ``<env>-f<noise>.png`` per cell and ``<env>.png`` (all noise fractions side by side) per
    env into ``out_dir``.

    :param records: finished runs' records
    :param out_dir: the plots' directory (created)
    :param agents: agent labels in the sweep's order
    :return: the files written (per-env overviews first)
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    envs = list(dict.fromkeys(str(r["env"]) for r in records))
    for env in envs:
        env_records = [r for r in records if r["env"] == env]
        fractions = sorted({float(r["noise_fraction"]) for r in env_records})
        figure = Figure(figsize=(max(6.4, 4.6 * len(fractions) + 0.6), 3.8))
        axes = figure.subplots(1, len(fractions), squeeze=False)
        for ax, fraction in zip(axes[0], fractions):
            cell = [r for r in env_records if float(r["noise_fraction"]) == fraction]
            draw_cell(ax, cell, agents, f"{env}, noise fraction {fraction:g}")
        _legend(figure, axes[0][0])
        figure.suptitle(f"{env}: mean evaluation return over seeds, 95% bootstrap CI", fontsize=11)
        figure.tight_layout(rect=(0, 0.1, 1, 0.95))
        written.append(save_figure(figure, out / f"{env}.png"))
    for env in envs:
        env_records = [r for r in records if r["env"] == env]
        for fraction in sorted({float(r["noise_fraction"]) for r in env_records}):
            cell = [r for r in env_records if float(r["noise_fraction"]) == fraction]
            figure = Figure(figsize=(6.0, 4.2))
            ax = figure.subplots()
            draw_cell(ax, cell, agents, f"{env}, noise fraction {fraction:g}: mean return, 95% bootstrap CI")
            ax.legend(loc="lower right", fontsize=8)
            figure.tight_layout()
            written.append(save_figure(figure, out / f"{env}-f{fraction:g}.png"))
    return written


def plot_filtering_curves(records: Sequence[Mapping[str, Any]], out_dir: str | Path,
                          agents: Sequence[str]) -> list[Path]:
    """Write ``filtering-<env>-f<noise>.png`` per noisy cell: the filtering metrics over training,
    one row per registered metric's panel (:func:`~sparse_rl.analysis.plots.style.filtering_panels`:
    first the mean in-degree of the real (solid) and of the noise (dashed) input columns, Grooten et
    al.'s figure), actor and critic side by side, mean over seeds, one colour per agent. Agents and
    panels without data (dense agents; metrics an older record lacks) are left out.

    :param records: finished runs' records (with ``filtering_curve``)
    :param out_dir: the plots' directory (created)
    :param agents: agent labels in the sweep's order
    :return: the files written
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    cells = dict.fromkeys((str(r["env"]), float(r["noise_fraction"])) for r in records
                          if float(r["noise_fraction"]) > 0)
    networks = ("actor", "critic")
    registered = filtering_panels()
    for env, fraction in cells:
        cell = [r for r in records if r["env"] == env and float(r["noise_fraction"]) == fraction]
        curves = {}  # (panel index, network, agent) -> the panel's metrics' mean curves, and the seeds
        for p, panel in enumerate(registered):
            for network in networks:
                for agent in agents:
                    runs = [r for r in cell if r["agent"] == agent and r.get("filtering_curve")]
                    means = [mean_curve(runs, f"{metric.name}_{network}") for metric in panel.metrics]
                    if any(mean is not None for mean in means):
                        curves[(p, network, agent)] = (means, len(runs))
        panels = [(p, panel) for p, panel in enumerate(registered)
                  if any(key[0] == p for key in curves)]
        if not panels:
            continue
        figure = Figure(figsize=(10.0, 0.8 + 3.4 * len(panels)))
        grid = figure.subplots(len(panels), len(networks), squeeze=False)
        for row, (p, panel) in zip(grid, panels):
            for ax, network in zip(row, networks):
                for index, agent in enumerate(agents):
                    if (p, network, agent) not in curves:
                        continue
                    means, seeds = curves[(p, network, agent)]
                    color = SERIES_COLORS[index % len(SERIES_COLORS)]  # in the sweep's order
                    for k, (metric, mean) in enumerate(zip(panel.metrics, means)):
                        if mean is None:
                            continue
                        label = panel.line_label(agent, metric) + (f" ({seeds} seeds)" if k == 0 else "")
                        ax.plot(mean[0], finite(mean[1]), color=color, linewidth=1.8 if k == 0 else 1.2,
                                linestyle=METRIC_STYLES[k % len(METRIC_STYLES)], label=label)
                panel.format_axis(ax)
                ax.set_title(f"{network}: {panel.title}", fontsize=10, loc="left")
                ax.set_xlabel("env steps")
                ax.grid(True, alpha=0.3)
                ax.xaxis.set_major_formatter(FuncFormatter(_steps_label))
            if row[0].get_legend_handles_labels()[0]:
                row[0].legend(fontsize=7, loc="best")
        figure.suptitle(f"{env}, noise fraction {fraction:g}: filtering metrics over training, mean over seeds",
                        fontsize=11)
        figure.tight_layout()
        written.append(save_figure(figure, out / f"filtering-{env}-f{fraction:g}.png"))
    return written


def mean_curve(runs: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The mean over runs of one filtering curve on the evaluation steps all runs have (``None``
    when no run has it).

    :param runs: records of one agent in one cell (with ``curve.timesteps`` and ``filtering_curve``)
    :param key: the filtering curve's name, e.g. ``in_degree_ratio_actor``
    :return: ``(steps, mean)``, or ``None``
    """
    series = [dict(zip(r["curve"]["timesteps"], r["filtering_curve"].get(key, []))) for r in runs]
    series = [s for s in series if s and not all(v is None or np.isnan(v) for v in s.values())]
    if not series:
        return None
    common = sorted(set.intersection(*(set(s) for s in series)))
    values = np.array([[np.nan if s[t] is None else s[t] for t in common] for s in series], dtype=float)
    return np.asarray(common, dtype=float), np.nanmean(values, axis=0)


def time_to_return(record: Mapping[str, Any], threshold: float) -> float:
    """Wall-clock seconds of training until the first evaluation whose mean return reaches
    ``threshold`` (``nan`` if none does, or the record has no wall times)."""
    curve = record["curve"]
    for value, seconds in zip(curve["returns"], curve.get("wall_time_s", [])):
        if value is not None and value >= threshold:
            return float(seconds)
    return float("nan")


def plot_time_to_return(records: Sequence[Mapping[str, Any]], path: str | Path, agents: Sequence[str],
                        thresholds: Mapping[str, float]) -> Path:
    """One figure of sample efficiency and speed together: per cell, the wall-clock time each agent
    needs to reach the env's stated return (a dot per seed, a bar for the mean of those that reach
    it; seeds that never do are counted in the label).

    :param records: finished runs' records
    :param path: the PNG to write
    :param agents: agent labels in the sweep's order
    :param thresholds: the return to reach, by env label
    """
    cells = list(dict.fromkeys((str(r["env"]), float(r["noise_fraction"])) for r in records
                               if str(r["env"]) in thresholds))
    figure = Figure(figsize=(max(6.0, 3.2 * len(cells)), 4.2))
    axes = figure.subplots(1, max(1, len(cells)), squeeze=False)[0]
    for ax, (env, fraction) in zip(axes, cells):
        for index, agent in enumerate(agents):
            runs = [r for r in records if r["env"] == env and float(r["noise_fraction"]) == fraction
                    and r["agent"] == agent]
            if not runs:
                continue
            times = np.array([time_to_return(r, thresholds[env]) for r in runs]) / 60.0
            reached = times[~np.isnan(times)]
            color = SERIES_COLORS[index % len(SERIES_COLORS)]  # in the sweep's order
            if reached.size:
                ax.bar(index, reached.mean(), color=color, alpha=0.35)
                ax.scatter(np.full(reached.size, index), reached, color=color, s=14, zorder=3)
            ax.text(index, 0, f"{reached.size}/{len(runs)}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(agents)))
        ax.set_xticklabels(agents, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{env}, f = {fraction:g}: return ≥ {thresholds[env]:g}", fontsize=9)
        ax.set_ylabel("wall-clock minutes of training")
        ax.grid(True, axis="y", alpha=0.3)
    figure.suptitle("time to reach the stated return (dots: seeds; n/N: seeds that reach it)", fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)


def _legend(figure: Figure, ax: Axes) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="lower center", ncol=min(len(handles), 4), fontsize=9, frameon=False)
