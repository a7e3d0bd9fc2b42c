"""``analyze_run``: from a run directory to connectivity plots, metric tables and TensorBoard.

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
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sparse_rl._util import rundir
from sparse_rl._util.jsonutil import to_jsonable
from sparse_rl.analysis import plots
from sparse_rl.analysis.loading import (
    check_run_dir,
    config_algorithm,
    config_permutation_step,
    find_model,
    load_model,
    read_run_config,
    real_mask_from_config,
)
from sparse_rl.analysis.metrics import FeatureConnectivity, input_layer_connectivity
from sparse_rl.analysis.snapshots import ConnectivitySeries, load_snapshots
from sparse_rl.analysis.tb_export import write_tensorboard

TB_DIR = (rundir.TB_DIR, "analysis")


def analyze_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    tensorboard: bool = True,
    gif: bool = True,
) -> dict[str, Any]:
    """Analyse the input-layer connectivity of a training run and write plots and tables.

    :param run_dir: the run directory (``runs/<name>/``)
    :param out_dir: where the files go (default ``<run_dir>/plots``)
    :param tensorboard: also write TensorBoard scalars and images to ``<run_dir>/tb/analysis``
    :param gif: also write the animated GIF (the slowest part)
    :return: ``{"run_dir", "out_dir", "files": {name: path}, "final": {network: summary},
        "final_step", "snapshots", "permutation_step", "tensorboard"}``
    :raises ValueError: if ``run_dir`` is not a run directory, or it holds neither a model nor snapshots
    """
    run = check_run_dir(run_dir)
    out = Path(out_dir) if out_dir is not None else run / rundir.PLOTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    config = read_run_config(run)
    series = load_snapshots(run / rundir.CONNECTIVITY_DIR)
    permutation_step = _permutation_step(series, config)
    final, final_step, final_source = _final_connectivity(run, config, series)
    if final is None and len(series) == 0:
        raise ValueError(f"{str(run)!r} has neither a model (model.zip, checkpoints/) nor connectivity snapshots "
                         "to analyse")
    name = run.resolve().name
    files: dict[str, Path] = {}
    if final is not None:
        former_real = _former_real(series, config, final, permutation_step, final_step)
        files.update(_write_final(final, final_step, final_source, out, permutation_step, former_real))
    if len(series):
        files.update(_write_series(series, permutation_step, out, name, gif))
    result: dict[str, Any] = {
        "run_dir": str(run),
        "out_dir": str(out),
        "final_source": final_source,
        "final_step": final_step,
        "final": {n: c.summary() for n, c in (final or {}).items()},
        "snapshots": len(series),
        "permutation_step": permutation_step,
        "files": {key: str(path) for key, path in files.items()},
        "tensorboard": None,
    }
    if tensorboard:
        tb_dir = run.joinpath(*TB_DIR)
        write_tensorboard(tb_dir, series, result["final"], [p for p in files.values() if p.suffix == ".png"],
                          final_step or 0)
        result["tensorboard"] = str(tb_dir)
    summary_path = out / "summary.json"
    result["files"]["summary"] = str(summary_path)
    _write_json(summary_path, result)
    return result


def _permutation_step(series: ConnectivitySeries, config: Mapping[str, Any]) -> int | None:
    recorded = series.permutation_step()
    if recorded is not None:
        return recorded
    configured = config_permutation_step(config)
    if configured is None or configured <= 0:
        return None
    if len(series) and configured > int(series.env_steps[-1]):
        return None
    return configured


def _config_implementation(config: Mapping[str, Any]) -> str | None:
    agent = config.get("agent")
    implementation = agent.get("implementation") if isinstance(agent, Mapping) else None
    return str(implementation) if implementation else None


def _final_connectivity(
    run: Path, config: Mapping[str, Any], series: ConnectivitySeries
) -> tuple[dict[str, FeatureConnectivity] | None, int | None, str | None]:
    """The final model's connectivity, its env step and where it came from."""
    model_path = find_model(run)
    if model_path is not None:
        try:
            model = load_model(model_path, config_algorithm(config), implementation=_config_implementation(config))
        except ValueError as err:
            warnings.warn(str(err), stacklevel=3)
        else:
            step = int(model.num_timesteps)
            real_mask = series.snapshots[-1].real_mask if len(series) else None
            if real_mask is None:
                real_mask = real_mask_from_config(config, step)
            try:
                return input_layer_connectivity(model.policy, real_mask), step, str(model_path)
            except ValueError as err:  # a mask that does not fit the model
                warnings.warn(f"ignoring the real-feature mask: {err}", stacklevel=3)
                return input_layer_connectivity(model.policy, None), step, str(model_path)
    if len(series):
        last = series.snapshots[-1]
        return dict(last.networks), last.env_step, "last snapshot"
    return None, None, None


