"""Connectivity analysis of the input layers: which input features get connections.

- :mod:`~sparse_rl.analysis.metrics`: pure functions (in-degree, strength, real share, strength
  ranking, top-k precision/recall) and :class:`FeatureConnectivity`, one network's result;
- :mod:`~sparse_rl.analysis.snapshots`: the cheap per-feature snapshots (format, reading back);
  :mod:`~sparse_rl.analysis.snapshot_callback`: :class:`ConnectivitySnapshotCallback`, which writes
  them during training;
- :mod:`~sparse_rl.analysis.loading`: :func:`load_run`, a run directory read once into a
  :class:`LoadedRun` (config, snapshots, final model's input layers, real features); saved models;
- :mod:`~sparse_rl.analysis.compute`: ``compute``, what the analysis finds in a loaded run
  (:class:`RunAnalysis`; pure, no file opened);
- :mod:`~sparse_rl.analysis.plots`: matplotlib figures, one module per kind (Figures; no backend
  forced), and :func:`save_figure`;
- :mod:`~sparse_rl.analysis.report`: :func:`analyze_run`, from a run directory to plots, tables
  and TensorBoard (load, compute, draw).

Only the metrics are imported eagerly (the agents use them); the rest loads on first access, so
importing the agents does not import matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

from sparse_rl.analysis.metrics import (
    FeatureConnectivity,
    in_degree,
    input_layer_connectivity,
    rank_features,
    real_share,
    strength,
    topk_precision_recall,
)

_LAZY = {
    "ConnectivitySnapshotCallback": "sparse_rl.analysis.snapshot_callback",
    "ConnectivitySnapshot": "sparse_rl.analysis.snapshots",
    "ConnectivitySeries": "sparse_rl.analysis.snapshots",
    "load_snapshots": "sparse_rl.analysis.snapshots",
    "analyze_run": "sparse_rl.analysis.report",
    "compare_runs": "sparse_rl.analysis.report",
    "LoadedRun": "sparse_rl.analysis.loading",
    "load_model": "sparse_rl.analysis.loading",
    "load_run": "sparse_rl.analysis.loading",
    "model_connectivity": "sparse_rl.analysis.loading",
    "RunAnalysis": "sparse_rl.analysis.compute",
    **{name: "sparse_rl.analysis.plots" for name in (
        "animate_connectivity", "plot_connectivity_heatmap", "plot_feature_values", "plot_real_share",
        "plot_run_comparison", "save_figure")},
}

__all__ = [
    "ConnectivitySeries",
    "ConnectivitySnapshot",
    "ConnectivitySnapshotCallback",
    "FeatureConnectivity",
    "LoadedRun",
    "RunAnalysis",
    "analyze_run",
    "animate_connectivity",
    "compare_runs",
    "in_degree",
    "input_layer_connectivity",
    "load_model",
    "load_run",
    "load_snapshots",
    "model_connectivity",
    "plot_connectivity_heatmap",
    "plot_feature_values",
    "plot_real_share",
    "plot_run_comparison",
    "rank_features",
    "real_share",
    "save_figure",
    "strength",
    "topk_precision_recall",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
