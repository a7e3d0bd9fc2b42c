"""A filtering metric registered in one place (one function in :mod:`sparse_rl.sparse.connectivity`)
reaches everything that shows filtering metrics, with no other edit: the training logs (SB3's
logger, ``metrics.csv``, ``topology.csv``), the analysis (its summaries and tables, TensorBoard's
keys, the figures), the benchmark (a run's record, ``results.csv``, the cells' statistics, the
filtering figure) and what ``sparse-rl analyze`` prints."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure

from sparse_rl.sparse.connectivity import FILTERING_METRICS, InputColumns, filtering_keys, register_filtering_metric

NAME = "max_in_degree_noise"
LABEL = "most connected noise feature"


def _max_in_degree_noise(columns: InputColumns) -> float:
    """The in-degree of the most connected noise column (``nan`` without noise)."""
    noise = columns.observed[~columns.real]
    return float(noise.max()) if noise.size else math.nan


@pytest.fixture
def extra_metric() -> Iterator[str]:
    """:data:`NAME` registered for one test, and unregistered after it."""
    register_filtering_metric(NAME, label=LABEL, unit="active connections")(_max_in_degree_noise)
    try:
        yield NAME
    finally:
        FILTERING_METRICS.pop(NAME, None)
    assert NAME not in filtering_keys()


def _capture_figures(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[Figure]:
    """The figures ``module.save_figure`` saves from now on (it still saves them)."""
    figures: list[Figure] = []
    original = module.save_figure

    def capture(figure: Figure, path: Any) -> Path:
        figures.append(figure)
        return original(figure, path)

    monkeypatch.setattr(module, "save_figure", capture)
    return figures


def _titles(figures: list[Figure]) -> list[str]:
    return [ax.get_title(loc="left") for figure in figures for ax in figure.axes]


def _header(path: Path) -> list[str]:
    with path.open(newline="") as file:
        return next(csv.reader(file))


def _column(path: Path, name: str) -> list[float]:
    with path.open(newline="") as file:
        return [float(row[name]) for row in csv.DictReader(file) if row[name] != ""]


def test_a_registered_metric_reaches_logs_analysis_benchmark_and_figures(
        extra_metric: str, tiny_config: Callable[..., dict[str, Any]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sparse_rl.analysis import plots as analysis_plots
    from sparse_rl.analysis.loading import load_run
    from sparse_rl.analysis.report import analyze_run
    from sparse_rl.analysis.tb_export import scalar_keys
    from sparse_rl.benchmark import plots as benchmark_plots
    from sparse_rl.benchmark.execute import summarize_run
    from sparse_rl.benchmark.results import cell_statistics, result_fields, write_results_csv
    from sparse_rl.cli import analyze_summary_keys
    from sparse_rl.experiment.config import config_from_dict
    from sparse_rl.experiment.runner import train

    run_dir = train(config_from_dict(tiny_config(total_timesteps=200, run={"log_formats": ["csv"]}))).run_dir

    # training logs: SB3's logger, metrics.csv (each evaluation), topology.csv (each update)
    assert f"sparsity/actor/{NAME}" in _header(run_dir / "progress.csv")
    for table in ("metrics.csv", "topology.csv"):
        assert {f"{NAME}_actor", f"{NAME}_qf0", f"{NAME}_qf1"} <= set(_header(run_dir / table)), table
    logged = _column(run_dir / "metrics.csv", f"{NAME}_actor")
    assert len(logged) == 2 and all(0 < value <= 32 for value in logged)

    # the analysis: summaries, tables, TensorBoard's keys, the figures
    analysis_figures = _capture_figures(monkeypatch, analysis_plots)
    result = analyze_run(run_dir, out_dir=tmp_path / "analysis", tensorboard=False, gif=False)
    assert result["final"]["actor"][NAME] == logged[-1]
    assert NAME in _header(Path(result["files"]["connectivity_over_time"]))
    assert NAME in scalar_keys() and NAME in analyze_summary_keys()
    assert any(title.endswith(LABEL) for title in _titles(analysis_figures))  # real_share.png
    comparison = analysis_plots.plot_run_comparison({"run": load_run(run_dir, final_model=False).series})
    assert LABEL in _titles([comparison])

    # the benchmark: a run's record, results.csv, the cells' statistics, the filtering figure
    record = {**summarize_run(run_dir), "run_id": "run", "env": "Pendulum-v1", "noise_fraction": 0.5,
              "agent": "ANF-SAC", "seed": 1}
    assert record[f"{NAME}_actor"] == logged[-1] and 0 < record[f"{NAME}_critic"] <= 32
    assert record["filtering_curve"][f"{NAME}_actor"] == logged
    assert {f"{NAME}_actor", f"{NAME}_critic"} <= set(result_fields())
    results = write_results_csv([record], tmp_path / "results.csv")
    assert _column(results, f"{NAME}_critic") == [pytest.approx(record[f"{NAME}_critic"], rel=1e-5)]
    assert cell_statistics([record])[f"{NAME}_actor"] == logged[-1]
    benchmark_figures = _capture_figures(monkeypatch, benchmark_plots)
    assert benchmark_plots.plot_filtering_curves([record], tmp_path / "plots", ["ANF-SAC"])
    assert {f"actor: {LABEL}", f"critic: {LABEL}"} <= set(_titles(benchmark_figures))


def test_metrics_sharing_a_panel_are_drawn_on_one_axis(extra_metric: str) -> None:
    from sparse_rl.analysis.plots.style import filtering_panels

    panels = {panel.title: panel for panel in filtering_panels()}
    in_degree = panels["mean in-degree of a real vs a noise feature"]
    assert [metric.name for metric in in_degree.metrics] == ["in_degree_real", "in_degree_noise"]
    assert in_degree.line_label("actor", in_degree.metrics[1]) == "actor: noise"
    assert list(panels)[-1] == LABEL and panels[LABEL].unit == "active connections"
    assert panels[LABEL].line_label("actor", panels[LABEL].metrics[0]) == "actor"
