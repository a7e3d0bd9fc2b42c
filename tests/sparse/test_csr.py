"""The csr backend of SparseLinear: parity with the masked backend, storage, topology updates,
followers, the dense gradient for RigL, and backend selection."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch

from sparse_rl.sparse.layers import (
    AUTO_MAX_DENSITY,
    AUTO_MIN_INPUTS,
    MaskedSparseLinear,
    SparseLinear,
    active_count,
    layers_built_for,
    make_sparse_linear,
    resolve_backend,
)
from sparse_rl.sparse.layers.csr import CSRSparseLinear
from sparse_rl.sparse.schedules import UpdateSchedule
from sparse_rl.sparse.topology import TopologyUpdater

# (in_features, out_features, density): small, one forward block, several column blocks, dense
SHAPES = [(7, 5, 0.4), (64, 17, 0.1), (300, 40, 0.05), (1500, 24, 0.02), (40, 12, 1.0)]


def _twins(in_features: int, out_features: int, density: float, seed: int = 0,
           dtype: torch.dtype = torch.float32) -> tuple[SparseLinear, SparseLinear]:
    """A masked and a csr layer drawn from the same seed: the same connections and weights."""
    masked = SparseLinear(in_features, out_features, density, backend="masked", dtype=dtype,
                          generator=torch.Generator().manual_seed(seed))
    csr = SparseLinear(in_features, out_features, density, backend="csr", dtype=dtype,
                       generator=torch.Generator().manual_seed(seed))
    return masked, csr


@pytest.fixture(params=["native", "torch"])
def kernel_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on the native kernels (where they build) and on torch's sparse kernels."""
    if request.param == "torch":
        monkeypatch.setattr("sparse_rl.sparse.kernels.supports", lambda *tensors: False)
    return request.param


def _by_position(layer: SparseLinear, per_slot: torch.Tensor) -> torch.Tensor:
    """A per-slot tensor of a csr layer laid out as a dense (out_features × in_features) matrix."""
    assert isinstance(layer, CSRSparseLinear)
    dense = per_slot.new_zeros(layer.in_features * layer.out_features)
    dense[layer.flat_index] = per_slot.detach()
    return dense.view(layer.out_features, layer.in_features)


def _slot_grads(layer: SparseLinear) -> torch.Tensor:
    """The csr layer's ``values`` gradient, in the order of its active positions."""
    assert isinstance(layer, CSRSparseLinear) and layer.values.grad is not None
    return layer.values.grad[layer.structure().sorted_slots]


def test_backend_selects_the_class_and_both_are_sparse_linear() -> None:
    masked = SparseLinear(10, 4, density=0.5)
    csr = SparseLinear(10, 4, density=0.5, backend="csr")
    assert type(masked) is MaskedSparseLinear and masked.backend == "masked"
    assert type(csr) is CSRSparseLinear and csr.backend == "csr"
    assert isinstance(masked, SparseLinear) and isinstance(csr, SparseLinear)
    assert "backend='csr'" in repr(csr)


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown sparse layer backend 'sparse'; known: auto, csr, masked"):
        SparseLinear(10, 4, density=0.5, backend="sparse")
    with pytest.raises(ValueError, match="did you mean 'csr'"):
        resolve_backend("crs", 10, 4, 0.5)


def test_a_backend_class_refuses_another_backend() -> None:
    with pytest.raises(ValueError, match="stores the 'csr' backend, not 'masked'"):
        CSRSparseLinear(10, 4, density=0.5, backend="masked")
    assert type(CSRSparseLinear(10, 4, density=0.5)) is CSRSparseLinear


