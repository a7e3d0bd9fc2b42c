"""SparseSAC: Soft Actor-Critic (Haarnoja et al., 2018) with dynamically sparse networks.

``sparsity`` sets only the networks' sparsity: with ``sparsity="anf"`` the training settings are
still SB3's defaults (lr 3e-4, batch 256…), not the paper's. For the papers' whole methods
(ANF-SAC, DS-SAC, RigL-SAC) use :func:`~sparse_rl.agents.methods.make_agent`
(``make_agent("anf_sac", env)``), or pass the values of
:data:`~sparse_rl.agents.methods.METHODS` yourself.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from stable_baselines3 import SAC
from stable_baselines3.common.policies import BasePolicy

from sparse_rl.agents.policies import SparseSACPolicy
from sparse_rl.agents.training import SparseTrainingMixin


class SparseSAC(SparseTrainingMixin, SAC):
    """SB3's ``SAC`` whose actor, both Q-networks and their targets are built from
    ``SparseLinear`` layers, with topology updates during training. A drop-in replacement: same
    constructor (plus ``sparsity``), ``learn``, ``save`` / ``load``, callbacks and VecEnvs.

    :param policy: ``"MlpPolicy"`` or a :class:`SparseSACPolicy` subclass
    :param env: the environment (or its id)
    :param sparsity: a preset name (``anf``, ``all_layers``, ``rigl``, ``static``, ``dense``), a dict
        or a :class:`~sparse_rl.agents.sparsity.SparsityConfig`
    :param store_noise: store an extremely noisy env's noise features in the replay buffer (default:
        store only the real features and regenerate the noise exactly when sampling)
    :param replay_noise: ``stored`` (replay the noise the agent saw) or ``fresh`` (new noise at every
        sample, as Grooten et al.'s code); see :class:`~sparse_rl.agents.training.SparseTrainingMixin`
    :param critic_loss_scale: the critic's loss is ``critic_loss_scale · (mse(Q₁) + mse(Q₂))``:
        0.5 is SB3's; 1.0 is Grooten et al.'s ANF-SAC and SAC code (with L2 weight decay in Adam the
        factor matters: 1.0 halves the decay's weight relative to the TD error). Applied by scaling
        the critic's gradients before each of its optimizer steps, by ``critic_loss_scale / 0.5``
        (a power of two is exact: the gradients are those of the scaled loss, bit for bit). The
        logged ``train/critic_loss`` stays SB3's ½-scaled value.
    :param kwargs: every other argument of SB3's ``SAC``
    """

    agent_kind = "sac"
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": SparseSACPolicy}
    policy: SparseSACPolicy
    #: SB3's factor in front of the sum of the two critics' mean squared errors
    SB3_CRITIC_LOSS_SCALE: ClassVar[float] = 0.5

    def __init__(self, policy: Any, env: Any, *args: Any, sparsity: Any = "anf", store_noise: bool = False,
                 replay_noise: str = "stored",
                 critic_loss_scale: float = 0.5, **kwargs: Any) -> None:
        self.critic_loss_scale = _check_loss_scale(critic_loss_scale)
        super().__init__(policy, env, *args, sparsity=sparsity, store_noise=store_noise,
                         replay_noise=replay_noise, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        scale = getattr(self, "critic_loss_scale", self.SB3_CRITIC_LOSS_SCALE)
        if scale != self.SB3_CRITIC_LOSS_SCALE:
            factor = scale / self.SB3_CRITIC_LOSS_SCALE
            self.critic.optimizer.register_step_pre_hook(_GradientScale(factor))


class _GradientScale:
    """An optimizer step pre-hook that multiplies every gradient by ``factor`` (turns SB3's
    ``0.5 · (mse + mse)`` critic loss into ``factor · 0.5 · (mse + mse)`` before Adam adds its
    weight decay)."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    @torch.no_grad()
    def __call__(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        grads = [parameter.grad for group in optimizer.param_groups for parameter in group["params"]
                 if parameter.grad is not None]
        if grads:  # one call for all (each tensor multiplied as by ``mul_``, the same bits)
            torch._foreach_mul_(grads, self.factor)


def _check_loss_scale(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"critic_loss_scale must be a finite number > 0 (0.5: SB3's critic loss, 1.0: Grooten et "
                         f"al.'s), got {value!r}")
    return float(value)
