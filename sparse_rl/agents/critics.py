"""The critic of the sparse agents: SB3's ``ContinuousCritic``, evaluated without waste.

Two things SB3's critic computes that a sparse input layer makes expensive, at 17,000 inputs the
bulk of a SAC step:

- It concatenates observation and action before the first layer. A ``csr`` input layer takes them
  apart instead (:meth:`~sparse_rl.sparse.layers.SparseLinear.forward_concat`): the observation
  goes through the sparse kernels as the feature-major copy the replay batch already is, the
  action through a small dense matrix.
- In the actor's loss (``Q(s, π(s))``, whose action carries a gradient) autograd computes the
  critic's weight gradients and the gradient of every input feature. SAC and TD3 only need the
  gradient of the action: they zero the critic's gradients before its next step. Here the
  Q-networks' parameters are frozen (``requires_grad`` off) for the forward passes whose action
  requires a gradient, so the backward pass computes the action's gradient and nothing else of
  the critic. The actor's gradients are the same; the critic's ``.grad`` is left untouched.

And one thing it repeats: each Q-network's input layer reads the same observation and action. When
they are all ``csr`` layers, :meth:`SparseContinuousCritic.forward` applies them in one call
(:func:`~sparse_rl.sparse.layers.csr.forward_concat_shared`: each tile of the observation is read
once for all, and the critic's loss gets one autograd node for all their weight gradients), with
the same numbers, bit for bit, as one call per Q-network (:func:`q_value`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
from stable_baselines3.common.policies import ContinuousCritic
from torch import nn

from sparse_rl.sparse.layers import SparseLinear
from sparse_rl.sparse.layers.csr import CSRSparseLinear, forward_concat_shared


@contextmanager
def frozen(parameters: list[nn.Parameter]) -> Iterator[None]:
    """Turn off ``requires_grad`` of ``parameters`` (those that have it on) for the duration."""
    thawed = [parameter for parameter in parameters if parameter.requires_grad]
    for parameter in thawed:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in thawed:
            parameter.requires_grad_(True)


def q_value(q_net: nn.Sequential, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``q_net(concat(features, actions))``, with a sparse first layer taking the two parts apart."""
    first = q_net[0]
    hidden = first.forward_concat(features, actions) if isinstance(first, SparseLinear) else first(
        torch.cat([features, actions], dim=1))
    return after_first_layer(q_net, hidden)


def after_first_layer(q_net: nn.Sequential, hidden: torch.Tensor) -> torch.Tensor:
    """The rest of ``q_net`` applied to its first layer's output ``hidden``."""
    for module in list(q_net)[1:]:
        hidden = module(hidden)
    return hidden


def q_values(q_networks: Sequence[nn.Sequential], features: torch.Tensor,
             actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``q_value`` of each Q-network, their input layers in one call where they all are ``csr``
    layers (see the module docstring; the same numbers as one :func:`q_value` per network)."""
    firsts = [q_net[0] for q_net in q_networks]
    if len(firsts) < 2 or not all(isinstance(first, CSRSparseLinear) for first in firsts):
        return tuple(q_value(q_net, features, actions) for q_net in q_networks)
    hiddens = forward_concat_shared(firsts, features, actions)
    return tuple(after_first_layer(q_net, hidden) for q_net, hidden in zip(q_networks, hiddens, strict=True))


class SparseContinuousCritic(ContinuousCritic):
    """SB3's ``ContinuousCritic`` (same arguments, parameters and state dict) whose Q-networks skip
    the work the module docstring describes."""

    def _policy_gradient_pass(self, actions: torch.Tensor) -> bool:
        """Whether this forward pass serves the actor's loss: its action carries a gradient."""
        return actions.requires_grad and torch.is_grad_enabled()

    def _frozen_if(self, freeze: bool) -> AbstractContextManager[None]:
        return frozen([p for q_net in self.q_networks for p in q_net.parameters()]) if freeze else nullcontext()

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The Q-value of every Q-network, as SB3's ``ContinuousCritic.forward``."""
        # As SB3: the features extractor learns from the policy loss only when shared with the actor.
        with torch.set_grad_enabled(not self.share_features_extractor):
            features = self.extract_features(obs, self.features_extractor)
        with self._frozen_if(self._policy_gradient_pass(actions)):
            return q_values(self.q_networks, features, actions)

    def q1_forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The first Q-network's value only (TD3's actor loss), as SB3's ``q1_forward``."""
        with torch.no_grad():
            features = self.extract_features(obs, self.features_extractor)
        with self._frozen_if(self._policy_gradient_pass(actions)):
            return q_value(self.q_networks[0], features, actions)
