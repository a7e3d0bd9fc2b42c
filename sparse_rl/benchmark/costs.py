"""Size and compute of an agent's networks, counting only the weights that exist.

A sparse layer (:class:`~sparse_rl.sparse.layers.SparseLinear`) counts its active weights (``nnz``),
a dense ``nn.Linear`` all of its weights. FLOPs are those of one forward pass for one input: two
per weight (a multiply and an add) plus one per bias; activations are not counted. For the actor
that is its cost per env step; for the critic, per state-action pair through all its Q-networks.
A gradient step on a batch of ``B`` costs roughly ``3 · B`` times that per network evaluated
(forward, then backward for inputs and weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from sparse_rl.agents.networks import linear_layers, policy_networks
from sparse_rl.sparse.layers import SparseLinear


@dataclass(frozen=True)
class NetworkCost:
    """The size and forward cost of one network (or of several, summed).

    :param weights: weights that exist (active connections of sparse layers, all of dense ones)
    :param dense_weights: weights of the same architecture fully dense
    :param biases: bias entries
    """

    weights: int
    dense_weights: int
    biases: int

    @property
    def params(self) -> int:
        """Parameters that exist: active weights plus biases."""
        return self.weights + self.biases

    @property
    def dense_params(self) -> int:
        """Parameters of the same architecture fully dense."""
        return self.dense_weights + self.biases

    @property
    def flops(self) -> int:
        """FLOPs of one forward pass for one input: 2 per active weight, 1 per bias."""
        return 2 * self.weights + self.biases

    def __add__(self, other: NetworkCost) -> NetworkCost:
        return NetworkCost(self.weights + other.weights, self.dense_weights + other.dense_weights,
                           self.biases + other.biases)


def network_cost(network: nn.Module) -> NetworkCost:
    """Count the weights and biases of the linear layers (dense or sparse) of ``network``.

    :param network: an actor or a Q-network
    """
    weights = dense = biases = 0
    for layer in linear_layers(network).values():
        dense += layer.in_features * layer.out_features
        weights += layer.nnz if isinstance(layer, SparseLinear) else layer.in_features * layer.out_features
        if getattr(layer, "bias", None) is not None:
            biases += layer.out_features
    return NetworkCost(weights, dense, biases)


def agent_costs(model: Any) -> dict[str, NetworkCost]:
    """``actor`` and ``critic`` (all Q-networks together) costs of an SB3 SAC/TD3 agent (sparse or
    not); target networks are not counted (they mirror the online ones).

    :param model: a SparseSAC, SparseTD3, or SB3 SAC / TD3
    """
    networks = policy_networks(model.policy)
    critic = NetworkCost(0, 0, 0)
    for name, network in networks.items():
        if name != "actor":
            critic = critic + network_cost(network)
    return {"actor": network_cost(networks["actor"]), "critic": critic}
