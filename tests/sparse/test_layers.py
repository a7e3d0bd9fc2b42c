"""SparseLinear: masking, initialisation, parity with nn.Linear, copying and saving."""

from __future__ import annotations

import copy
import io
import math
import pickle

import pytest
import torch
from torch import nn

from sparse_rl.sparse.layers import SparseLinear, active_count, random_mask


@pytest.mark.parametrize("density", [0.01, 0.2, 0.5, 1.0])
@pytest.mark.parametrize("shape", [(8, 4), (64, 17), (3, 100)])
def test_random_mask_has_exact_count(shape: tuple[int, int], density: float) -> None:
    mask = random_mask(shape, density, torch.Generator().manual_seed(0))
    assert mask.dtype == torch.bool and mask.shape == shape
    assert int(mask.sum()) == active_count(math.prod(shape), density)


def test_initialisation_uses_active_fan_in() -> None:
    torch.manual_seed(0)
    layer = SparseLinear(1000, 200, density=0.04)
    active = layer.weight[layer.mask]
    bound = 1 / math.sqrt(0.04 * 1000)
    assert active.abs().max() <= bound + 1e-6
    assert active.abs().max() > 0.9 * bound  # uses the whole range, not the dense fan-in's
    assert torch.all(layer.weight[~layer.mask] == 0)


def test_density_one_matches_nn_linear_outputs_and_gradients() -> None:
    torch.manual_seed(0)
    dense = nn.Linear(7, 5)
    sparse = SparseLinear.from_linear(dense, density=1.0)
    x = torch.randn(11, 7)
    y_dense, y_sparse = dense(x), sparse(x)
    assert torch.equal(y_dense, y_sparse)
    y_dense.pow(2).sum().backward()
    y_sparse.pow(2).sum().backward()
    assert torch.equal(dense.weight.grad, sparse.weight.grad)
    assert torch.equal(dense.bias.grad, sparse.bias.grad)


def test_density_one_initialises_like_nn_linear() -> None:
    torch.manual_seed(3)
    dense = nn.Linear(9, 4)
    torch.manual_seed(3)
    sparse = SparseLinear(9, 4, density=1.0)
    assert torch.equal(dense.weight, sparse.weight) and torch.equal(dense.bias, sparse.bias)


def test_inactive_weights_get_no_gradient() -> None:
    layer = SparseLinear(20, 10, density=0.3)
    layer(torch.randn(4, 20)).sum().backward()
    assert torch.all(layer.weight.grad[~layer.mask] == 0)
    assert torch.any(layer.weight.grad[layer.mask] != 0)


@pytest.mark.parametrize("optimizer_class", [torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD])
def test_inactive_weights_stay_zero_under_optimizer_with_weight_decay(optimizer_class: type) -> None:
    torch.manual_seed(0)
    layer = SparseLinear(30, 16, density=0.2)
    kwargs = {"momentum": 0.9} if optimizer_class is torch.optim.SGD else {}
    optimizer = optimizer_class(layer.parameters(), lr=1e-2, weight_decay=1e-2, **kwargs)
    for _ in range(50):
        optimizer.zero_grad()
        layer(torch.randn(8, 30)).pow(2).mean().backward()
        optimizer.step()
    assert torch.all(layer.weight[~layer.mask] == 0)


def test_dense_gradient_capture_records_unmasked_gradient_once() -> None:
    torch.manual_seed(0)
    layer = SparseLinear(6, 3, density=0.5)
    x = torch.randn(5, 6)
    layer.capture_dense_gradient()
    out = layer(x)
    grad_out = torch.randn_like(out)
    out.backward(grad_out)
    expected = grad_out.T @ x  # ∂L/∂W of the dense weight
    assert torch.allclose(layer.dense_grad, expected, atol=1e-6)
    assert not layer.capture_armed
    layer(x).sum().backward()  # not armed: the recorded gradient stays
    assert torch.allclose(layer.dense_grad, expected, atol=1e-6)


