"""``compute`` on runs held in memory: no file is opened, and each piece of the analysis (the
permutation step, the final connectivity and its real mask, the features real before a permutation)
comes from the loaded run as it should."""

from __future__ import annotations

import builtins
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sparse_rl._util.rundir import RunDir
from sparse_rl.analysis import loading
from sparse_rl.analysis.compute import RunAnalysis, compute, env_real_mask, permutation_step
from sparse_rl.analysis.loading import EnvFeatures, LoadedRun, SavedModel
from sparse_rl.analysis.snapshots import ConnectivitySeries, load_snapshots

from .conftest import synthetic_series


def _model(series: ConnectivitySeries, env_step: int) -> SavedModel:
    """A final model whose input layers are the last snapshot's, without a real mask (as read)."""
    last = series.snapshots[-1].networks
    return SavedModel({name: conn.with_real_mask(None) for name, conn in last.items()}, env_step, "memory")


def _run(series: ConnectivitySeries, model: SavedModel | None = None, **fields: Any) -> LoadedRun:
    return LoadedRun(path=Path("/nowhere/run"), name="run", config={}, series=series, model=model, **fields)


@contextmanager
def no_disk() -> Iterator[None]:
    """While in it, any attempt to open, stat or load a file, or to read a run, fails the test."""
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"compute touched the disk: {args!r}")

    with pytest.MonkeyPatch.context() as patch:
        for owner, name in ((builtins, "open"), (io, "open"), (os, "stat"), (os, "open"), (os, "scandir"),
                            (os, "listdir"), (np, "load"), (loading, "load_run"), (loading, "load_agent"),
                            (loading, "make_env")):
            patch.setattr(owner, name, refuse)
        yield


def test_the_guard_catches_reads(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("seed: 0\n")
    with no_disk(), pytest.raises(AssertionError, match="touched the disk"):
        RunDir.find(tmp_path)
    with no_disk(), pytest.raises(AssertionError, match="touched the disk"):
        (tmp_path / "config.yaml").read_text()
    with no_disk(), pytest.raises(AssertionError, match="touched the disk"):
        load_snapshots(tmp_path)


def compute_in_memory(run: LoadedRun) -> RunAnalysis:
    """:func:`compute` with the disk out of reach."""
    with no_disk():
        return compute(run)


def test_compute_on_a_run_in_memory() -> None:
    series = synthetic_series(n_obs=40, n_real=4, n_steps=12, permute_at=6)  # permuted from env step 600
    analysis = compute_in_memory(_run(series, _model(series, 1200)))
    assert analysis.name == "run" and analysis.series is series
    assert analysis.permutation_step == 600 and analysis.past_permutation
    assert analysis.final is not None and analysis.final_step == 1200 and analysis.final_source == "memory"
    np.testing.assert_array_equal(analysis.final["actor"].real_mask, series.snapshots[-1].real_mask)
    np.testing.assert_array_equal(analysis.former_real, series.snapshots[0].real_mask)
    summaries = analysis.final_summaries()
    assert set(summaries) == {"actor", "qf0"} and summaries["actor"]["n_real"] == 4
    assert summaries["actor"]["in_degree_real"] > summaries["actor"]["in_degree_noise"]


def test_without_a_model_the_last_snapshot_is_final() -> None:
    series = synthetic_series(n_obs=40, n_real=4, n_steps=3, permute_at=None)
    analysis = compute_in_memory(_run(series))
    assert analysis.final_source == "last snapshot" and analysis.final_step == 200
    assert analysis.permutation_step is None and analysis.former_real is None and not analysis.past_permutation


def test_neither_model_nor_snapshots() -> None:
    with pytest.raises(ValueError, match="neither a model"):
        compute_in_memory(_run(ConnectivitySeries()))


def test_the_env_says_which_features_are_real_when_the_snapshots_do_not() -> None:
    series = synthetic_series(n_obs=40, n_real=4, n_steps=3, permute_at=None)
    real = np.zeros(40, dtype=bool)
    real[:4] = True
    permutation = np.roll(np.arange(40), 5)
    run = _run(ConnectivitySeries(), _model(series, 900), env_features=EnvFeatures(real, permutation),
               permute_at_step=500)
    with no_disk():
        before, after = env_real_mask(run, 499), env_real_mask(run, 500)
    np.testing.assert_array_equal(before, real)
    np.testing.assert_array_equal(after, real[permutation])
    analysis = compute_in_memory(run)
    assert analysis.permutation_step == 500  # configured, no snapshot to say otherwise
    np.testing.assert_array_equal(analysis.final["actor"].real_mask, real[permutation])
    np.testing.assert_array_equal(analysis.former_real, real)


def test_a_configured_permutation_after_the_last_snapshot_is_not_marked() -> None:
    series = synthetic_series(n_obs=40, n_real=4, n_steps=3, permute_at=None)  # snapshots at 0, 100, 200
    with no_disk():
        steps = [permutation_step(_run(series, permute_at_step=at)) for at in (300, 200, 0)]
    assert steps == [None, 200, None]


def test_a_real_mask_that_does_not_fit_the_model_is_ignored() -> None:
    series = synthetic_series(n_obs=40, n_real=4, n_steps=3, permute_at=None)
    other = synthetic_series(n_obs=30, n_real=3, n_steps=3, permute_at=None)
    with pytest.warns(UserWarning, match="ignoring the real-feature mask"):
        analysis = compute_in_memory(_run(other, _model(series, 300)))
    assert analysis.final is not None and analysis.final["actor"].real_mask is None
