"""The filtering summary of an input layer, on a hand-worked example."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sparse_rl.sparse.connectivity import filtering_keys, filtering_metrics


def test_filtering_metrics_hand_worked() -> None:
    # 3 outputs x (4 observation columns + 1 action column); columns 0 and 1 are real.
    mask = torch.tensor([[1, 1, 0, 1, 1],
                         [1, 0, 0, 0, 1],
                         [1, 1, 1, 0, 0]], dtype=torch.bool)
    weight = torch.tensor([[0.1, 2.0, 0.0, 0.5, 9.0],
                           [0.2, 0.0, 0.0, 0.0, 9.0],
                           [0.3, 1.0, 0.4, 0.0, 0.0]]) * mask
    real = np.array([True, True, False, False])
    metrics = filtering_metrics(mask, weight, real)
    assert metrics.in_degree_real == 2.5          # (3 + 2) / 2
    assert metrics.in_degree_noise == 1.0         # (1 + 1) / 2
    assert metrics.in_degree_ratio == 2.5
    assert metrics.real_fill == pytest.approx(5 / 6)  # 5 of 2 x 3 possible
    # strengths 0.6, 3.0, 0.4, 0.5 over the observation: top-2 = {1, 0}, both real (the action's 18 is left out)
    assert metrics.topk_precision == 1.0
    assert metrics.real_share == pytest.approx(7 / 9)  # real + action columns: 3 + 2 + 2 of 9
    assert set(metrics.as_dict()) == set(filtering_keys())


def test_filtering_metrics_can_count_the_actions_as_real_as_grootens_code() -> None:
    # The hand-worked layer above: real columns 0, 1 (in-degree 3, 2) and the action column (2).
    mask = torch.tensor([[1, 1, 0, 1, 1], [1, 0, 0, 0, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    real = np.array([True, True, False, False])
    theirs = filtering_metrics(mask, mask.float(), real, actions_as_real=True)
    assert theirs.in_degree_real == pytest.approx(7 / 3)  # (3 + 2 + 2) / 3
    assert theirs.in_degree_noise == 1.0 and theirs.in_degree_ratio == pytest.approx(7 / 3)
    assert filtering_metrics(mask[:, :4], mask[:, :4].float(), real, actions_as_real=True).in_degree_real == 2.5


def test_filtering_metrics_without_noise_and_with_a_weak_real_feature() -> None:
    mask = np.ones((2, 3), dtype=bool)
    no_noise = filtering_metrics(mask, np.ones((2, 3)), np.array([True, True, True]))
    assert math.isnan(no_noise.in_degree_noise) and math.isnan(no_noise.in_degree_ratio)
    weak_real = filtering_metrics(mask, np.array([[0.1, 1.0, 1.0], [0.1, 1.0, 1.0]]), np.array([True, False, False]))
    assert weak_real.topk_precision == 0.0 and weak_real.in_degree_ratio == 1.0
    with pytest.raises(ValueError, match="fewer than the 4 observation features"):
        filtering_metrics(mask, mask, np.array([True, False, False, False]))


def test_a_registered_metric_is_in_every_record(monkeypatch: pytest.MonkeyPatch) -> None:
    from sparse_rl.sparse import connectivity

    monkeypatch.setattr(connectivity, "FILTERING_METRICS", dict(connectivity.FILTERING_METRICS))
    connectivity.register_filtering_metric("max_in_degree_noise")(
        lambda columns: float(columns.observed[~columns.real].max()))
    with pytest.raises(ValueError, match="already registered"):
        connectivity.register_filtering_metric("real_share")(lambda columns: 0.0)
    mask = np.array([[1, 1, 0], [1, 0, 1]], dtype=bool)
    metrics = filtering_metrics(mask, mask.astype(float), np.array([True, False, False]))
    assert metrics.max_in_degree_noise == 1.0 and list(metrics.as_dict())[-1] == "max_in_degree_noise"
    with pytest.raises(AttributeError, match="no metric 'nonexistent'"):
        metrics.nonexistent  # noqa: B018


def test_the_analysis_summary_carries_every_registered_metric() -> None:
    from sparse_rl.analysis.metrics import FeatureConnectivity

    mask = np.array([[1, 1, 0, 1], [1, 0, 0, 1]], dtype=bool)
    weight = mask * np.array([0.5, 2.0, 0.0, 1.0])
    real = np.array([True, False, False])
    conn = FeatureConnectivity("qf0", weight.sum(axis=0).astype(np.float32), mask.sum(axis=0), 2, 3, real)
    summary = conn.summary()
    assert all(key in summary for key in filtering_keys())
    assert {key: summary[key] for key in filtering_keys()} == pytest.approx(
        filtering_metrics(mask, weight, real).as_dict(), nan_ok=True)
