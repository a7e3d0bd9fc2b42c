"""Several csr layers on the same input in one call: the numbers of separate calls, bit for bit."""

from __future__ import annotations

import pytest
import torch

from sparse_rl.sparse import SparseLinear
from sparse_rl.sparse.layers.csr import CSRSparseLinear, forward_concat_shared
from sparse_rl.sparse.shared_input import CSRSharedInputFunction, csr_linear_shared


@pytest.fixture(params=["native", "torch"])
def kernel_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on the native kernels (where they build) and on torch's sparse kernels."""
    if request.param == "torch":
        monkeypatch.setattr("sparse_rl.sparse.kernels.supports", lambda *tensors: False)
    return request.param


def _layers(count: int = 2, head: int = 300, tail: int = 3, out_features: int = 40,
            density: float = 0.2) -> list[CSRSparseLinear]:
    """``count`` csr layers of the same shape with different connections and weights, prepared for
    a head of ``head`` inputs (as a critic's input layers)."""
    layers = []
    for seed in range(count):
        layer = SparseLinear(head + tail, out_features, density, backend="csr",
                             generator=torch.Generator().manual_seed(seed))
        assert isinstance(layer, CSRSparseLinear)
        with torch.no_grad():
            layer.bias.normal_(generator=torch.Generator().manual_seed(100 + seed))
        if tail:
            layer.expect_concat_(head)
        layers.append(layer)
    return layers


def _grads(layers: list[CSRSparseLinear]) -> list[torch.Tensor | None]:
    grads = [grad for layer in layers for grad in (layer.values.grad, layer.bias.grad)]
    for layer in layers:
        layer.zero_grad(set_to_none=True)
    return grads


def _assert_equal(got: list[torch.Tensor | None], expected: list[torch.Tensor | None]) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert (g is None) == (e is None)
        if g is not None:
            assert g.stride() == e.stride()
            assert torch.equal(g, e)


@pytest.mark.parametrize("batch", [1, 5, 8, 37, 100, 256])
@pytest.mark.parametrize("tail", [0, 3])
def test_outputs_and_weight_gradients_equal_separate_calls(kernel_path: str, batch: int, tail: int) -> None:
    layers = _layers(tail=tail)
    generator = torch.Generator().manual_seed(batch)
    parts = [torch.randn(batch, 300, generator=generator)] + ([torch.randn(batch, tail, generator=generator)]
                                                              if tail else [])
    weights = [torch.randn(batch, 40, generator=generator) for _ in layers]

    expected = [layer.forward_concat(*parts) for layer in layers]
    sum((y * w).sum() for y, w in zip(expected, weights, strict=True)).backward()
    expected_grads = _grads(layers)
    got = forward_concat_shared(layers, *parts)
    assert got[0].grad_fn is got[1].grad_fn  # one autograd node
    sum((y * w).sum() for y, w in zip(got, weights, strict=True)).backward()
    _assert_equal(got, expected)
    _assert_equal(_grads(layers), expected_grads)


def test_one_node_serves_the_layers_when_only_their_weights_need_gradients() -> None:
    layers = _layers()
    x, a = torch.randn(16, 300), torch.randn(16, 3)
    got = forward_concat_shared(layers, x, a)
    assert got[0].grad_fn is got[1].grad_fn
    assert got[0].grad_fn.name() == CSRSharedInputFunction.__name__ + "Backward"
    with torch.no_grad():
        assert all(y.grad_fn is None for y in forward_concat_shared(layers, x, a))


def test_a_layer_whose_output_gets_no_gradient_gets_none() -> None:
    layers = _layers(3)
    x, a = torch.randn(16, 300), torch.randn(16, 3)
    forward_concat_shared(layers, x, a)[1].sum().backward()
    assert layers[0].values.grad is None and layers[2].bias.grad is None
    got = _grads(layers)
    layers[1].forward_concat(x, a).sum().backward()
    _assert_equal(got, _grads(layers))


def test_input_and_tail_gradients_equal_separate_calls(kernel_path: str) -> None:
    """Where the input or the action needs a gradient (an actor's loss), each layer keeps its own
    node: autograd adds what reaches the action exactly as for separate calls, including with
    another consumer of the action."""
    layers = _layers()
    x = torch.randn(64, 300)
    base = torch.randn(64, 3)

    def run(shared: bool, frozen: bool) -> list[torch.Tensor | None]:
        a = base.clone().requires_grad_(True)
        x_in = x.clone().requires_grad_(not frozen)
        for layer in layers:
            layer.requires_grad_(not frozen)
        ys = forward_concat_shared(layers, x_in, a) if shared else [layer.forward_concat(x_in, a) for layer in layers]
        assert shared or ys[0].grad_fn is not ys[1].grad_fn
        loss = (ys[0] * 0.3).sum() + ys[1].square().mean() + a.tanh().sum()  # the action has a third consumer
        loss.backward()
        return [a.grad, x_in.grad, *_grads(layers)]

    for frozen in (True, False):
        _assert_equal(run(True, frozen), run(False, frozen))
    for layer in layers:
        layer.requires_grad_(True)


def test_dense_gradient_sinks_equal_separate_calls(kernel_path: str) -> None:
    layers = _layers()
    x, a = torch.randn(32, 300), torch.randn(32, 3)
    expected = []
    for layer in layers:
        layer.capture_dense_gradient()
        layer.forward_concat(x, a).square().sum().backward()
        expected.append(layer.dense_grad)
    expected_grads = _grads(layers)
    for layer in layers:
        layer.capture_dense_gradient()
    sum(y.square().sum() for y in forward_concat_shared(layers, x, a)).backward()
    assert not any(layer.capture_armed for layer in layers)
    _assert_equal([layer.dense_grad for layer in layers], expected)
    _assert_equal(_grads(layers), expected_grads)


def test_slots_out_of_kernel_order_and_three_dimensional_inputs(kernel_path: str) -> None:
    layers = _layers()
    active = layers[1].active_positions()
    inactive = torch.ones(layers[1].in_features * 40, dtype=torch.bool)
    inactive[active] = False
    layers[1].replace_connections(active[:25], inactive.nonzero().squeeze(1)[:25])  # grown slots out of order
    assert not layers[1].structure(300).in_kernel_order
    x, a = torch.randn(4, 5, 300), torch.randn(4, 5, 3)
    expected = [layer.forward_concat(x, a) for layer in layers]
    sum(y.sum() for y in expected).backward()
    expected_grads = _grads(layers)
    got = forward_concat_shared(layers, x, a)
    sum(y.sum() for y in got).backward()
    _assert_equal(got, expected)
    _assert_equal(_grads(layers), expected_grads)


def test_layers_of_other_shapes_fall_back_to_separate_products() -> None:
    layers = [*_layers(1), *_layers(1, out_features=24)]
    x, a = torch.randn(10, 300), torch.randn(10, 3)
    for got, layer in zip(forward_concat_shared(layers, x, a), layers, strict=True):
        assert torch.equal(got, layer.forward_concat(x, a))


def test_arguments_are_checked() -> None:
    layers = _layers()
    with pytest.raises(ValueError, match="features in all"):
        forward_concat_shared(layers, torch.randn(2, 299), torch.randn(2, 3))
    structures = [layer.structure(300) for layer in layers]
    with pytest.raises(ValueError, match="one structure, values"):
        csr_linear_shared(torch.randn(2, 300), structures, [layers[0].values], [None, None], [None, None],
                          [None, None])
    with pytest.raises(ValueError, match="expected 300 input features"):
        csr_linear_shared(torch.randn(2, 301), structures, [layer.values for layer in layers], [None, None],
                          [None, None], [None, None])
