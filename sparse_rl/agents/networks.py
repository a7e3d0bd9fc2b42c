"""Find the linear layers of SB3 actors and critics, give them roles, and make them sparse.

SB3's ``create_mlp`` hard-codes ``nn.Linear``; rather than copy SB3's network code, the sparse
policies let SB3 build its networks and then replace the chosen ``nn.Linear`` layers by
:class:`~sparse_rl.sparse.layers.SparseLinear` ones, before any optimizer sees them.

A *network* is one function approximator: the actor, or one Q-network of a critic (``qf0``,
``qf1``). Its linear layers, in order, have roles: the first is the ``input`` layer (the one that
sees every observation feature, the one Automatic Noise Filtering makes sparse), the last of the
trunk and any head (SAC's ``mu`` and ``log_std``) are ``output`` layers, the rest ``hidden``.
"""

from __future__ import annotations

from torch import nn

from sparse_rl.agents.sparsity import SparsityConfig
from sparse_rl.sparse.distributions import layer_densities
from sparse_rl.sparse.layers import SparseLinear
from sparse_rl.sparse.layers.csr import feature_major_activations_

LINEAR_TYPES = (nn.Linear, SparseLinear)
#: how the policies initialise their layers: ``torch`` (``nn.Linear``'s default, SB3's) or
#: ``xavier_uniform`` (every layer Xavier-uniform with zero biases, as Grooten et al.'s ANF-SAC and
#: SAC code do)
WEIGHT_INITS = ("torch", "xavier_uniform")


def linear_layers(network: nn.Module) -> dict[str, nn.Module]:
    """The linear layers (dense or sparse) of ``network`` in definition order, by name, skipping
    the features extractor."""
    return {
        name: module
        for name, module in network.named_modules()
        if isinstance(module, LINEAR_TYPES) and not name.startswith("features_extractor")
    }


def layer_roles(network: nn.Module) -> dict[str, str]:
    """``input``, ``hidden`` or ``output`` for each linear layer of ``network``.

    The first layer is ``input``; the last one, and SAC's ``mu`` / ``log_std`` heads (attributes of
    an actor with a ``latent_pi`` trunk), are ``output``; the others are ``hidden``.
    """
    names = list(linear_layers(network))
    roles: dict[str, str] = {}
    for i, name in enumerate(names):
        if i == 0:
            roles[name] = "input"
        elif i == len(names) - 1 or _is_head(network, name):
            roles[name] = "output"
        else:
            roles[name] = "hidden"
    return roles


def _is_head(network: nn.Module, name: str) -> bool:
    """SAC's ``mu`` / ``log_std`` heads are attributes of the actor, beside its ``latent_pi`` trunk."""
    return name.split(".")[0] in ("mu", "log_std") and hasattr(network, "latent_pi")


def q_networks(critic: nn.Module) -> dict[str, nn.Module]:
    """The Q-networks of an SB3 ``ContinuousCritic`` by attribute name (``qf0``, ``qf1``…)."""
    return {f"qf{i}": net for i, net in enumerate(critic.q_networks)}


def _replace(network: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = network.get_submodule(parent_name) if parent_name else network
    setattr(parent, child, new)


def xavier_init_(network: nn.Module) -> None:
    """Initialise every ``nn.Linear`` of ``network`` as Grooten et al.'s SAC code does (its
    ``weights_init_``): Xavier-uniform weights (Glorot & Bengio, 2010; gain 1) and zero biases.
    Draws from torch's global RNG in the order of ``network.modules()``."""
    for module in network.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight, gain=1.0)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def planned_densities(network: nn.Module, config: SparsityConfig) -> dict[str, float]:
    """The density :func:`sparsify` gives each linear layer of ``network`` under ``config``, by
    name, without changing the network (1.0 for every layer of a dense config). A network on the
    ``meta`` device will do: only the layers' shapes and order count.

    :param network: the actor or one Q-network (or any MLP: its first layer is the input layer)
    :param config: the sparsity
    """
    layers = linear_layers(network)
    if not config.is_sparse:
        return dict.fromkeys(layers, 1.0)
    roles = layer_roles(network)
    shapes = {name: (layer.out_features, layer.in_features) for name, layer in layers.items()}
    sparse_names = [name for name in layers if roles[name] in config.sparse_roles]
    epsilon = config.epsilon
    if isinstance(epsilon, dict):
        epsilon = {name: epsilon[roles[name]] for name in sparse_names if roles[name] in epsilon}
    return layer_densities(
        shapes,
        density=config.density,
        distribution=config.distribution,
        epsilon=epsilon,
        overrides={name: config.role_densities[roles[name]] for name in sparse_names
                   if roles[name] in config.role_densities},
        dense_layers=[name for name in layers if name not in sparse_names],
        min_fan_in=config.min_fan_in,
    )


def sparsify(network: nn.Module, config: SparsityConfig) -> dict[str, float]:
    """Replace the linear layers of ``network`` whose role is sparse in ``config`` by fresh
    ``SparseLinear`` layers at the densities the config's distribution gives
    (:func:`planned_densities`). Dense layers stay ``nn.Linear``. Returns the density of every
    linear layer by name.

    Draws masks and weights from torch's global RNG, so a seeded run is reproducible. A ``nn.ReLU``
    right after a ``csr`` layer becomes a :class:`~sparse_rl.sparse.layers.csr.FeatureMajorReLU` (the
    same numbers; its backward pass does not walk the layer's feature-major output across the grain).
    """
    densities = planned_densities(network, config)
    for name, layer in linear_layers(network).items():
        if densities[name] < 1.0 and isinstance(layer, nn.Linear):
            _replace(network, name, SparseLinear.from_linear(layer, densities[name], backend=config.layer_backend,
                                                                init=config.init))
    feature_major_activations_(network)
    return densities


def policy_networks(policy: nn.Module) -> dict[str, nn.Module]:
    """The online networks of an SB3 actor-critic policy: ``actor`` and each Q-network."""
    networks: dict[str, nn.Module] = {"actor": policy.actor}
    networks.update(q_networks(policy.critic))
    return networks


def input_layers(policy: nn.Module) -> dict[str, nn.Module]:
    """The input layer (first linear layer, dense or sparse) of each online network of ``policy``."""
    return {name: next(iter(linear_layers(net).values())) for name, net in policy_networks(policy).items()}
