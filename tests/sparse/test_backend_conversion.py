"""A state dict saved with one SparseLinear backend loads into the other, with the same outputs."""

from __future__ import annotations

import pytest
import torch

from sparse_rl.sparse.layers import SparseLinear


@pytest.mark.parametrize(("source", "target"), [("masked", "csr"), ("csr", "masked")])
def test_layer_state_dict_loads_across_backends(source: str, target: str) -> None:
    trained = SparseLinear(300, 24, density=0.1, backend=source, generator=torch.Generator().manual_seed(0))
    fresh = SparseLinear(300, 24, density=0.1, backend=target, generator=torch.Generator().manual_seed(1))
    assert fresh.backend == target and not torch.equal(fresh.mask, trained.mask)
    state = trained.state_dict()
    fresh.load_state_dict(state)  # strict: no missing or unexpected keys
    assert set(state) == set(trained.state_dict())  # the caller's dict is left as it was
    assert torch.equal(fresh.mask, trained.mask) and torch.equal(fresh.weight, trained.weight)
    x = torch.randn(7, 300)
    torch.testing.assert_close(fresh(x), trained(x), rtol=1e-5, atol=1e-6)


def test_a_density_mismatch_is_reported() -> None:
    masked = SparseLinear(300, 24, density=0.2, backend="masked")
    csr = SparseLinear(300, 24, density=0.1, backend="csr")
    with pytest.raises(RuntimeError, match="size mismatch for values"):
        csr.load_state_dict(masked.state_dict())


def test_a_policy_trained_with_masked_layers_loads_into_csr_ones() -> None:
    from stable_baselines3.common.env_util import make_vec_env

    from sparse_rl.agents import SparseSAC
    from sparse_rl.envs import make_env

    env = make_vec_env(lambda: make_env({"id": "Pendulum-v1", "noise_fraction": 0.99}, seed=0), 1)
    models = {backend: SparseSAC("MlpPolicy", env, seed=backend == "csr", policy_kwargs={"net_arch": [32, 32]},
                                 sparsity={"preset": "anf", "backend": backend})
              for backend in ("masked", "csr")}
    layer = models["csr"].actor.latent_pi[0]
    assert type(layer).backend == "csr" and type(models["masked"].actor.latent_pi[0]).backend == "masked"
    models["csr"].policy.load_state_dict(models["masked"].policy.state_dict())
    observations = torch.randn(5, env.observation_space.shape[0])
    with torch.no_grad():
        for network in ("actor", "critic"):
            ours, theirs = getattr(models["csr"], network), getattr(models["masked"], network)
            if network == "actor":
                torch.testing.assert_close(ours(observations, deterministic=True),
                                           theirs(observations, deterministic=True), rtol=1e-5, atol=1e-6)
            else:
                actions = torch.rand(5, 1) * 2 - 1
                for q_ours, q_theirs in zip(ours(observations, actions), theirs(observations, actions)):
                    torch.testing.assert_close(q_ours, q_theirs, rtol=1e-5, atol=1e-6)
