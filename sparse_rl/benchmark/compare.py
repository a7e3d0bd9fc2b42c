"""Learning curves of several runs or sweeps on one plot (``sparse-rl compare RUN_OR_SWEEP ...``).

Each argument is a run directory (its ``metrics.csv``: one line), a sweep directory (its
``results/<run>.json``: one line per agent, env and noise fraction, the mean over seeds with a 95%
bootstrap band) or any directory holding run directories (each a line). The figure is built with
matplotlib's object API (no pyplot, no backend chosen): :func:`plot_curves` returns it, the caller
saves it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from sparse_rl._util.outputs import check_output_file, describe_os_error
from sparse_rl._util.rundir import RunDir
from sparse_rl.analysis.plots.saving import save_figure
from sparse_rl.analysis.plots.style import SERIES_COLORS
from sparse_rl.benchmark.stats import curve_band
from sparse_rl.experiment.errors import UserError


@dataclass
class Curve:
    """One line of the comparison: evaluation returns of one or more seeds on common steps.

    :param label: the legend's text
    :param steps: evaluation env steps
    :param returns: shape ``(n_seeds, n_steps)``
    """

    label: str
    steps: np.ndarray
    returns: np.ndarray


def _run_curve(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    metrics = RunDir(run_dir).metrics
    try:
        with metrics.open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.DictReader(handle) if row.get("eval_return_mean")]
        steps = np.array([float(row["timesteps"]) for row in rows])
        returns = np.array([float(row["eval_return_mean"]) for row in rows])
    except (OSError, UnicodeDecodeError, csv.Error, ValueError, TypeError, KeyError) as error:
        raise UserError(f"cannot read {str(metrics)!r}: it is not a metrics table of sparse-rl train "
                        f"({type(error).__name__}: {' '.join(str(error).split())[:120]})") from None
    return steps, returns


def _sweep_curves(sweep_dir: Path) -> list[Curve]:
    groups: dict[str, list[Mapping]] = {}
    for path in sorted((sweep_dir / "results").glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            curve = record.get("curve") if isinstance(record, dict) else None
            if curve and not (isinstance(curve, dict) and len(curve["timesteps"]) == len(curve["returns"])):
                raise ValueError("its curve is not {timesteps, returns} of equal lengths")
        except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as error:
            raise UserError(f"cannot read {str(path)!r}: it is not a run record of sparse-rl benchmark "
                            f"({' '.join(str(error).split())[:120]})") from None
        if not curve:
            continue
        label = f"{record.get('agent')} · {record.get('env')} f={record.get('noise_fraction')}"
        groups.setdefault(label, []).append(record)
    curves = []
    for label, records in groups.items():
        tables = [dict(zip(r["curve"]["timesteps"], r["curve"]["returns"])) for r in records]
        common = sorted(set.intersection(*(set(t) for t in tables)))
        returns = np.array([[np.nan if t[s] is None else t[s] for s in common] for t in tables], dtype=float)
        curves.append(Curve(f"{label} ({len(records)} seeds)", np.asarray(common, dtype=float), returns))
    return curves


def load_curves(paths: Sequence[str | Path], labels: Sequence[str] | None = None) -> list[Curve]:
    """The curves of run directories, sweep directories and directories of runs.

    :param paths: the directories
    :param labels: a label per path for run directories (default: the directory's name)
    :raises UserError: for a path that is none of these, or a run without evaluations
    """
    if labels is not None and len(labels) != len(paths):
        raise UserError(f"--labels gives {len(labels)} label(s) for {len(paths)} path(s): give one per path")
    curves: list[Curve] = []
    for index, given in enumerate(paths):
        path = Path(given)
        if RunDir(path).config.is_file() and RunDir(path).metrics.is_file():
            steps, returns = _run_curve(path)
            if steps.size == 0:
                raise UserError(f"run {str(path)!r} has no evaluation yet")
            label = labels[index] if labels and index < len(labels) else path.resolve().name
            curves.append(Curve(label, steps, returns[None, :]))
        elif (path / "results").is_dir():
            curves.extend(_sweep_curves(path))
        elif path.is_dir() and any(RunDir(child).metrics.is_file() for child in path.iterdir()):
            curves.extend(load_curves(sorted(c for c in path.iterdir() if RunDir(c).metrics.is_file())))
        else:
            raise UserError(f"{str(path)!r} is neither a run directory (config.yaml, metrics.csv), a sweep directory "
                            "(results/) nor a directory of runs")
    if not curves:
        raise UserError("nothing to compare: no run with evaluations found")
    return curves


def plot_curves(curves: Sequence[Curve], title: str = "evaluation return") -> Figure:
    """One axis, one line per curve (the mean over seeds, with a 95% bootstrap band when there
    are several seeds).

    :param curves: the curves
    :param title: the figure's title
    """
    figure = Figure(figsize=(8, 4.8))
    ax = figure.subplots()
    for index, curve in enumerate(curves):
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        if curve.returns.shape[0] > 1:
            mean, low, high = curve_band(curve.returns)
            ax.fill_between(curve.steps, low, high, color=color, alpha=0.2, linewidth=0)
        else:
            mean = curve.returns[0]
        ax.plot(curve.steps, mean, color=color, label=curve.label, marker="o" if curve.steps.size < 12 else None,
                markersize=3)
    ax.set_title(title)
    ax.set_xlabel("env step")
    ax.set_ylabel("mean evaluation return")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def compare(paths: Sequence[str | Path], out: str | Path, labels: Sequence[str] | None = None,
            title: str | None = None) -> Path:
    """Plot the learning curves of ``paths`` into the image ``out`` (PNG, PDF, SVG…).

    :param paths: run, sweep or run-holding directories
    :param out: the image to write
    :param labels: labels of the run directories
    :param title: the title (default: how many curves)
    :raises UserError: for an image that cannot be written or of a format matplotlib does not write
        (checked first), or a path that cannot be read
    """
    out = check_output_file(out, "--out", image_suffixes())  # before any work
    curves = load_curves(paths, labels)
    figure = plot_curves(curves, title or f"evaluation return of {len(curves)} runs / agents")
    try:
        save_figure(figure, out)
    except OSError as error:
        raise UserError(f"cannot write {str(out)!r}: {describe_os_error(error)}") from None
    return out


def image_suffixes() -> list[str]:
    """The image formats matplotlib writes here, as suffixes (``.png``, ``.pdf``, ``.svg``…)."""
    return sorted(f".{name}" for name in Figure().canvas.get_supported_filetypes())
