"""On a CUDA device (skipped where there is none: the project never needs one): ``auto`` builds
masked layers for an agent that trains there, and both backends train and agree with each other."""

from __future__ import annotations

import pytest
import torch

from sparse_rl.agents import SparseSAC
from sparse_rl.envs import make_env
from sparse_rl.sparse.layers import SparseLinear

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_an_agent_on_cuda_gets_masked_layers_and_trains() -> None:
    env = make_env({"id": "Pendulum-v1", "n_noise": 400}, seed=0)  # csr under auto on the CPU
    model = SparseSAC("MlpPolicy", env, sparsity="anf", learning_starts=50, batch_size=32, seed=0, device="cuda",
                      policy_kwargs={"net_arch": [32, 32]})
    layers = [m for m in model.policy.modules() if isinstance(m, SparseLinear)]
    assert layers and all(layer.backend == "masked" for layer in layers)
    assert all(p.is_cuda for p in model.policy.parameters())
    model.learn(120)
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())


def test_csr_and_masked_layers_agree_on_cuda() -> None:
    torch.manual_seed(0)
    masked = SparseLinear(1_700, 64, density=0.2, backend="masked")
    csr = SparseLinear(1_700, 64, density=0.2, backend="csr")
    csr.load_state_dict(masked.state_dict())  # the backends' state dicts convert into each other
    masked, csr = masked.cuda(), csr.cuda()
    x = torch.randn(100, 1_700, device="cuda")
    torch.testing.assert_close(csr(x), masked(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("n_envs", "permute_at_step"), [(1, None), (2, 40)])
def test_a_cuda_agents_buffer_makes_the_noise_there_with_the_cpus_bits(n_envs: int,
                                                                       permute_at_step: int | None) -> None:
    import numpy as np
    from stable_baselines3.common.env_util import make_vec_env

    config = {"id": "Pendulum-v1", "n_noise": 1683, "make_kwargs": {"max_episode_steps": 60},
              "permute_at_step": permute_at_step}
    env = make_vec_env(lambda: make_env(config), n_envs=n_envs, seed=0)
    model = SparseSAC("MlpPolicy", env, sparsity="anf", learning_starts=80, batch_size=32, seed=0, device="cuda",
                      policy_kwargs={"net_arch": [32, 32]})
    model.learn(120)  # trains on the device-made noise
    buffer = model.replay_buffer
    assert buffer.noise_on_device()
    rows = np.arange(buffer.pos)
    np.random.seed(4)
    on_cuda = buffer._get_samples(rows)
    assert on_cuda.observations.is_cuda and on_cuda.next_observations.is_cuda
    buffer.device = torch.device("cpu")  # the same buffer, rebuilt by the native kernel
    np.random.seed(4)
    on_cpu = buffer._get_samples(rows)
    for ours, theirs in ((on_cuda.observations, on_cpu.observations),
                         (on_cuda.next_observations, on_cpu.next_observations)):
        assert torch.equal(ours.cpu().view(torch.int32), theirs.contiguous().view(torch.int32))
