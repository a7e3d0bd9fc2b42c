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


def test_fused_adam_is_within_a_few_ulps_of_one_tensor_at_a_time() -> None:
    """torch's fused Adam (``optimizer_kwargs={"fused": True}``, an option, not the default) computes
    the same update in one kernel per tensor with another rounding of its intermediate values: after
    a few steps its parameters differ from the per-tensor path's by float32 rounding (relative
    ~1e-7), not by more; a run with it is not bit-identical to one without."""
    results = []
    for kwargs in ({"foreach": False}, {"fused": True}):
        generator = torch.Generator().manual_seed(0)
        parameters = [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in ((4096,), (64, 64))]
        optimizer = torch.optim.Adam(parameters, lr=1e-3, weight_decay=2e-4, **kwargs)
        for _ in range(20):
            for parameter in parameters:
                parameter.grad = torch.randn(parameter.shape, generator=generator)
            optimizer.step()
        results.append([parameter.detach().clone() for parameter in parameters])
    for one, fused in zip(*results):
        torch.testing.assert_close(fused, one, rtol=1e-6, atol=1e-7)
