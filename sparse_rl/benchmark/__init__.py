"""Benchmarks: a sweep of agent configs × (env, noise fraction) × seeds against the dense SB3
baselines, on a local process pool or a Ray cluster, with results.csv, summary.md and
learning-curve plots. See :mod:`sparse_rl.benchmark.sweep` for the output directory and
:mod:`sparse_rl.benchmark.spec` for the sweep file."""

from sparse_rl.benchmark.backends import EXECUTORS, Backend, LocalBackend, RayBackend, make_backend
from sparse_rl.benchmark.spec import RunTask, SweepSpec, load_sweep, plan_runs
from sparse_rl.benchmark.stats import auc, bootstrap_ci, iqm
from sparse_rl.benchmark.sweep import SweepIncomplete, SweepOutcome, run_sweep

__all__ = [
    "EXECUTORS",
    "Backend",
    "LocalBackend",
    "RayBackend",
    "RunTask",
    "SweepIncomplete",
    "SweepOutcome",
    "SweepSpec",
    "auc",
    "bootstrap_ci",
    "iqm",
    "load_sweep",
    "make_backend",
    "plan_runs",
    "run_sweep",
]
