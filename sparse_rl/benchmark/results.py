"""A sweep's records and reports: ``results/<run id>.json`` per finished run, ``results.csv`` (a row
per run) and ``summary.md`` (a row per cell: env, noise fraction, agent; statistics over seeds).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sparse_rl._util.jsonutil import to_jsonable
from sparse_rl.benchmark.aggregates import seed_warning
from sparse_rl.benchmark.stats import bootstrap_ci, iqm
from sparse_rl.sparse.connectivity import filtering_keys

RECORDS_DIR = "results"
RESULTS_CSV = "results.csv"
SUMMARY_MD = "summary.md"

#: the columns of results.csv before the filtering metrics, in order
RUN_FIELDS = (
    "run_id", "env", "noise_fraction", "agent", "seed", "algorithm", "implementation", "sparsity", "timesteps",
    "final_return", "mean_return", "auc", "steps_per_second", "wall_time_s",
    "actor_params", "actor_dense_params", "actor_weights", "actor_dense_weights", "actor_flops",
    "critic_params", "critic_dense_params", "critic_weights", "critic_dense_weights", "critic_flops",
    "weights_pct_of_dense",
)


def result_fields() -> tuple[str, ...]:
    """The columns of results.csv, in order: :data:`RUN_FIELDS`, every registered filtering metric
    (``<name>_actor``, ``<name>_critic``; the registry as it is now), then ``run_dir``."""
    return (*RUN_FIELDS, *(f"{key}_{network}" for key in filtering_keys() for network in ("actor", "critic")),
            "run_dir")


# --------------------------------------------------------------------------------------------------
# records


def record_path(out_dir: str | Path, run_id: str) -> Path:
    """Where the record of run ``run_id`` goes.

    :param out_dir: the sweep's output directory
    :param run_id: the run's id
    """
    return Path(out_dir) / RECORDS_DIR / f"{run_id}.json"


def write_record(out_dir: str | Path, record: Mapping[str, Any]) -> Path:
    """Write a finished run's record (atomically: a run with a record is done and skipped).

    :param out_dir: the sweep's output directory
    :param record: from :func:`~sparse_rl.benchmark.execute.execute_run`
    """
    path = record_path(out_dir, str(record["run_id"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(to_jsonable(record), indent=1), encoding="utf-8")
    os.replace(temporary, path)
    return path


def read_records(out_dir: str | Path, run_ids: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """The records of finished runs, by run id (only those of ``run_ids`` if given; unreadable
    files are skipped: their runs count as not done).

    :param out_dir: the sweep's output directory
    :param run_ids: the runs wanted (``None``: all)
    """
    directory = Path(out_dir) / RECORDS_DIR
    records: dict[str, dict[str, Any]] = {}
    if not directory.is_dir():
        return records
    wanted = None if run_ids is None else set(run_ids)
    for path in sorted(directory.glob("*.json")):
        if wanted is not None and path.stem not in wanted:
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(record, dict) and record.get("status") == "finished":
            records[path.stem] = record
    return records


# --------------------------------------------------------------------------------------------------
# results.csv


def write_results_csv(records: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """One row per run with the columns :func:`result_fields` (the learning curve is left out; it is
    in the records).

    :param records: finished runs' records, in the order wanted
    :param path: the CSV file
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        fields = result_fields()
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow({key: _cell(record.get(key)) for key in fields})
    os.replace(temporary, path)
    return path


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else value


# --------------------------------------------------------------------------------------------------
# summary.md


