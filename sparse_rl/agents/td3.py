"""SparseTD3: Twin Delayed DDPG (Fujimoto et al., 2018) with dynamically sparse networks.

``sparsity`` sets only the networks' sparsity: with ``sparsity="anf"`` the training settings are
still SB3's defaults (lr 3e-4, batch 256…), not the paper's. For the papers' whole methods
(ANF-TD3, DS-TD3) use :func:`~sparse_rl.agents.methods.make_agent`
(``make_agent("anf_td3", env)``), or pass the values of
:data:`~sparse_rl.agents.methods.METHODS` yourself.
"""

from __future__ import annotations

from typing import Any, ClassVar

from stable_baselines3 import TD3
from stable_baselines3.common.policies import BasePolicy

from sparse_rl.agents.policies import SparseTD3Policy
from sparse_rl.agents.training import SparseTrainingMixin


class SparseTD3(SparseTrainingMixin, TD3):
    """SB3's ``TD3`` whose actor, both Q-networks and their targets are built from
    ``SparseLinear`` layers, with topology updates during training. A drop-in replacement: same
    constructor (plus ``sparsity``), ``learn``, ``save`` / ``load``, callbacks and VecEnvs.

    :param policy: ``"MlpPolicy"`` or a :class:`SparseTD3Policy` subclass
    :param env: the environment (or its id)
    :param sparsity: a preset name (``anf``, ``all_layers``, ``rigl``, ``static``, ``dense``), a dict
        or a :class:`~sparse_rl.agents.sparsity.SparsityConfig`
    :param store_noise: store an extremely noisy env's noise features in the replay buffer (default:
        store only the real features and regenerate the noise exactly when sampling)
    :param replay_noise: ``stored`` (replay the noise the agent saw) or ``fresh`` (new noise at every
        sample, as Grooten et al.'s code); see :class:`~sparse_rl.agents.training.SparseTrainingMixin`
    :param kwargs: every other argument of SB3's ``TD3``
    """

    agent_kind = "td3"
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": SparseTD3Policy}
    policy: SparseTD3Policy

    def __init__(self, policy: Any, env: Any, *args: Any, sparsity: Any = "anf", store_noise: bool = False,
                 replay_noise: str = "stored",
                 **kwargs: Any) -> None:
        super().__init__(policy, env, *args, sparsity=sparsity, store_noise=store_noise,
                         replay_noise=replay_noise, **kwargs)
