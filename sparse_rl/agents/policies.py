"""Sparse SAC and TD3 policies: SB3's policies whose actor, critics and targets use SparseLinear.

SB3 builds each network as usual; :func:`~sparse_rl.agents.networks.sparsify` then swaps the
chosen layers for sparse ones inside ``make_actor`` / ``make_critic``, before the optimizers are
built. Target networks are built by the same calls and then take the online state dict, masks
included, so they start with the online topology.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.sac.policies import Actor as SACActor
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import Actor as TD3Actor
from stable_baselines3.td3.policies import TD3Policy

from sparse_rl._util.validation import check_choice
from sparse_rl.agents.critics import SparseContinuousCritic
from sparse_rl.agents.networks import WEIGHT_INITS, q_networks, sparsify, xavier_init_
from sparse_rl.agents.sparsity import SparsityConfig, resolve_sparsity
from sparse_rl.sparse.layers import SparseLinear


class SparsePolicyMixin:
    """Adds ``sparsity`` and ``weight_init`` constructor arguments to an SB3 actor-critic policy
    and makes the actor and every Q-network sparse as they are built."""

    sparsity: SparsityConfig
    weight_init: str = "torch"
    agent_kind: str = "sac"

    def _set_sparsity(self, sparsity: str | dict[str, Any] | SparsityConfig | None, weight_init: str = "torch") -> None:
        self.sparsity = resolve_sparsity(sparsity, agent=self.agent_kind)
        self.weight_init = check_choice(weight_init, WEIGHT_INITS, "weight_init")

    def _build_layers(self, network: Any) -> None:
        """Initialise ``network`` by :attr:`weight_init`, then make its configured layers sparse
        (under ``xavier_uniform`` the sparse layers are drawn Xavier-uniform too, then masked)."""
        sparsity = self.sparsity
        if self.weight_init == "xavier_uniform":
            xavier_init_(network)
            sparsity = dataclasses.replace(sparsity, init="xavier_uniform")
        sparsify(network, sparsity)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> Any:
        """SB3's actor, with the configured layers made sparse."""
        actor = super().make_actor(features_extractor)  # type: ignore[misc]
        self._build_layers(actor)
        return actor

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> ContinuousCritic:
        """SB3's critic (as :class:`SparseContinuousCritic`), with the configured layers of each
        Q-network made sparse."""
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)  # type: ignore[attr-defined]
        critic = SparseContinuousCritic(**critic_kwargs).to(self.device)  # type: ignore[attr-defined]
        action_dim = get_action_dim(self.action_space)  # type: ignore[attr-defined]
        for network in q_networks(critic).values():
            self._build_layers(network)
            first = network[0]
            if isinstance(first, SparseLinear):  # it takes (features, action) apart: see SparseContinuousCritic
                first.expect_concat_(first.in_features - action_dim)
        return critic

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data["sparsity"] = self.sparsity.to_dict()
        data["weight_init"] = self.weight_init
        return data


class SparseSACPolicy(SparsePolicyMixin, SACPolicy):
    """SB3's ``SACPolicy`` with sparse layers.

    :param sparsity: a preset name, a dict or a :class:`SparsityConfig`
    :param weight_init: ``torch`` (SB3's: ``nn.Linear``'s default) or ``xavier_uniform`` (every layer
        Xavier-uniform, zero biases: Grooten et al.'s SAC code); every other argument is SB3's
        ``SACPolicy``'s.
    """

    actor: SACActor
    agent_kind = "sac"

    def __init__(self, *args: Any, sparsity: str | dict[str, Any] | SparsityConfig | None = "anf",
                 weight_init: str = "torch", **kwargs: Any):
        self._set_sparsity(sparsity, weight_init)
        super().__init__(*args, **kwargs)


class SparseTD3Policy(SparsePolicyMixin, TD3Policy):
    """SB3's ``TD3Policy`` with sparse layers (the actor target included).

    :param sparsity: a preset name, a dict or a :class:`SparsityConfig`
    :param weight_init: ``torch`` (SB3's) or ``xavier_uniform`` (see :class:`SparseSACPolicy`);
        every other argument is SB3's ``TD3Policy``'s.
    """

    actor: TD3Actor
    agent_kind = "td3"

    def __init__(self, *args: Any, sparsity: str | dict[str, Any] | SparsityConfig | None = "anf",
                 weight_init: str = "torch", **kwargs: Any):
        self._set_sparsity(sparsity, weight_init)
        super().__init__(*args, **kwargs)
