"""TopologyUpdater: hand-worked SET and RigL updates, and invariants swept over algorithm ×
density × shape."""

from __future__ import annotations

import copy

import pytest
import torch

from sparse_rl.sparse.algorithms import make_algorithm
from sparse_rl.sparse.layers import SparseLinear
from sparse_rl.sparse.schedules import UpdateSchedule
from sparse_rl.sparse.topology import TopologyUpdater

BACKENDS = ["masked", "csr"]


def _eight_weight_layer(mask: list[int], weights: list[float], backend: str = "masked") -> SparseLinear:
    layer = SparseLinear(4, 2, density=sum(mask) / 8, bias=False, backend=backend)
    dense = torch.tensor(weights).view(2, 4)
    with torch.no_grad():
        layer.set_mask_(torch.tensor(mask, dtype=torch.bool).view(2, 4))
        if backend == "csr":
            layer.values.copy_(dense.view(-1)[layer.flat_index])
        else:
            layer.weight.copy_(dense)
            layer.apply_mask_()
    return layer


@pytest.mark.parametrize("backend", BACKENDS)
def test_set_update_hand_worked(backend: str) -> None:
    # 6 active weights; drop fraction 1/3 removes the 2 smallest magnitudes (-0.1 at 2, 0.2 at 5)
    # and regrows 2 at random among positions inactive before the update: only 3 and 6 exist.
    layer = _eight_weight_layer([1, 1, 1, 0, 1, 1, 0, 1], [0.9, -0.5, -0.1, 0.0, 0.4, 0.2, 0.0, -0.7], backend)
    updater = TopologyUpdater(layer, algorithm="set", schedule=UpdateSchedule(interval=1, drop_fraction=1 / 3), seed=0)
    update = updater.step()
    assert update is not None and update.layers["layer"].pruned == 2
    assert layer.mask.view(-1).int().tolist() == [1, 1, 0, 1, 1, 0, 1, 1]
    assert layer.weight.view(-1).tolist() == pytest.approx([0.9, -0.5, 0.0, 0.0, 0.4, 0.0, 0.0, -0.7])


@pytest.mark.parametrize("backend", BACKENDS)
def test_set_update_with_random_growth_never_regrows_pruned_positions(backend: str) -> None:
    layer = _eight_weight_layer([1, 0, 1, 0, 1, 0, 1, 0], [0.5, 0, -0.1, 0, 0.3, 0, -0.9, 0], backend)
    updater = TopologyUpdater(layer, algorithm="set", schedule=UpdateSchedule(interval=1, drop_fraction=0.5), seed=3)
    updater.step()
    mask = layer.mask.view(-1).tolist()
    # Pruned: -0.1 (index 2) and 0.3 (index 4); kept: 0 and 6; grown: two of 1, 3, 5, 7.
    assert mask[0] and mask[6] and not mask[2] and not mask[4]
    assert sum(mask[i] for i in (1, 3, 5, 7)) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_rigl_grows_at_the_largest_dense_gradient(backend: str) -> None:
    layer = _eight_weight_layer([1, 0, 1, 0, 1, 0, 1, 0], [0.5, 0, -0.1, 0, 0.3, 0, -0.9, 0], backend)
    layer.dense_grad = torch.tensor([0.0, 0.2, 5.0, -3.0, 0.0, 0.1, 0.0, 2.0]).view(2, 4)
    updater = TopologyUpdater(layer, algorithm="rigl", schedule=UpdateSchedule(interval=1, drop_fraction=0.5), seed=0)
    updater.step()
    # Index 2 has the largest gradient but was just pruned: it is not a candidate. Candidates 1, 3,
    # 5, 7 → the two largest |grad| are 3 (3.0) and 7 (2.0).
    assert layer.mask.view(-1).int().tolist() == [1, 0, 0, 1, 0, 0, 1, 1]
    assert layer.dense_grad is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_rigl_waits_for_a_dense_gradient_and_arms_the_layers(backend: str) -> None:
    torch.manual_seed(0)
    layer = SparseLinear(10, 6, density=0.3, backend=backend)
    updater = TopologyUpdater(layer, algorithm="rigl", schedule=UpdateSchedule(interval=2, drop_fraction=0.3), seed=0)
    assert not layer.capture_armed
    assert updater.step() is None  # step 1: the next step is an update step, so the layer is armed
    assert layer.capture_armed
    assert updater.step() is None  # step 2: due, but no backward pass happened: pending
    layer(torch.randn(3, 10)).sum().backward()
    update = updater.step()
    assert update is not None and update.step == 2 and update.changed > 0


def _train_and_update(algorithm: str, density: float, shape: tuple[int, int], optimizer_class: type) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(SparseLinear(shape[1], shape[0], density=density), torch.nn.ReLU(),
                                SparseLinear(shape[0], 3, density=density))
    optimizer = optimizer_class(model.parameters(), lr=1e-2, weight_decay=1e-3)
    updater = TopologyUpdater(model, optimizer, algorithm=algorithm,
                              schedule=UpdateSchedule(interval=3, drop_fraction=0.3), seed=0)
    layers = list(updater.layers.values())
    counts = [layer.nnz for layer in layers]
    x = torch.randn(16, shape[1])
    n_updates = 0
    for _ in range(30):
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()
        before = [layer.mask.clone() for layer in layers]
        update = updater.step()
        for layer, mask_before, count in zip(layers, before, counts):
            assert layer.nnz == count  # density exactly constant
            assert torch.all(layer.weight[~layer.mask] == 0)  # inactive weights exactly zero
            if update is None:
                assert torch.equal(layer.mask, mask_before)
                continue
            grown = layer.mask & ~mask_before
            pruned = mask_before & ~layer.mask
            assert int(grown.sum()) == int(pruned.sum())
            assert torch.all(layer.weight[grown] == 0)  # regrown weights start at zero
            state = optimizer.state[layer.weight]
            for key in ("exp_avg", "exp_avg_sq"):
                assert torch.all(state[key][grown] == 0) and torch.all(state[key][pruned] == 0)
        n_updates += update is not None
    assert n_updates == 10