@pytest.mark.parametrize(("in_features", "density", "expected"), [
    (17, 0.02, "masked"),  # too few inputs: per-call overhead dominates
    (AUTO_MIN_INPUTS, AUTO_MAX_DENSITY, "csr"),
    (AUTO_MIN_INPUTS - 1, AUTO_MAX_DENSITY, "masked"),
    (17_000, 0.5, "masked"),  # too dense
    (17_000, 0.3, "csr"),
    (17_000, 0.2, "csr"),
    (17_000, 0.02, "csr"),
    (17_000, 1.0, "masked"),
])
def test_auto_rule(in_features: int, density: float, expected: str) -> None:
    assert resolve_backend("auto", in_features, 256, density) == expected
    assert SparseLinear(in_features, 8, density=density, backend="auto").backend == expected


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_auto_picks_masked_off_the_cpu(device: str) -> None:
    # a layer that is csr on the CPU: on a GPU, csr would run torch's sparse kernels
    assert resolve_backend("auto", 17_000, 256, 0.2, device="cpu") == "csr"
    assert resolve_backend("auto", 17_000, 256, 0.2, device=device) == "masked"
    assert resolve_backend("csr", 17_000, 256, 0.2, device=device) == "csr"  # asked for by name: kept
    with layers_built_for(device):  # built on the CPU, to be moved to the device (SB3's way)
        assert resolve_backend("auto", 17_000, 256, 0.2) == "masked"
        assert SparseLinear(1_700, 8, density=0.2, backend="auto").backend == "masked"
        assert make_sparse_linear(1_700, 8, density=0.2).backend == "masked"
    assert SparseLinear(1_700, 8, density=0.2, backend="auto").backend == "csr"  # the context is gone


@pytest.mark.parametrize(("in_features", "out_features", "density"), SHAPES)
def test_same_initialisation_as_masked(in_features: int, out_features: int, density: float) -> None:
    masked, csr = _twins(in_features, out_features, density)
    assert torch.equal(masked.mask, csr.mask)
    assert torch.equal(masked.weight, csr.weight)
    assert torch.equal(masked.bias, csr.bias)
    assert csr.nnz == masked.nnz == active_count(in_features * out_features, density)
    assert torch.equal(masked.active_positions(), csr.active_positions())
    assert torch.equal(masked.active_values(), csr.active_values())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("in_features", "out_features", "density"), SHAPES)
@pytest.mark.parametrize("batch_shape", [(9,), (1,), (2, 3)])
def test_outputs_and_gradients_match_masked(in_features: int, out_features: int, density: float,
                                            dtype: torch.dtype, batch_shape: tuple[int, ...]) -> None:
    masked, csr = _twins(in_features, out_features, density, dtype=dtype)
    tol = {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 1e-12, "rtol": 1e-10}
    x = torch.randn(*batch_shape, in_features, dtype=dtype, generator=torch.Generator().manual_seed(1))
    x_masked, x_csr = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_masked, y_csr = masked(x_masked), csr(x_csr)
    assert y_csr.shape == y_masked.shape == (*batch_shape, out_features)
    torch.testing.assert_close(y_csr, y_masked, **tol)
    grad_out = torch.randn_like(y_masked)
    y_masked.backward(grad_out)
    y_csr.backward(grad_out)
    torch.testing.assert_close(x_csr.grad, x_masked.grad, **tol)
    torch.testing.assert_close(_slot_grads(csr), masked.weight.grad[masked.mask], **tol)
    torch.testing.assert_close(csr.bias.grad, masked.bias.grad, **tol)


def test_chained_csr_layers_and_no_bias() -> None:
    torch.manual_seed(0)
    masked = torch.nn.Sequential(SparseLinear(300, 64, 0.05, bias=False, generator=torch.Generator().manual_seed(0)),
                                 torch.nn.ReLU(), SparseLinear(64, 8, 0.3, generator=torch.Generator().manual_seed(1)))
    csr = torch.nn.Sequential(
        SparseLinear(300, 64, 0.05, bias=False, backend="csr", generator=torch.Generator().manual_seed(0)),
        torch.nn.ReLU(), SparseLinear(64, 8, 0.3, backend="csr", generator=torch.Generator().manual_seed(1)))
    x = torch.randn(16, 300)
    torch.testing.assert_close(csr(x), masked(x))
    masked(x).square().sum().backward()
    csr(x).square().sum().backward()
    for m, c in zip(masked, csr):
        if isinstance(m, SparseLinear):
            torch.testing.assert_close(_slot_grads(c), m.weight.grad[m.mask], atol=1e-5, rtol=1e-4)


