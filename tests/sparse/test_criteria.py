"""Selection of drop and grow positions."""

from __future__ import annotations

import pytest
import torch

from sparse_rl.sparse.criteria import highest_candidates, lowest_active, sample_candidates


def test_lowest_active_ignores_inactive_positions() -> None:
    scores = torch.tensor([0.0, 5.0, 1.0, 3.0])
    mask = torch.tensor([False, True, True, True])
    assert sorted(lowest_active(scores, mask, 2).tolist()) == [2, 3]


def test_lowest_active_takes_sorted_positions_too() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(6, 50, generator=generator)
    mask = torch.rand(6, 50, generator=generator) < 0.3
    positions = mask.reshape(-1).nonzero().squeeze(1)
    assert torch.equal(lowest_active(scores, positions, 10), lowest_active(scores, mask, 10))


def test_highest_candidates() -> None:
    scores = torch.tensor([9.0, 5.0, 1.0, 3.0, 7.0])
    candidates = torch.tensor([False, True, True, True, True])
    assert sorted(highest_candidates(scores, candidates, 2).tolist()) == [1, 4]


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.95])
def test_sample_candidates_draws_distinct_candidates(fraction: float) -> None:
    generator = torch.Generator().manual_seed(0)
    candidates = torch.rand(5000, generator=generator) < fraction
    n = int(candidates.sum()) // 2
    chosen = sample_candidates(candidates, n, generator)
    assert chosen.numel() == n == chosen.unique().numel()
    assert bool(candidates[chosen].all())


def test_sample_candidates_is_uniform() -> None:
    generator = torch.Generator().manual_seed(1)
    candidates = torch.ones(20, dtype=torch.bool)
    candidates[::4] = False  # 15 candidates, rejection sampling path
    counts = torch.zeros(20)
    for _ in range(3000):
        counts[sample_candidates(candidates, 5, generator)] += 1
    expected = 3000 * 5 / 15
    assert torch.all(counts[~candidates] == 0)
    assert torch.all((counts[candidates] - expected).abs() < 0.1 * expected)


def test_sample_candidates_refuses_too_many() -> None:
    with pytest.raises(ValueError, match="only 2 positions are free"):
        sample_candidates(torch.tensor([True, False, True]), 3, torch.Generator())


@pytest.mark.parametrize("k", [1, 50, 1000])
def test_highest_candidates_fast_path_is_exact(k: int) -> None:
    generator = torch.Generator().manual_seed(2)
    scores = torch.randn(300_000, generator=generator)
    candidates = torch.rand(300_000, generator=generator) < 0.9
    expected = torch.topk(scores.masked_fill(~candidates, float("-inf")), k).indices
    assert sorted(highest_candidates(scores, candidates, k).tolist()) == sorted(expected.tolist())
