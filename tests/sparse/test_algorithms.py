"""The algorithm registry and its seam for new algorithms."""

from __future__ import annotations

import pytest
import torch

from sparse_rl.sparse.algorithms import ALGORITHMS, SET, make_algorithm, register_algorithm
from sparse_rl.sparse.layers import SparseLinear
from sparse_rl.sparse.schedules import UpdateSchedule
from sparse_rl.sparse.topology import TopologyUpdater


def test_known_algorithms() -> None:
    assert {"dense", "static", "set", "rigl"} <= set(ALGORITHMS)
    assert not make_algorithm("dense").sparse
    assert not make_algorithm("static").updates_topology
    assert make_algorithm("rigl").needs_dense_gradient and not make_algorithm("set").needs_dense_gradient


def test_unknown_algorithm_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown sparse training algorithm 'sett' \(did you mean 'set'\?\).*rigl"):
        make_algorithm("sett")


def test_a_new_algorithm_is_one_small_class() -> None:
    @register_algorithm
    class DropLargest(SET):
        name = "test_drop_largest"

        def drop_scores(self, layer: SparseLinear) -> torch.Tensor:
            return -layer.weight.detach().abs()

    try:
        layer = SparseLinear(4, 2, density=0.5)
        with torch.no_grad():
            layer.weight.copy_(torch.arange(1.0, 9.0).view(2, 4))
            layer.apply_mask_()
        largest = layer.weight.abs().argmax()
        updater = TopologyUpdater(layer, algorithm="test_drop_largest",
                                  schedule=UpdateSchedule(interval=1, drop_fraction=0.25), seed=0)
        updater.update()
        assert not layer.mask.view(-1)[largest]
    finally:
        ALGORITHMS.pop("test_drop_largest")


def test_signed_set_drops_the_smallest_positive_and_largest_negative() -> None:
    layer = SparseLinear(4, 2, density=1.0)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -0.1, 0.2, -0.9], [0.05, -0.3, 1.0, -0.02]]))
    # 4 positive (0.5, 0.2, 0.05, 1.0), 4 negative: k = 4 -> 2 smallest positive + 2 negative closest to 0
    dropped = make_algorithm("set_signed").drop_indices(layer, 4)
    assert sorted(dropped.tolist()) == [1, 2, 4, 7]  # -0.1, 0.2, 0.05, -0.02
    # plain |w| would drop 0.05, -0.02, -0.1 and 0.2 too here; with skewed signs they differ:
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.01, 0.02, 0.03, -0.9], [0.04, -0.8, 0.05, -0.7]]))
    assert sorted(make_algorithm("set_signed").drop_indices(layer, 4).tolist()) == [0, 1, 5, 7]
    assert sorted(make_algorithm("set").drop_indices(layer, 4).tolist()) == [0, 1, 2, 4]