def test_no_grad_forward_and_input_without_grad() -> None:
    masked, csr = _twins(300, 20, 0.05)
    x = torch.randn(5, 300)
    with torch.no_grad():
        torch.testing.assert_close(csr(x), masked(x))
    csr(x).sum().backward()  # x needs no gradient: only values and bias get one
    assert csr.values.grad is not None and csr.bias.grad is not None


def test_storage_is_only_the_active_weights() -> None:
    layer = SparseLinear(1000, 50, density=0.02, backend="csr")
    state = layer.state_dict()
    assert set(state) == {"values", "flat_index", "bias"}
    assert state["values"].shape == state["flat_index"].shape == (1000,)
    assert [name for name, _ in layer.named_parameters()] == ["values", "bias"]
    optimizer = torch.optim.Adam(layer.parameters())
    layer(torch.randn(4, 1000)).sum().backward()
    optimizer.step()
    assert optimizer.state[layer.values]["exp_avg"].shape == (1000,)


def test_dense_views_are_consistent_and_read_only() -> None:
    _, csr = _twins(64, 17, 0.1)
    mask, weight = csr.mask, csr.weight
    assert mask.shape == weight.shape == (17, 64) and mask.dtype == torch.bool
    assert int(mask.sum()) == csr.nnz
    assert torch.all(weight[~mask] == 0)
    assert torch.equal(weight.reshape(-1)[csr.active_positions()], csr.active_values())
    mask.fill_(False)
    weight.detach().fill_(5.0)
    assert int(csr.mask.sum()) == csr.nnz and not torch.any(csr.weight == 5.0)
    with pytest.raises((AttributeError, KeyError)):
        csr.weight = torch.nn.Parameter(torch.zeros(17, 64))  # type: ignore[misc]
    csr.weight.square().sum().backward()  # differentiable in values
    torch.testing.assert_close(csr.values.grad, 2 * csr.values.detach())


def test_state_dict_round_trip_into_a_fresh_layer() -> None:
    layer = SparseLinear(300, 12, density=0.1, backend="csr")
    fresh = SparseLinear(300, 12, density=0.1, backend="csr")
    assert {k: v.shape for k, v in fresh.state_dict().items()} == {k: v.shape for k, v in layer.state_dict().items()}
    assert not torch.equal(fresh.mask, layer.mask)
    x = torch.randn(3, 300)
    fresh(x)  # builds (and caches) the old structure
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer))
    assert torch.equal(fresh.mask, layer.mask) and torch.equal(fresh.weight, layer.weight)
    assert torch.equal(fresh(x), layer(x))  # the cached structure was rebuilt


def test_deepcopy_pickle_and_dtype_moves() -> None:
    layer = SparseLinear(300, 12, density=0.1, backend="csr")
    x = torch.randn(3, 300)
    y = layer(x)
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert type(clone) is CSRSparseLinear
        assert torch.equal(clone.flat_index, layer.flat_index) and torch.equal(clone.values, layer.values)
        assert torch.equal(clone(x), y)
    double = copy.deepcopy(layer).double()
    torch.testing.assert_close(double(x.double()), y.double(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("in_features", "out_features", "density"), SHAPES[:4])
def test_rigl_dense_gradient_equals_masked(in_features: int, out_features: int, density: float) -> None:
    masked, csr = _twins(in_features, out_features, density)
    x = torch.randn(6, in_features)
    grad_out = torch.randn(6, out_features)
    for layer in (masked, csr):
        layer.capture_dense_gradient()
        layer(x).backward(grad_out)
        assert not layer.capture_armed
    assert csr.dense_grad is not None and csr.dense_grad.shape == (out_features, in_features)
    torch.testing.assert_close(csr.dense_grad, masked.dense_grad, atol=1e-5, rtol=1e-4)
    expected = csr.dense_grad.clone()
    csr(x).sum().backward()  # not armed: kept
    assert torch.equal(csr.dense_grad, expected)


# -- topology ----------------------------------------------------------------------------------

def test_replace_connections_reuses_the_dropped_slots() -> None:
    layer = SparseLinear(10, 4, density=0.25, backend="csr", bias=False)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.1)
    layer(torch.randn(3, 10)).sum().backward()
    optimizer.step()
    index_before, values_before = layer.flat_index.clone(), layer.values.detach().clone()
    active = layer.active_positions()
    inactive = (~layer.mask.reshape(-1)).nonzero().squeeze(1)
    dropped, grown = active[[1, 4]], inactive[[0, 7]]
    param, slots = layer.replace_connections(dropped, grown)
    assert param is layer.values
    assert sorted(index_before[slots].tolist()) == sorted(dropped.tolist())
    assert torch.equal(layer.flat_index[slots], grown)
    assert torch.all(layer.values[slots] == 0) and torch.all(layer.values.grad[slots] == 0)
    kept = torch.ones(layer.nnz, dtype=torch.bool)
    kept[slots] = False
    assert torch.equal(layer.flat_index[kept], index_before[kept])
    assert torch.equal(layer.values.detach()[kept], values_before[kept])
    assert layer.mask.reshape(-1)[grown].all() and not layer.mask.reshape(-1)[dropped].any()