def test_deepcopy_pickle_and_state_dict_keep_the_mask() -> None:
    layer = SparseLinear(12, 5, density=0.25)
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert torch.equal(clone.mask, layer.mask) and torch.equal(clone.weight, layer.weight)
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    other = SparseLinear(12, 5, density=0.25)
    assert not torch.equal(other.mask, layer.mask)
    buffer.seek(0)
    other.load_state_dict(torch.load(buffer))
    assert torch.equal(other.mask, layer.mask)
    x = torch.randn(3, 12)
    assert torch.equal(other(x), layer(x))


@pytest.mark.parametrize("density", [0.0, -0.1, 1.5, float("nan"), "high"])
def test_bad_density_is_rejected(density: object) -> None:
    with pytest.raises(ValueError, match=r"density must be .*\(0, 1\]"):
        SparseLinear(4, 4, density=density)  # type: ignore[arg-type]


def test_set_mask_checks_shape() -> None:
    layer = SparseLinear(4, 3, density=0.5)
    with pytest.raises(ValueError, match="mask must have shape"):
        layer.set_mask_(torch.ones(4, 4, dtype=torch.bool))


@pytest.mark.parametrize("backend", ["masked", "csr"])
def test_dense_fan_in_init_is_the_references(backend: str) -> None:
    generator = torch.Generator().manual_seed(0)
    ours = SparseLinear(400, 64, density=0.05, backend=backend, generator=generator)
    reference = SparseLinear(400, 64, density=0.05, backend=backend, init="dense_fan_in",
                             generator=torch.Generator().manual_seed(0))
    assert torch.equal(ours.mask, reference.mask)
    bound = 1 / math.sqrt(400)  # nn.Linear's bound for 400 inputs, then masked
    assert reference.weight.abs().max() <= bound < ours.weight.abs().max()
    assert reference.weight.abs().max() > 0.9 * bound and reference.bias.abs().max() <= bound
    with pytest.raises(ValueError, match="unknown init 'he'"):
        SparseLinear(4, 4, density=0.5, init="he")


def test_the_constructor_and_the_factory_build_the_backend() -> None:
    from sparse_rl.sparse.layers import CSRSparseLinear, MaskedSparseLinear, make_sparse_linear

    assert type(SparseLinear(300, 8, density=0.1, backend="auto")) is CSRSparseLinear
    assert type(SparseLinear(16, 8, density=0.1, backend="auto")) is MaskedSparseLinear
    assert type(SparseLinear(16, 8, density=0.5)) is MaskedSparseLinear
    assert type(make_sparse_linear(300, 8, density=0.1)) is CSRSparseLinear
    assert type(make_sparse_linear(300, 8, density=0.1, backend="masked")) is MaskedSparseLinear


@pytest.mark.parametrize("backend", ["masked", "csr"])
@pytest.mark.parametrize("density", [1.0, 0.2])
def test_xavier_uniform_init_is_anf_sacs(backend: str, density: float) -> None:
    # Grooten et al.'s SAC code: xavier_uniform_(weight, gain=1), bias 0, then the mask.
    layer = SparseLinear(300, 64, density=density, backend=backend if density < 1 else "masked",
                         init="xavier_uniform", generator=torch.Generator().manual_seed(0))
    bound = math.sqrt(6.0 / (300 + 64))
    weight, mask = layer.weight.detach(), layer.mask
    assert float(weight.abs().max()) <= bound
    assert float(weight[mask].abs().max()) > 0.9 * bound  # uses the whole range, not 1/sqrt(fan_in)'s
    assert float(weight[~mask].abs().sum()) == 0.0 and layer.nnz == round(density * 300 * 64)
    assert torch.count_nonzero(layer.bias) == 0
    with pytest.raises(ValueError, match="unknown init 'xavier'.*did you mean"):
        SparseLinear(8, 4, density=0.5, init="xavier")
