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


def test_strength_filter_grows_in_strong_columns_and_keeps_exploring() -> None:
    layer = SparseLinear(50, 40, density=0.2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # column 0 strong, the others weak
        layer.weight.mul_(0.01)
        layer.weight[:, 0] = layer.mask[:, 0] * 1.0
    algorithm = make_algorithm("strength_filter", exploration=0.1)
    grown = algorithm.grow_indices(layer, ~layer.mask, 40, torch.Generator().manual_seed(1))
    assert grown.numel() == len(set(grown.tolist())) == 40 and not layer.mask.view(-1)[grown].any()
    columns = torch.bincount(grown % 50, minlength=50)
    free_in_zero = int((~layer.mask[:, 0]).sum())
    assert columns[0] >= min(free_in_zero, 15)  # SET would put ~40 x 1/50 < 1 there
    assert int((columns[1:] > 0).sum()) >= 3    # the floor keeps exploring other columns
    with pytest.raises(ValueError, match="unknown hyperparameter 'explore' of algorithm 'strength_filter'"):
        make_algorithm("strength_filter", explore=0.1)
    with pytest.raises(ValueError, match="exploration must be a number >= 0"):
        make_algorithm("strength_filter", exploration=-1)
    # the algorithm's old name, in a config made by an older version
    with pytest.raises(ValueError, match="'strength_growth' was renamed 'strength_filter'.*older version"):
        make_algorithm("strength_growth")


def test_strength_filter_in_the_updater_keeps_density() -> None:
    layer = SparseLinear(30, 20, density=0.25)
    updater = TopologyUpdater([layer], algorithm=make_algorithm("strength_filter"),
                              schedule=UpdateSchedule(interval=1, drop_fraction=0.3), seed=0)
    nnz = layer.nnz
    for _ in range(5):
        assert updater.step() is not None and layer.nnz == nnz


def test_scaled_strength_filter_weighs_inputs_by_their_scale() -> None:
    layer = SparseLinear(3, 4, density=1.0)
    with torch.no_grad():  # input 0 has 10x larger values, so its 10x smaller weights matter as much
        layer.weight.copy_(torch.tensor([[0.02, 0.2, 0.1]] * 4))
    layer.input_scale = torch.tensor([10.0, 1.0, 1.0])
    scaled = make_algorithm("strength_filter")
    assert scaled.uses_input_scale and not make_algorithm("strength_filter", scaled=False).uses_input_scale
    # by |w|, column 0 is the weakest; weighed by scale, column 2 is (0.2, 0.2, 0.1)
    assert set((scaled.drop_indices(layer, 4) % 3).tolist()) == {2}
    assert set((make_algorithm("strength_filter", scaled=False).drop_indices(layer, 4) % 3).tolist()) == {0}


def test_sharper_strength_filter_concentrates_on_strong_columns() -> None:
    layer = SparseLinear(50, 40, density=0.2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # column 0 three times as strong as the rest
        layer.weight.copy_(layer.mask * 0.1)
        layer.weight[:, 0] = layer.mask[:, 0] * 0.3

    def grown_in_zero(sharpness: float) -> int:
        algorithm = make_algorithm("strength_filter", scaled=False, sharpness=sharpness, exploration=0.0)
        grown = algorithm.grow_indices(layer, ~layer.mask, 200, torch.Generator().manual_seed(1))
        return int((grown % 50 == 0).sum())

    assert grown_in_zero(1.0) < grown_in_zero(3.0)
    with pytest.raises(ValueError, match="sharpness must be a number >= 0"):
        make_algorithm("strength_filter", sharpness=-2)