@pytest.mark.parametrize("backend", ["masked", "csr"])
def test_replace_connections_checks_its_arguments(backend: str) -> None:
    layer = SparseLinear(10, 4, density=0.25, backend=backend)
    active = layer.active_positions()
    inactive = (~layer.mask.reshape(-1)).nonzero().squeeze(1)
    with pytest.raises(ValueError, match="must be active"):
        layer.replace_connections(inactive[:1], inactive[1:2])
    with pytest.raises(ValueError, match="must be inactive"):
        layer.replace_connections(active[:1], active[1:2])
    with pytest.raises(ValueError, match="distinct"):
        layer.replace_connections(active[:2], inactive[[0, 0]])
    with pytest.raises(ValueError, match="as many grown"):
        layer.replace_connections(active[:2], inactive[:1])


def test_set_mask_keeps_values_of_kept_connections() -> None:
    layer = SparseLinear(8, 3, density=0.5, backend="csr")
    weight_before, mask_before = layer.weight.detach().clone(), layer.mask.clone()
    new_mask = mask_before.clone()
    on, off = mask_before.reshape(-1).nonzero()[:2, 0], (~mask_before).reshape(-1).nonzero()[:2, 0]
    new_mask.view(-1)[on] = False
    new_mask.view(-1)[off] = True
    given = new_mask.clone()
    layer.set_mask_(new_mask)
    assert torch.equal(new_mask, given)  # the argument is not modified
    assert torch.equal(layer.mask, new_mask)
    assert torch.equal(layer.weight.detach()[new_mask & mask_before], weight_before[new_mask & mask_before])
    assert torch.all(layer.weight.detach().reshape(-1)[off] == 0)
    with pytest.raises(ValueError, match="keeps 12 connections; the mask has 13"):
        bigger = new_mask.clone()
        bigger.view(-1)[(~new_mask).reshape(-1).nonzero()[0, 0]] = True
        layer.set_mask_(bigger)
    with pytest.raises(ValueError, match="mask must have shape"):
        layer.set_mask_(torch.ones(8, 3, dtype=torch.bool))


@pytest.mark.parametrize("algorithm", ["set", "rigl"])
def test_both_backends_evolve_identically(algorithm: str) -> None:
    """Same seed, same data: the same masks after every update, weights equal within tolerance."""
    layers = _twins(300, 32, 0.1)
    optimizers = [torch.optim.Adam(layer.parameters(), lr=1e-2) for layer in layers]
    updaters = [TopologyUpdater(layer, optimizer, algorithm=algorithm,
                                schedule=UpdateSchedule(interval=3, drop_fraction=0.3), seed=0)
                for layer, optimizer in zip(layers, optimizers)]
    x = torch.randn(32, 300, generator=torch.Generator().manual_seed(2))
    for _ in range(12):
        for layer, optimizer, updater in zip(layers, optimizers, updaters):
            updater.prepare(1)
            optimizer.zero_grad()
            layer(x).square().mean().backward()
            optimizer.step()
            updater.step()
        masked, csr = layers
        assert torch.equal(masked.mask, csr.mask)
        torch.testing.assert_close(csr.weight, masked.weight, atol=1e-4, rtol=1e-3)  # Adam amplifies float noise
    assert len(updaters[1].history) == 4
    stats_masked, stats_csr = (updater.history[-1].layers["layer"] for updater in updaters)
    assert (stats_masked.pruned, stats_masked.nnz) == (stats_csr.pruned, stats_csr.nnz)
    assert stats_csr.mean_abs_weight == pytest.approx(stats_masked.mean_abs_weight, rel=1e-5)


