"""``analyze_run``: from a run directory to connectivity plots, metric tables and TensorBoard, in
three steps, each once: read the run (:func:`~sparse_rl.analysis.loading.load_run`), compute what it
shows (:func:`~sparse_rl.analysis.compute.compute`), then draw and write it (here).

What it writes into ``<run>/plots/`` (or ``out_dir``), each only when its data exist:

- from the final model (``model.zip``, else the latest checkpoint; else the last snapshot):
  ``in_degree_final.png`` (sparse input layers), ``strength_final.png``,
  ``features_final.csv`` (one row per network and input feature), ``connectivity_final.json``;
- from the snapshots in ``connectivity/``: ``real_share.png`` (curves over training),
  ``connectivity_heatmap.png`` (feature × time), ``connectivity.gif`` (animation),
  ``connectivity_over_time.csv`` (one row per snapshot and network);
- ``summary.json``: what was written and the run's final metrics;
- TensorBoard scalars and the PNGs as images into ``<run>/tb/analysis`` (replacing the previous
  analysis' events).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sparse_rl._util.jsonutil import to_jsonable
from sparse_rl._util.rundir import RunDir
from sparse_rl.analysis import plots
from sparse_rl.analysis.compute import RunAnalysis, compute
from sparse_rl.analysis.loading import load_run
from sparse_rl.analysis.snapshots import ConnectivitySeries
from sparse_rl.analysis.tb_export import write_tensorboard

#: where the analysis' TensorBoard events go, inside the run's ``tb/``
TB_SUBDIR = "analysis"


def analyze_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    tensorboard: bool = True,
    gif: bool = True,
) -> dict[str, Any]:
    """Analyse the input-layer connectivity of a training run and write plots and tables: the run
    is read once (:func:`~sparse_rl.analysis.loading.load_run`), analysed once
    (:func:`~sparse_rl.analysis.compute.compute`), then drawn and written.

    :param run_dir: the run directory (``runs/<name>/``)
    :param out_dir: where the files go (default ``<run_dir>/plots``)
    :param tensorboard: also write TensorBoard scalars and images to ``<run_dir>/tb/analysis``
    :param gif: also write the animated GIF (the slowest part)
    :return: ``{"run_dir", "out_dir", "files": {name: path}, "final": {network: summary},
        "final_step", "snapshots", "permutation_step", "tensorboard"}``
    :raises ValueError: if ``run_dir`` is not a run directory, or it holds neither a model nor snapshots
    """
    run = load_run(run_dir)
    analysis = compute(run)
    layout = RunDir(run.path)
    out = Path(out_dir) if out_dir is not None else layout.plots
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    if analysis.final is not None:
        files.update(_write_final(analysis, out))
    if len(analysis.series):
        files.update(_write_series(analysis, out, gif))
    final = analysis.final_summaries()
    result: dict[str, Any] = {
        "run_dir": str(run.path),
        "out_dir": str(out),
        "final_source": analysis.final_source,
        "final_step": analysis.final_step,
        "final": final,
        "snapshots": len(analysis.series),
        "permutation_step": analysis.permutation_step,
        "files": {key: str(path) for key, path in files.items()},
        "tensorboard": None,
    }
    if tensorboard:
        tb_dir = layout.tb / TB_SUBDIR
        write_tensorboard(tb_dir, analysis.series, final, [p for p in files.values() if p.suffix == ".png"],
                          analysis.final_step or 0)
        result["tensorboard"] = str(tb_dir)
    summary_path = out / "summary.json"
    result["files"]["summary"] = str(summary_path)
    _write_json(summary_path, result)
    return result


def _write_final(analysis: RunAnalysis, out: Path) -> dict[str, Path]:
    """The final connectivity's figures and tables."""
    final, step = analysis.final or {}, analysis.final_step
    files: dict[str, Path] = {}
    step_text = f"final model, env step {step}" if step is not None else "final model"
    if analysis.past_permutation:
        step_text += f" (features permuted at {analysis.permutation_step})"
    if any(conn.is_sparse for conn in final.values()):
        files["in_degree_final"] = plots.save_figure(
            plots.plot_feature_values(final, "in_degree", step_text, analysis.former_real),
            out / "in_degree_final.png")
    files["strength_final"] = plots.save_figure(
        plots.plot_feature_values(final, "strength", step_text, analysis.former_real), out / "strength_final.png")
    rows = [row for conn in final.values() for row in conn.feature_rows()]
    files["features_final"] = _write_csv(out / "features_final.csv", rows)
    files["connectivity_final"] = _write_json(out / "connectivity_final.json", {
        "source": analysis.final_source, "env_step": step, "networks": analysis.final_summaries()})
    return files


def _write_series(analysis: RunAnalysis, out: Path, gif: bool) -> dict[str, Path]:
    """The figures and the table of the snapshots over training."""
    series, step, title = analysis.series, analysis.permutation_step, analysis.name
    files = {
        "real_share": plots.save_figure(plots.plot_real_share(series, step, title=title), out / "real_share.png"),
        "connectivity_heatmap": plots.save_figure(
            plots.plot_connectivity_heatmap(series, step, title=title), out / "connectivity_heatmap.png"),
        "connectivity_over_time": _write_csv(out / "connectivity_over_time.csv", series.metrics_rows()),
    }
    if gif:
        files["connectivity_gif"] = plots.animate_connectivity(series, out / "connectivity.gif", title=title)
    return files


def compare_runs(run_dirs: Sequence[str | Path], out_path: str | Path,
                 labels: Sequence[str] | None = None) -> Path:
    """Plot several runs' connectivity curves side by side (e.g. a sparse and a dense agent on the
    same env): the strength share and every registered filtering metric they have.

    :param run_dirs: run directories with ``connectivity/`` snapshots
    :param out_path: the PNG to write
    :param labels: a label per run (default: the directory names)
    :raises ValueError: if a directory is not a run directory or has no snapshots
    """
    runs: dict[str, ConnectivitySeries] = {}
    for i, run_dir in enumerate(run_dirs):
        run = load_run(run_dir, final_model=False)
        if len(run.series) == 0:
            raise ValueError(f"{str(run.path)!r} has no connectivity snapshots to compare")
        runs[labels[i] if labels is not None else run.name] = run.series
    return plots.save_figure(plots.plot_run_comparison(runs), out_path)


def _write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(to_jsonable(data), indent=2) + "\n")
    return path


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    fields: list[str] = []
    for row in rows:
        fields.extend(key for key in row if key not in fields)
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path
