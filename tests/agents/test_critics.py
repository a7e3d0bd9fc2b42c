"""SparseContinuousCritic: SB3's critic values and actor gradients, without the critic's wasted work."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from stable_baselines3.common.policies import ContinuousCritic

from sparse_rl.agents import SparseSAC, SparseTD3
from sparse_rl.agents.critics import SparseContinuousCritic, frozen, q_value
from sparse_rl.envs import make_env
from sparse_rl.sparse import SparseLinear


def _agent(agent_class: type, tiny: Callable) -> SparseSAC | SparseTD3:
    # 300 observation features: the critics' input layers take the csr backend with an action tail.
    env = make_env({"id": "Pendulum-v1", "n_noise": 297})
    return agent_class("MlpPolicy", env, sparsity={"preset": "anf", "backend": "csr"}, **tiny())


@pytest.mark.parametrize("agent_class", [SparseSAC, SparseTD3])
def test_values_and_actor_gradients_equal_sb3_and_the_critic_gets_no_gradient(agent_class: type,
                                                                            tiny: Callable) -> None:
    model = _agent(agent_class, tiny)
    critic = model.critic
    assert isinstance(critic, SparseContinuousCritic)
    assert all(isinstance(q_net[0], SparseLinear) and q_net[0].backend == "csr" for q_net in critic.q_networks)
    generator = torch.Generator().manual_seed(0)
    obs = torch.randn(16, 300, generator=generator)
    replay_actions = torch.rand(16, 1, generator=generator) * 2 - 1

    # Q-values of replay actions: the same as SB3's concatenating forward, and the critic learns from them.
    ours = critic(obs, replay_actions)
    theirs = ContinuousCritic.forward(critic, obs, replay_actions)
    for q_ours, q_theirs in zip(ours, theirs, strict=True):
        torch.testing.assert_close(q_ours, q_theirs, atol=1e-5, rtol=1e-4)
    torch.stack(ours).sum().backward()
    assert all(p.grad is not None for p in critic.parameters())
    critic.zero_grad(set_to_none=True)

    def actor_gradients(forward: Callable) -> list[torch.Tensor]:
        model.actor.zero_grad(set_to_none=True)
        torch.manual_seed(1)  # SAC's actor samples its actions
        actions = model.actor(obs)
        (-forward(critic, obs, actions)[0].mean()).backward()
        return [p.grad.clone() for p in model.actor.parameters() if p.grad is not None]

    expected = actor_gradients(ContinuousCritic.forward)
    critic.zero_grad(set_to_none=True)
    got = actor_gradients(SparseContinuousCritic.forward)
    assert all(p.grad is None for p in critic.parameters()), "the actor's loss must leave the critic alone"
    assert all(p.requires_grad for p in critic.parameters()), "the critic's parameters must be thawed again"
    assert len(got) == len(expected) > 0
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-4)
    # TD3's actor loss goes through q1_forward.
    model.actor.zero_grad(set_to_none=True)
    (-critic.q1_forward(obs, model.actor(obs)).mean()).backward()
    assert all(p.grad is None for p in critic.parameters())


def test_frozen_restores_only_what_it_froze() -> None:
    trainable, fixed = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2), requires_grad=False)
    with pytest.raises(RuntimeError, match="inside"), frozen([trainable, fixed]):
        assert not trainable.requires_grad and not fixed.requires_grad
        raise RuntimeError("inside")
    assert trainable.requires_grad and not fixed.requires_grad


@pytest.mark.parametrize("agent_class", [SparseSAC, SparseTD3])
def test_a_csr_agent_with_an_action_tail_trains_and_reloads(agent_class: type, tiny: Callable, tmp_path) -> None:
    model = _agent(agent_class, tiny)
    model.learn(150)
    model.save(tmp_path / "model")
    loaded = agent_class.load(tmp_path / "model", env=model.get_env(), device="cpu")
    obs = torch.randn(4, 300)
    actions = torch.zeros(4, 1)
    with torch.no_grad():
        for q_saved, q_loaded in zip(model.critic(obs, actions), loaded.critic(obs, actions), strict=True):
            torch.testing.assert_close(q_saved, q_loaded)


@pytest.mark.parametrize("agent_class", [SparseSAC, SparseTD3])
def test_the_shared_input_layers_give_the_bits_of_one_call_per_q_network(agent_class: type, tiny: Callable) -> None:
    """The critic applies its Q-networks' csr input layers in one call: the Q-values, the critic's
    gradients and the actor's gradients are those of one call per Q-network, bit for bit."""
    model = _agent(agent_class, tiny)
    critic = model.critic
    generator = torch.Generator().manual_seed(0)
    obs = torch.randn(64, 300, generator=generator)
    replay_actions = torch.rand(64, 1, generator=generator) * 2 - 1

    def separate(critic: SparseContinuousCritic, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with critic._frozen_if(critic._policy_gradient_pass(actions)):
            return tuple(q_value(q_net, obs, actions) for q_net in critic.q_networks)

    def critic_pass(forward: Callable) -> list[torch.Tensor]:
        critic.zero_grad(set_to_none=True)
        values = forward(critic, obs, replay_actions)
        sum(((q - 0.5) ** 2).mean() for q in values).backward()
        return [*values, *(p.grad for p in critic.parameters())]

    def actor_pass(forward: Callable) -> list[torch.Tensor]:
        model.actor.zero_grad(set_to_none=True)
        torch.manual_seed(1)
        actions = model.actor(obs)
        q = torch.cat(forward(critic, obs, actions), dim=1)
        (actions.square().sum() - torch.min(q, dim=1).values.mean()).backward()
        return [p.grad for p in model.actor.parameters()]

    for run in (critic_pass, actor_pass):
        got, expected = run(SparseContinuousCritic.forward), run(separate)
        assert len(got) == len(expected) > 0
        for g, e in zip(got, expected, strict=True):
            assert torch.equal(g, e)