@pytest.mark.parametrize("algorithm", ["set", "rigl"])
@pytest.mark.parametrize(("in_features", "out_features", "density"), [(8, 4, 0.5), (300, 20, 0.05), (60, 5, 0.9)])
def test_invariants_on_csr(algorithm: str, in_features: int, out_features: int, density: float) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(SparseLinear(in_features, out_features, density, backend="csr"), torch.nn.ReLU(),
                                SparseLinear(out_features, 3, density, backend="csr"))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    updater = TopologyUpdater(model, optimizer, algorithm=algorithm,
                              schedule=UpdateSchedule(interval=3, drop_fraction=0.3), seed=0)
    layers = [layer for layer in updater.layers.values() if isinstance(layer, CSRSparseLinear)]
    counts = [layer.nnz for layer in layers]
    x = torch.randn(16, in_features)
    n_updates = 0
    for _ in range(30):
        updater.prepare(1)
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()
        state = optimizer.state
        before = [(layer.mask.clone(), layer.flat_index.clone(), _by_position(layer, layer.values),
                   _by_position(layer, state[layer.values]["exp_avg"]),
                   _by_position(layer, state[layer.values]["exp_avg_sq"])) for layer in layers]
        update = updater.step()
        for layer, (mask_before, index_before, *kept_before), count in zip(layers, before, counts):
            assert layer.nnz == count == int(layer.mask.sum()) == layer.flat_index.unique().numel()
            if update is None:
                assert torch.equal(layer.flat_index, index_before)
                continue
            assert layer.structure().in_kernel_order  # slots put back in the kernels' order
            grown = layer.mask & ~mask_before
            pruned = mask_before & ~layer.mask
            kept = layer.mask & mask_before
            assert int(grown.sum()) == int(pruned.sum()) == update.layers[
                next(n for n, lay in updater.layers.items() if lay is layer)].pruned
            # regrown start at zero with zeroed moments; kept connections keep value and moments
            after = (layer.values, state[layer.values]["exp_avg"], state[layer.values]["exp_avg_sq"])
            for tensor, dense_before in zip(after, kept_before, strict=True):
                dense_after = _by_position(layer, tensor)
                assert torch.all(dense_after[grown] == 0)
                assert torch.equal(dense_after[kept], dense_before[kept])
        n_updates += update is not None
    assert n_updates == 10


def test_followers_take_the_online_slots_and_polyak_pairs_the_same_connections() -> None:
    torch.manual_seed(0)
    online = torch.nn.Sequential(SparseLinear(300, 16, density=0.1, backend="csr"))
    target = copy.deepcopy(online)
    with torch.no_grad():
        target[0].values.add_(1.0)
    mask_before, values_before = target[0].mask.clone(), _by_position(target[0], target[0].values)
    updater = TopologyUpdater(online, algorithm="set", schedule=UpdateSchedule(interval=1, drop_fraction=0.3),
                              followers=[target], seed=0)
    updater.step()
    assert torch.equal(online[0].flat_index, target[0].flat_index)
    grown, kept = target[0].mask & ~mask_before, target[0].mask & mask_before
    assert int(grown.sum()) == updater.history[-1].changed
    values_after = _by_position(target[0], target[0].values)
    assert torch.all(values_after[grown] == 0)
    assert torch.equal(values_after[kept], values_before[kept])
    # Polyak averaging parameter by parameter now pairs each connection with itself.
    tau = 0.5
    with torch.no_grad():
        for p_target, p_online in zip(target.parameters(), online.parameters(), strict=True):
            p_target.mul_(1 - tau).add_(p_online, alpha=tau)
    expected = (1 - tau) * values_before + tau * _by_position(online[0], online[0].values)
    assert torch.allclose(_by_position(target[0], target[0].values)[kept], expected[kept])


