"""FeatureMajorReLU: the values and gradients of nn.ReLU, bit for bit, after a csr layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sparse_rl.sparse.layers.csr import CSRSparseLinear, FeatureMajorReLU, feature_major_activations_


@pytest.mark.parametrize("batch", [1, 7, 100, 256])
def test_values_and_gradients_are_relus_bit_for_bit_after_a_csr_layer(batch: int) -> None:
    torch.manual_seed(0)
    first = CSRSparseLinear(300, 64, density=0.2)
    head = nn.Linear(64, 5)
    x = torch.randn(batch, 300)
    results = []
    for activation in (nn.ReLU(), FeatureMajorReLU()):
        for parameter in (*first.parameters(), *head.parameters()):
            parameter.grad = None
        hidden = first(x)
        out = head(activation(hidden))
        hidden.retain_grad()
        out.square().sum().backward()
        results.append((out.detach(), hidden.grad, first.values.grad.clone(), first.bias.grad.clone()))
    for ours, torchs in zip(results[1], results[0], strict=True):
        assert torch.equal(ours, torchs)


def test_a_row_major_input_takes_the_plain_path() -> None:
    x = torch.randn(6, 4, requires_grad=True)
    grad = torch.randn(6, 4)
    FeatureMajorReLU()(x).backward(grad)
    assert torch.equal(x.grad, torch.where(x > 0, grad, torch.zeros(())))


def test_only_a_plain_relu_right_after_a_csr_layer_is_replaced() -> None:
    network = nn.Sequential(CSRSparseLinear(20, 8, density=0.5), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                            nn.Sequential(CSRSparseLinear(8, 4, density=0.5), nn.Tanh()))
    before = {key: value.clone() for key, value in network.state_dict().items()}
    assert feature_major_activations_(network) == 1
    assert type(network[1]) is FeatureMajorReLU and type(network[3]) is nn.ReLU and type(network[4][1]) is nn.Tanh
    assert network.state_dict().keys() == before.keys()