def _former_real(series: ConnectivitySeries, config: Mapping[str, Any], final: Mapping[str, FeatureConnectivity],
                 permutation_step: int | None, final_step: int | None) -> np.ndarray | None:
    """The features real before the permutation, when the final model is past one, else ``None``."""
    if permutation_step is None or final_step is None or final_step < permutation_step:
        return None
    before = [s.real_mask for s in series.snapshots if not s.permuted and s.real_mask is not None]
    mask = before[0] if before else real_mask_from_config(config, 0)
    n_obs = next(iter(final.values())).n_observation
    return mask if mask is not None and mask.size == n_obs else None


def _write_final(final: Mapping[str, FeatureConnectivity], step: int | None, source: str | None,
                 out: Path, permutation_step: int | None = None,
                 former_real: np.ndarray | None = None) -> dict[str, Path]:
    files: dict[str, Path] = {}
    step_text = f"final model, env step {step}" if step is not None else "final model"
    if permutation_step is not None and step is not None and step >= permutation_step:
        step_text += f" (features permuted at {permutation_step})"
    if any(conn.is_sparse for conn in final.values()):
        files["in_degree_final"] = plots.save_figure(
            plots.plot_feature_values(final, "in_degree", step_text, former_real), out / "in_degree_final.png")
    files["strength_final"] = plots.save_figure(
        plots.plot_feature_values(final, "strength", step_text, former_real), out / "strength_final.png")
    rows = [row for conn in final.values() for row in conn.feature_rows()]
    files["features_final"] = _write_csv(out / "features_final.csv", rows)
    files["connectivity_final"] = _write_json(out / "connectivity_final.json", {
        "source": source, "env_step": step, "networks": {n: c.summary() for n, c in final.items()}})
    return files


def _write_series(series: ConnectivitySeries, permutation_step: int | None, out: Path, title: str,
                  gif: bool) -> dict[str, Path]:
    files = {
        "real_share": plots.save_figure(plots.plot_real_share(series, permutation_step, title=title),
                                        out / "real_share.png"),
        "connectivity_heatmap": plots.save_figure(
            plots.plot_connectivity_heatmap(series, permutation_step, title=title), out / "connectivity_heatmap.png"),
        "connectivity_over_time": _write_csv(out / "connectivity_over_time.csv", series.metrics_rows()),
    }
    if gif:
        files["connectivity_gif"] = plots.animate_connectivity(series, out / "connectivity.gif", title=title)
    return files


def compare_runs(run_dirs: Sequence[str | Path], out_path: str | Path,
                 labels: Sequence[str] | None = None) -> Path:
    """Plot several runs' connectivity curves side by side (e.g. a sparse and a dense agent on the
    same env): strength share and top-k precision for all, connection share for sparse runs.

    :param run_dirs: run directories with ``connectivity/`` snapshots
    :param out_path: the PNG to write
    :param labels: a label per run (default: the directory names)
    :raises ValueError: if a directory is not a run directory or has no snapshots
    """
    runs: dict[str, ConnectivitySeries] = {}
    for i, run_dir in enumerate(run_dirs):
        run = check_run_dir(run_dir)
        series = load_snapshots(run / rundir.CONNECTIVITY_DIR)
        if len(series) == 0:
            raise ValueError(f"{str(run)!r} has no connectivity snapshots to compare")
        label = labels[i] if labels is not None else run.resolve().name
        runs[label] = series
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
