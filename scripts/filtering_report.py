"""A sweep's filtering results as markdown, and the time-to-return figure.

For each noisy cell and sparse agent: over the seeds, the final in-degree ratio (real / noise
columns) of every input layer (actor, qf0, qf1) and the top-n_real strength precision, with the
worst seed, and whether every seed meets the target of the medium tier (ratio >= 3 in every
network, precision 1.0). With ``--threshold ENV=RETURN`` it also draws the wall-clock time each
agent needs to reach that return (``plots/time_to_return.png`` in the sweep directory). Usage::

    python scripts/filtering_report.py bench_runs/medium --threshold InvertedDoublePendulum-v5=1000 \\
        --threshold Reacher-v5=-10 > filtering.md
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import Any

from sparse_rl.benchmark.plots import PLOTS_DIR, plot_time_to_return, time_to_return
from sparse_rl.benchmark.results import read_records

NETWORKS = ("actor", "qf0", "qf1")


def last_row(run_dir: Path) -> dict[str, str]:
    """The last evaluation row of a run's metrics.csv."""
    with (run_dir / "metrics.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return rows[-1] if rows else {}


def number(value: Any) -> float:
    """A float, ``nan`` for an empty or missing value."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def filtering_table(records: list[dict[str, Any]], out_dir: Path) -> str:
    """The markdown table of every sparse agent's filtering on every noisy cell."""
    lines = ["| env | noise | agent | seeds | in-degree ratio actor / qf0 / qf1: mean (worst seed) "
             "| top-n_real precision: mean (worst) | every seed ≥ 3× and 1.0 |",
             "|---|---:|---|---:|---|---|---|"]
    cells: dict[tuple[str, float, str], list[dict[str, str]]] = {}
    for record in records:
        if float(record["noise_fraction"]) == 0:
            continue
        run_dir = Path(record["run_dir"])
        if not run_dir.is_absolute() and not run_dir.exists():
            run_dir = out_dir / "runs" / record["run_id"]
        row = last_row(run_dir)
        if math.isnan(number(row.get("in_degree_ratio_actor"))):
            continue  # dense: no in-degree
        cells.setdefault((record["env"], float(record["noise_fraction"]), record["agent"]), []).append(row)
    for (env, fraction, agent), rows in cells.items():
        ratios = {net: [number(r.get(f"in_degree_ratio_{net}")) for r in rows] for net in NETWORKS}
        precision = [min(number(r.get(f"topk_precision_{net}")) for net in NETWORKS) for r in rows]
        ratio_text = " / ".join(f"{sum(v) / len(v):.2f} ({min(v):.2f})" for v in ratios.values())
        met = all(min(ratios[net][i] for net in NETWORKS) >= 3 and precision[i] >= 1.0 for i in range(len(rows)))
        lines.append(f"| {env} | {fraction:g} | {agent} | {len(rows)} | {ratio_text} "
                     f"| {sum(precision) / len(precision):.2f} ({min(precision):.2f}) | {'yes' if met else 'no'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Print the table; draw the time-to-return figure when thresholds are given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--threshold", action="append", default=[], metavar="ENV=RETURN")
    args = parser.parse_args()
    records = sorted(read_records(args.sweep_dir).values(), key=lambda r: r["run_id"])
    print(filtering_table(records, args.sweep_dir))
    thresholds = {key: float(value) for key, value in (item.split("=", 1) for item in args.threshold)}
    if thresholds:
        agents = list(dict.fromkeys(r["agent"] for r in records))
        path = plot_time_to_return(records, args.sweep_dir / PLOTS_DIR / "time_to_return.png", agents, thresholds)
        print(f"![time to return]({path})\n")
        print("| env | noise | agent | seeds reaching | minutes: mean of those |\n|---|---:|---|---:|---:|")
        for env in thresholds:
            for fraction in sorted({float(r["noise_fraction"]) for r in records if r["env"] == env}, reverse=True):
                for agent in agents:
                    runs = [r for r in records if r["env"] == env and float(r["noise_fraction"]) == fraction
                            and r["agent"] == agent]
                    times = [t for t in (time_to_return(r, thresholds[env]) for r in runs) if not math.isnan(t)]
                    mean = f"{sum(times) / len(times) / 60:.1f}" if times else "–"
                    print(f"| {env} | {fraction:g} | {agent} | {len(times)}/{len(runs)} | {mean} |")


if __name__ == "__main__":
    main()
