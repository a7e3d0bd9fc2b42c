"""Layer roles and sparsification of SB3 networks."""

from __future__ import annotations

from collections.abc import Callable

import torch
from stable_baselines3 import SAC, TD3

from sparse_rl.agents.networks import input_layers, layer_roles, sparsify
from sparse_rl.agents.sparsity import resolve_sparsity
from sparse_rl.sparse.layers import SparseLinear


def test_roles_of_sac_and_td3_networks(tiny: Callable) -> None:
    sac = SAC("MlpPolicy", "Pendulum-v1", **tiny())
    assert layer_roles(sac.actor) == {"latent_pi.0": "input", "latent_pi.2": "hidden", "mu": "output",
                                      "log_std": "output"}
    assert layer_roles(sac.critic.qf0) == {"0": "input", "2": "hidden", "4": "output"}
    td3 = TD3("MlpPolicy", "Pendulum-v1", **tiny())
    assert layer_roles(td3.actor) == {"mu.0": "input", "mu.2": "hidden", "mu.4": "output"}


def test_sparsify_replaces_only_the_sparse_roles(tiny: Callable) -> None:
    sac = SAC("MlpPolicy", "Pendulum-v1", **tiny())
    densities = sparsify(sac.critic.qf0, resolve_sparsity({"preset": "all_layers", "density": 0.3}))
    assert isinstance(sac.critic.qf0[0], SparseLinear) and isinstance(sac.critic.qf0[2], SparseLinear)
    assert isinstance(sac.critic.qf0[4], torch.nn.Linear) and densities["4"] == 1.0
    assert 0 < densities["0"] < 1 and 0 < densities["2"] < 1


def test_input_layers(tiny: Callable) -> None:
    td3 = TD3("MlpPolicy", "Pendulum-v1", **tiny())
    layers = input_layers(td3.policy)
    assert set(layers) == {"actor", "qf0", "qf1"}
    assert layers["actor"].in_features == 3 and layers["qf0"].in_features == 3 + 1