@pytest.mark.parametrize("algorithm", ["set", "rigl"])
@pytest.mark.parametrize("density", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("shape", [(8, 4), (32, 17), (5, 60)])
def test_invariants_over_algorithm_density_and_shape(algorithm: str, density: float, shape: tuple[int, int]) -> None:
    _train_and_update(algorithm, density, shape, torch.optim.Adam)


def test_invariants_hold_with_adamw() -> None:
    _train_and_update("set", 0.2, (16, 12), torch.optim.AdamW)


@pytest.mark.parametrize("backend", BACKENDS)
def test_static_and_dense_layers_never_change(backend: str) -> None:
    model = torch.nn.Sequential(SparseLinear(10, 8, density=0.5, backend=backend),
                                SparseLinear(8, 2, density=1.0, backend=backend))
    static = TopologyUpdater(model, algorithm="static", schedule=UpdateSchedule(interval=1))
    masks_before = [model[0].mask.clone(), model[1].mask.clone()]
    assert all(static.step() is None for _ in range(5))
    assert list(TopologyUpdater(model).layers) == ["0"]  # the dense layer is not managed
    assert torch.equal(model[0].mask, masks_before[0]) and torch.equal(model[1].mask, masks_before[1])


def test_followers_take_the_online_masks() -> None:
    torch.manual_seed(0)
    online = torch.nn.Sequential(SparseLinear(12, 6, density=0.3))
    target = copy.deepcopy(online)
    with torch.no_grad():
        target[0].weight.add_(1.0).mul_(target[0].mask)
    updater = TopologyUpdater(online, algorithm="set", schedule=UpdateSchedule(interval=1, drop_fraction=0.5),
                              followers=[target], seed=0)
    updater.step()
    assert torch.equal(online[0].mask, target[0].mask)
    assert torch.all(target[0].weight[~target[0].mask] == 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_dict_round_trip_reproduces_the_next_update(backend: str) -> None:
    torch.manual_seed(0)
    layer = SparseLinear(50, 20, density=0.2, backend=backend)
    schedule = UpdateSchedule(interval=2, drop_fraction=0.3)
    updater = TopologyUpdater(layer, algorithm="set", schedule=schedule, seed=5)
    for _ in range(4):
        updater.step()
    state = updater.state_dict()
    twin = copy.deepcopy(layer)
    restored = TopologyUpdater(twin, algorithm="set", schedule=schedule, seed=999)
    restored.load_state_dict(state)
    assert restored.step_count == 4
    for _ in range(2):
        updater.step()
        restored.step()
    assert torch.equal(layer.mask, twin.mask)


def test_state_of_another_algorithm_is_rejected() -> None:
    layer = SparseLinear(5, 5, density=0.5)
    state = TopologyUpdater(layer, algorithm="set").state_dict()
    with pytest.raises(ValueError, match="belongs to algorithm 'set', not 'rigl'"):
        TopologyUpdater(layer, algorithm="rigl").load_state_dict(state)


@pytest.mark.parametrize("backend", BACKENDS)
def test_set_with_regrow_dropped_may_draw_a_dropped_connection_again_and_keeps_its_weight(backend: str) -> None:
    # 7 of 8 active, drop fraction 0.5: k = min(round(3.5), 8 - 7) = 1. The smallest |w| is -0.1 at 2;
    # position 3 is the only free one. Without regrow_dropped growth must take 3; with it, 3 or 2
    # (then nothing moves and -0.1 stays). Over seeds both outcomes occur, and the count is exact.
    weights = [0.9, -0.5, -0.1, 0.0, 0.4, 0.2, 0.6, -0.7]
    outcomes = {}
    for regrow in (False, True):
        seen = set()
        for seed in range(12):
            layer = _eight_weight_layer([1, 1, 1, 0, 1, 1, 1, 1], weights, backend)
            algorithm = make_algorithm("set", regrow_dropped=regrow)
            schedule = UpdateSchedule(interval=1, drop_fraction=0.5)
            updater = TopologyUpdater(layer, algorithm=algorithm, schedule=schedule, seed=seed)
            update = updater.step()
            assert layer.nnz == 7
            mask = layer.mask.view(-1).int().tolist()
            if mask[2]:  # drawn again: unchanged, weight kept, nothing counted as moved
                assert layer.weight.view(-1).tolist() == pytest.approx(weights)
                assert update is not None and update.layers["layer"].pruned == 0 and update.changed == 0
                seen.add("regrown")
            else:
                assert mask == [1, 1, 0, 1, 1, 1, 1, 1] and update.layers["layer"].pruned == 1
                seen.add("moved")
        outcomes[regrow] = seen
    assert outcomes == {False: {"moved"}, True: {"moved", "regrown"}}


def test_regrow_dropped_is_checked_and_anf_uses_it() -> None:
    from sparse_rl.agents.sparsity import resolve_sparsity

    with pytest.raises(ValueError, match="regrow_dropped must be true or false"):
        make_algorithm("set", regrow_dropped="yes")
    assert resolve_sparsity("anf").make_algorithm().regrow_dropped is True
    assert resolve_sparsity("all_layers").make_algorithm().regrow_dropped is True
    assert make_algorithm("set").regrow_dropped is False and make_algorithm("rigl").regrow_dropped is False
