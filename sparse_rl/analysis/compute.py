"""What the analysis of one run finds, computed from the run as read (:class:`~sparse_rl.analysis.
loading.LoadedRun`) without opening a file: :func:`compute` returns a :class:`RunAnalysis`, the
data :mod:`~sparse_rl.analysis.report` draws and writes.

- the permutation step: the one the snapshots recorded, else the configured one if training
  reached it;
- the final connectivity: the final model's input layers judged against the real mask in force at
  its step (the last snapshot's, else the env's), else the last snapshot's;
- the features that were real before the permutation, when the final model is past one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparse_rl.analysis.loading import LoadedRun
from sparse_rl.analysis.metrics import FeatureConnectivity
from sparse_rl.analysis.snapshots import ConnectivitySeries

__all__ = ["RunAnalysis", "compute", "env_real_mask", "final_connectivity", "former_real_mask",
           "permutation_step"]


@dataclass(frozen=True)
class RunAnalysis:
    """What the analysis found in one run: the data every figure and table of ``analyze`` is drawn from.

    :param name: the run's name (figure titles)
    :param series: its connectivity snapshots
    :param permutation_step: the env step of its feature permutation, or ``None``
    :param final: per network, the final input-layer connectivity, or ``None`` (neither a model
        nor a snapshot)
    :param final_step: the env step of ``final``
    :param final_source: where ``final`` came from (the model's zip, or ``last snapshot``)
    :param former_real: the features real before the permutation when ``final`` is past one, else ``None``
    """

    name: str
    series: ConnectivitySeries
    permutation_step: int | None
    final: dict[str, FeatureConnectivity] | None
    final_step: int | None
    final_source: str | None
    former_real: np.ndarray | None = None

    def final_summaries(self) -> dict[str, dict[str, Any]]:
        """Per network, :meth:`FeatureConnectivity.summary` of the final connectivity (empty without one)."""
        return {name: conn.summary() for name, conn in (self.final or {}).items()}

    @property
    def past_permutation(self) -> bool:
        """Whether the final connectivity is at or after the feature permutation."""
        return (self.permutation_step is not None and self.final_step is not None
                and self.final_step >= self.permutation_step)


def compute(run: LoadedRun) -> RunAnalysis:
    """Everything the analysis of ``run`` finds (pure: ``run`` is already read).

    :param run: the run as read by :func:`~sparse_rl.analysis.loading.load_run`
    :raises ValueError: if the run has neither a model nor snapshots
    """
    final, final_step, source = final_connectivity(run)
    if final is None and len(run.series) == 0:
        raise ValueError(f"{str(run.path)!r} has neither a model (model.zip, checkpoints/) nor connectivity "
                         "snapshots to analyse")
    step = permutation_step(run)
    return RunAnalysis(name=run.name, series=run.series, permutation_step=step, final=final, final_step=final_step,
                       final_source=source, former_real=former_real_mask(run, final, step, final_step))


def permutation_step(run: LoadedRun) -> int | None:
    """The env step from which the run's features are permuted: the one its snapshots recorded, else
    the configured one (``None`` without one, or when training ended before it)."""
    recorded = run.series.permutation_step()
    if recorded is not None:
        return recorded
    configured = run.permute_at_step
    if configured is None or configured <= 0:
        return None
    if len(run.series) and configured > int(run.series.env_steps[-1]):
        return None
    return configured


def env_real_mask(run: LoadedRun, env_step: int) -> np.ndarray | None:
    """The real-feature mask of the run's env in force at ``env_step`` (permuted from the configured
    permutation step on), or ``None`` when the env's features were not read."""
    features = run.env_features
    if features is None:
        return None
    at = run.permute_at_step
    if features.permutation is not None and at is not None and 0 < at <= env_step:
        return features.real_mask[features.permutation]
    return features.real_mask


def final_connectivity(run: LoadedRun) -> tuple[dict[str, FeatureConnectivity] | None, int | None, str | None]:
    """The final input-layer connectivity, its env step and where it came from: the final model
    judged against the real mask of the last snapshot (else the env's at its step; a mask that does
    not fit the model is ignored, with a warning), else the last snapshot; ``(None, None, None)``
    without either."""
    if run.model is not None:
        step = run.model.env_step
        last = run.series.snapshots[-1].real_mask if len(run.series) else None
        real_mask = last if last is not None else env_real_mask(run, step)
        try:
            networks = {name: conn.with_real_mask(real_mask) for name, conn in run.model.networks.items()}
        except ValueError as err:
            warnings.warn(f"ignoring the real-feature mask: {err}", stacklevel=2)
            networks = dict(run.model.networks)
        return networks, step, run.model.source
    if len(run.series):
        last_snapshot = run.series.snapshots[-1]
        return dict(last_snapshot.networks), last_snapshot.env_step, "last snapshot"
    return None, None, None


def former_real_mask(run: LoadedRun, final: dict[str, FeatureConnectivity] | None, permutation: int | None,
                     final_step: int | None) -> np.ndarray | None:
    """The features real before the permutation (the first unpermuted snapshot's mask, else the
    env's at the start) when the final connectivity is at or past it, else ``None``; also ``None``
    when that mask does not fit the final networks."""
    if not final or permutation is None or final_step is None or final_step < permutation:
        return None
    before = [s.real_mask for s in run.series.snapshots if not s.permuted and s.real_mask is not None]
    mask = before[0] if before else env_real_mask(run, 0)
    n_observation = next(iter(final.values())).n_observation
    return mask if mask is not None and mask.size == n_observation else None