def test_a_follower_with_another_slot_order_is_reordered() -> None:
    """A target built fresh (another random topology, as SB3 builds it before loading) follows
    the online layer's slot order, keeping its own weights of shared connections."""
    torch.manual_seed(0)
    online = SparseLinear(20, 6, density=0.5, backend="csr")
    follower = SparseLinear(20, 6, density=0.5, backend="csr")
    follower_weight = follower.weight.detach().clone()
    shared = online.mask & follower.mask
    follower.follow_topology_(online)
    assert torch.equal(follower.flat_index, online.flat_index)
    expected = torch.where(shared, follower_weight, torch.zeros_like(follower_weight))
    assert torch.equal(follower.weight.detach(), expected)


def test_mixed_backend_follower() -> None:
    torch.manual_seed(0)
    online = SparseLinear(20, 6, density=0.5, backend="csr")
    follower = SparseLinear(20, 6, density=0.5, backend="masked")
    follower.follow_topology_(online)
    assert torch.equal(follower.mask, online.mask)
    with pytest.raises(ValueError, match="cannot follow"):
        SparseLinear(21, 6, density=0.5, backend="csr").follow_topology_(online)


def test_density_one_csr_copies_a_dense_layer() -> None:
    torch.manual_seed(0)
    dense = torch.nn.Linear(7, 5)
    layer = SparseLinear.from_linear(dense, density=1.0, backend="csr")
    assert isinstance(layer, CSRSparseLinear)
    x = torch.randn(4, 7)
    torch.testing.assert_close(layer(x), dense(x))
    assert torch.equal(layer.weight.detach(), dense.weight.detach())


def test_a_batch_of_one_leaves_the_bias_alone(kernel_path: str) -> None:
    # Regression: at batch 1 the result was a view of the bias, and the product accumulated into it.
    torch.manual_seed(0)
    layer = SparseLinear(300, 8, density=0.1, backend="csr")
    bias = layer.bias.detach().clone()
    x = torch.randn(1, 300)
    with torch.no_grad():
        first, second = layer(x), layer(x)
    assert torch.equal(layer.bias.detach(), bias)
    torch.testing.assert_close(first, second)
    torch.testing.assert_close(first, x @ layer.weight.detach().t() + bias, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("head", "tail", "batch"), [(300, 6, 9), (300, 6, 1), (40, 3, 70), (129, 1, 33)])
def test_forward_concat_matches_the_concatenation(kernel_path: str, head: int, tail: int, batch: int) -> None:
    masked, csr = _twins(head + tail, 24, 0.2)
    generator = torch.Generator().manual_seed(2)
    x, a = torch.randn(batch, head, generator=generator), torch.randn(batch, tail, generator=generator)
    x_masked, a_masked = x.clone().requires_grad_(), a.clone().requires_grad_()
    x_csr, a_csr = x.clone().requires_grad_(), a.clone().requires_grad_()
    masked.capture_dense_gradient()
    csr.capture_dense_gradient()
    y_masked, y_csr = masked.forward_concat(x_masked, a_masked), csr.forward_concat(x_csr, a_csr)
    assert csr.structure().head == head and csr.structure().tail == tail
    torch.testing.assert_close(y_csr, y_masked, atol=1e-5, rtol=1e-4)
    grad_out = torch.randn(batch, 24, generator=generator)
    y_masked.backward(grad_out)
    y_csr.backward(grad_out)
    for got, expected in ((x_csr.grad, x_masked.grad), (a_csr.grad, a_masked.grad), (csr.bias.grad, masked.bias.grad),
                          (_slot_grads(csr), masked.weight.grad[masked.mask]), (csr.dense_grad, masked.dense_grad)):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_forward_concat_computes_only_the_gradients_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    from sparse_rl.sparse.kernels import CSRStructure

    def unwanted(*args: object) -> None:
        raise AssertionError("a gradient nobody asked for was computed")

    monkeypatch.setattr(CSRStructure, "matmul_transposed", unwanted)
    monkeypatch.setattr(CSRStructure, "sampled_grad", unwanted)
    _, csr = _twins(300, 16, 0.1)
    x, a = torch.randn(8, 297), torch.randn(8, 3, requires_grad=True)
    csr.values.requires_grad_(False)
    csr.bias.requires_grad_(False)
    csr.forward_concat(x, a).sum().backward()
    expected = csr.weight[:, 297:].sum(0).expand(8, 3)  # ∂/∂a of sum(W [x, a] + b)
    torch.testing.assert_close(a.grad, expected)
    assert csr.values.grad is None and x.grad is None


