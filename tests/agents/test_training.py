"""The training mixin's optimizer setting: Adam over all tensors per operation (``foreach``), the same bits."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from sparse_rl.agents import SparseSAC, make_agent
from sparse_rl.agents.training import prefer_foreach


def test_prefer_foreach_sets_only_what_was_left_to_torch() -> None:
    parameter = torch.nn.Parameter(torch.zeros(3))
    left = torch.optim.Adam([parameter])
    prefer_foreach(left)
    assert left.param_groups[0]["foreach"] is True
    explicit = torch.optim.Adam([parameter], foreach=False)
    fused = torch.optim.Adam([parameter], fused=True)
    for optimizer in (explicit, fused):
        prefer_foreach(optimizer)
    assert explicit.param_groups[0]["foreach"] is False and fused.param_groups[0]["foreach"] is None
    no_option = torch.optim.LBFGS([parameter])
    prefer_foreach(no_option)
    assert "foreach" not in no_option.param_groups[0]


@pytest.mark.parametrize("weight_decay", [0.0, 2e-4])
def test_foreach_adam_gives_the_bits_of_one_tensor_at_a_time(weight_decay: float) -> None:
    shapes = [(43_520,), (256,), (256, 256), (6, 256), (1,)]
    results = []
    for foreach in (False, True):
        generator = torch.Generator().manual_seed(0)
        parameters = [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in shapes]
        optimizer = torch.optim.Adam(parameters, lr=1e-3, weight_decay=weight_decay, foreach=foreach)
        for _ in range(5):
            for parameter in parameters:
                parameter.grad = torch.randn(parameter.shape, generator=generator)
            optimizer.step()
        state = [tensor for parameter in parameters for tensor in optimizer.state[parameter].values()]
        results.append([parameter.detach() for parameter in parameters] + state)
    for one, many in zip(*results):
        assert torch.equal(one, many)


def test_the_agents_optimizers_update_all_tensors_per_operation(tiny: Callable) -> None:
    auto = SparseSAC("MlpPolicy", "Pendulum-v1", **tiny())  # automatic temperature: three optimizers
    shipped = make_agent("anf_sac", "Pendulum-v1", seed=0, buffer_size=1000)
    for model in (auto, shipped):
        for optimizer in model._optimizers():
            assert all(group["foreach"] is True for group in optimizer.param_groups)
    assert len(auto._optimizers()) == 3 and len(shipped._optimizers()) == 2