def cell_statistics(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Statistics over the seeds of one cell (one agent on one env at one noise fraction).

    :param records: the cell's finished runs
    :return: ``seeds``; ``final_mean``, ``final_ci`` (bootstrap 95%), ``final_iqm``; ``auc_mean``,
        ``auc_ci``; ``weights_pct`` (of dense); every filtering metric as ``<name>_actor`` and
        ``<name>_critic`` (:func:`~sparse_rl.sparse.connectivity.filtering_keys`, means over seeds);
        ``steps_per_second`` (mean)
    """
    final = [_float(r.get("final_return")) for r in records]
    areas = [_float(r.get("auc")) for r in records]
    return {
        "seeds": len(records),
        "final_mean": _mean(final),
        "final_ci": bootstrap_ci(final),
        "final_iqm": iqm(final),
        "auc_mean": _mean(areas),
        "auc_ci": bootstrap_ci(areas),
        "weights_pct": _mean([_float(r.get("weights_pct_of_dense")) for r in records]),
        **{f"{key}_{network}": _mean([_float(r.get(f"{key}_{network}")) for r in records])
           for key in filtering_keys() for network in ("actor", "critic")},
        "steps_per_second": _mean([_float(r.get("steps_per_second")) for r in records]),
    }


def summary_table(records: Sequence[Mapping[str, Any]], agents: Sequence[str]) -> str:
    """The markdown table of ``summary.md``: one row per (env, noise fraction, agent), the agents in
    the sweep's order.

    :param records: finished runs' records
    :param agents: the agents' labels, in the order of the sweep file
    """
    cells: dict[tuple[str, float, str], list[Mapping[str, Any]]] = {}
    for record in records:
        key = (str(record["env"]), float(record["noise_fraction"]), str(record["agent"]))
        cells.setdefault(key, []).append(record)
    order = {label: i for i, label in enumerate(agents)}
    lines = ["| env | noise | agent | seeds | final return: mean [95% CI] | final return: IQM | "
             "AUC: mean [95% CI] | weights % of dense | in-degree real / noise (actor; critic) | "
             "top-n_real precision (actor; critic) | steps/s |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    envs = list(dict.fromkeys(str(r["env"]) for r in records))
    for env, fraction, agent in sorted(cells, key=lambda k: (envs.index(k[0]), k[1], order.get(k[2], len(order)))):
        stats = cell_statistics(cells[(env, fraction, agent)])
        lines.append(
            f"| {env} | {fraction:g} | {agent} | {stats['seeds']} | {_with_ci(stats['final_mean'], stats['final_ci'])} "
            f"| {_fmt(stats['final_iqm'])} | {_with_ci(stats['auc_mean'], stats['auc_ci'])} "
            f"| {_fmt(stats['weights_pct'], '.1f')} | {_in_degrees(stats)} "
            f"| {_fmt(stats['topk_precision_actor'], '.2f')}; {_fmt(stats['topk_precision_critic'], '.2f')} "
            f"| {_fmt(stats['steps_per_second'], '.0f')} |")
    return "\n".join(lines) + "\n"


def _in_degrees(stats: Mapping[str, Any]) -> str:
    """``real / noise = ratio×`` of the mean in-degrees, actor then critic (``–`` when dense)."""
    parts = []
    for network in ("actor", "critic"):
        real, noise = stats[f"in_degree_real_{network}"], stats[f"in_degree_noise_{network}"]
        if math.isnan(real) or math.isnan(noise):
            parts.append("–")
        else:
            ratio = real / noise if noise > 0 else math.inf
            parts.append(f"{real:.1f} / {noise:.1f} = {ratio:.2f}×")
    return "; ".join(parts)


def write_summary(records: Sequence[Mapping[str, Any]], path: str | Path, *, name: str, description: str,
                  agents: Sequence[str], planned: int, plots: Sequence[Path] = ()) -> Path:
    """Write ``summary.md``: what the sweep is, how much of it is done, the table, the plots.

    :param records: finished runs' records
    :param path: the markdown file
    :param name: the sweep's name
    :param description: the sweep's description
    :param agents: the agents' labels in the sweep's order
    :param planned: the number of runs in the sweep
    :param plots: learning-curve images to link (paths relative to ``path``'s directory or absolute)
    """
    path = Path(path)
    parts = [f"# Benchmark: {name}\n"]
    if description:
        parts.append(f"The sweep file's description: {description.strip()}\n")
    parts.append(f"{len(records)} of {planned} runs finished.{what_ran(records)}\n")
    if records:
        parts.append(summary_table(records, agents))
        warning = seed_warning(records)
        if warning:
            parts.append(f"**{warning}** Aggregates across tasks (IQM, performance profiles, probability of "
                         "improvement): aggregates.md.\n")
    parts.append(
        "Per cell, over seeds: *final return* is the last evaluation's mean return, with a 95% percentile "
        "bootstrap confidence interval of the mean over seeds (10,000 resamples) and the interquartile mean "
        "(IQM: mean of the middle 50%; equal to the mean for fewer than 4 seeds). *AUC* is the area under the "
        "evaluation curve divided by its span in steps (the curve's mean height). *Weights % of dense*: the "
        "weights that exist in actor and critics against the same networks fully dense. *In-degree real / "
        "noise*: at the last evaluation, the mean number of connections of a real and of a noise input column "
        "and their ratio (Grooten et al.'s metric; both start at the layer's density times its outputs), for "
        "the actor and averaged over the Q-networks (sparse agents on noisy envs only). *Top-n_real "
        "precision*: the share of real features among the n_real strongest inputs (sum of |w|). *Steps/s*: "
        "env steps per second over the run (the random warm-up included, evaluations excluded), one torch "
        "thread per run.\n")
    if plots:
        parts.append("## Learning curves\n")
        for plot in plots:
            relative = os.path.relpath(plot, path.parent) if Path(plot).is_absolute() else str(plot)
            parts.append(f"![{Path(plot).stem}]({relative})\n")
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text("\n".join(parts), encoding="utf-8")
    os.replace(temporary, path)
    return path


def what_ran(records: Sequence[Mapping[str, Any]]) -> str:
    """What the finished runs did, from their own records (not the sweep file's description, which
    ``--set`` overrides may contradict): agents, envs and noise fractions, seeds, env steps.

    :param records: finished runs' records
    :return: a sentence starting with a space, or ``""`` without records
    """
    if not records:
        return ""

    def listed(key: str) -> str:
        values = sorted({record.get(key) for record in records}, key=lambda value: (str(type(value)), value))
        return ", ".join(str(value) for value in values)

    steps = sorted({int(record["timesteps"]) for record in records if isinstance(record.get("timesteps"), int)})
    seeds = {record.get("seed") for record in records}
    span = (f"{steps[0]:,} env steps each" if len(steps) == 1 else
            f"{steps[0]:,} to {steps[-1]:,} env steps" if steps else "env steps unknown")
    return (f" What ran (the runs' own records): agents {listed('agent')}; envs {listed('env')} at noise fractions "
            f"{listed('noise_fraction')}; {len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({listed('seed')}); "
            f"{span} (the last evaluation's step).")


def _with_ci(mean: float, ci: tuple[float, float]) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]"


def _fmt(value: float, spec: str = ".1f") -> str:
    return "–" if value is None or math.isnan(value) else format(value, spec)


def _mean(values: Sequence[float]) -> float:
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    return float(data.mean()) if data.size else float("nan")


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