def test_forward_concat_checks_the_widths_and_one_part_is_forward() -> None:
    _, csr = _twins(30, 4, 0.5)
    with pytest.raises(ValueError, match="the parts have 31 features in all, this layer takes 30"):
        csr.forward_concat(torch.randn(2, 28), torch.randn(2, 3))
    x = torch.randn(2, 30)
    torch.testing.assert_close(csr.forward_concat(x), csr(x))
    torch.testing.assert_close(csr.forward_concat(x[:, :20], x[:, 20:25], x[:, 25:]), csr(x), atol=1e-6, rtol=1e-5)


def test_a_feature_major_input_is_read_in_place_at_any_row_stride(kernel_path: str) -> None:
    from sparse_rl.sparse.kernels import feature_major

    masked, csr = _twins(700, 32, 0.1)
    x = torch.randn(50, 700)
    padded = torch.empty(700, 64)[:, :50]
    padded.copy_(x.t())
    strided = padded.t().requires_grad_(False)
    assert feature_major(strided).data_ptr() == padded.data_ptr()  # a view, no copy
    assert feature_major(x).is_contiguous() and feature_major(x).data_ptr() != x.data_ptr()
    torch.testing.assert_close(csr(strided), masked(x), atol=1e-5, rtol=1e-4)
    csr(strided).square().sum().backward()
    masked(x).square().sum().backward()
    torch.testing.assert_close(_slot_grads(csr), masked.weight.grad[masked.mask], atol=1e-4, rtol=1e-4)


def test_kernel_order_changes_no_number_and_moves_the_optimizer_state(kernel_path: str) -> None:
    _, csr = _twins(400, 16, 0.1)
    assert csr.structure().in_kernel_order  # a fresh layer starts in the kernels' order
    x, a = torch.randn(12, 397), torch.randn(12, 3)
    optimizer = torch.optim.Adam(csr.parameters(), lr=1e-2)

    def step() -> tuple[torch.Tensor, torch.Tensor]:
        optimizer.zero_grad()
        y = csr.forward_concat(x, a)
        y.square().sum().backward()
        return y.detach(), _by_position(csr, csr.values.grad)

    step()
    optimizer.step()
    with torch.no_grad():  # shuffle the slots, as a topology update or a loaded checkpoint may leave them
        shuffle = torch.randperm(csr.nnz, generator=torch.Generator().manual_seed(3))
        csr.flat_index.copy_(csr.flat_index[shuffle])
        csr.values.copy_(csr.values[shuffle])
        for key in ("exp_avg", "exp_avg_sq"):
            optimizer.state[csr.values][key].copy_(optimizer.state[csr.values][key][shuffle])
    moments = [_by_position(csr, optimizer.state[csr.values][key]) for key in ("exp_avg", "exp_avg_sq")]
    y_shuffled, grad_shuffled = step()
    assert not csr.structure().in_kernel_order
    csr.order_for_kernels_([optimizer])
    assert csr.structure().in_kernel_order and csr.structure().head == 397
    for key, before in zip(("exp_avg", "exp_avg_sq"), moments, strict=True):
        assert torch.equal(_by_position(csr, optimizer.state[csr.values][key]), before)
    y_ordered, grad_ordered = step()
    torch.testing.assert_close(y_ordered, y_shuffled)
    torch.testing.assert_close(grad_ordered, grad_shuffled)
