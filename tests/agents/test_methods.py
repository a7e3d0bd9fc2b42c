"""The papers' methods: one source of values for the Python API and the YAML configs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from stable_baselines3.common.noise import NormalActionNoise

from sparse_rl.agents import METHODS, Method, SparseSAC, SparseTD3, make_agent
from sparse_rl.experiment.config import config_from_dict, load_config
from sparse_rl.experiment.errors import ConfigError
from sparse_rl.experiment.shipped_configs import compose_run

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_anf_sac_has_the_papers_training_settings() -> None:
    model = make_agent("anf_sac", "Pendulum-v1", seed=0, buffer_size=1000)
    assert isinstance(model, SparseSAC)
    assert (model.learning_rate, model.batch_size, model.learning_starts, model.tau, model.gamma) == (
        1e-3, 100, 25_000, 0.005, 0.99)
    assert model.ent_coef == 0.2 and model.ent_coef_optimizer is None  # fixed temperature
    assert model.actor.optimizer.defaults["weight_decay"] == 2e-4
    assert model.critic.optimizer.defaults["lr"] == 1e-3
    assert model.policy.net_arch in ([256, 256], {"pi": [256, 256], "qf": [256, 256]})
    assert model.sparsity.algorithm == "set" and model.sparsity.density == 0.2
    assert model.sparsity.sparse_roles == ("input",) and model.sparsity.drop_fraction == 0.05


def test_anf_td3_and_the_controls() -> None:
    model = make_agent("anf_td3", "Pendulum-v1", buffer_size=1000)
    assert isinstance(model, SparseTD3) and isinstance(model.action_noise, NormalActionNoise)
    assert (model.policy_delay, model.target_policy_noise, model.target_noise_clip) == (2, 0.2, 0.5)
    assert model.batch_size == 100
    static = make_agent("anf_td3", "Pendulum-v1", sparsity="static", buffer_size=1000)
    assert static.sparsity.algorithm == "static" and static.batch_size == 100
    override = make_agent("anf_sac", "Pendulum-v1", learning_starts=10, buffer_size=1000,
                          policy_kwargs={"net_arch": [32, 32]})
    assert override.learning_starts == 10 and override.actor.optimizer.defaults["weight_decay"] == 2e-4


def test_ds_sac_takes_the_papers_epsilon_per_task() -> None:
    assert METHODS["ds_sac"].sparsity_for("Hopper-v5")["epsilon"] == {"input": 7, "hidden": 20}
    assert METHODS["ds_sac"].sparsity_for("Pendulum-v1") == {"preset": "all_layers", "drop_fraction": 0.1}
    with pytest.raises(ValueError, match="unknown method 'anf_sca'.*did you mean 'anf_sac'"):
        make_agent("anf_sca", "Pendulum-v1")


@pytest.mark.parametrize("agent", ["sac", "td3"])
def test_the_yaml_configs_read_the_same_values(agent: str) -> None:
    parts = [CONFIGS / "base.yaml", CONFIGS / "agents" / f"{agent}.yaml", CONFIGS / "envs" / "hopper.yaml"]
    config = load_config(parts)
    method = METHODS[f"anf_{agent}"]
    assert config.method == method.name and config.agent.hyperparams == method.hyperparams
    assert config.net_arch == list(method.net_arch) and config.sparsity == {"preset": "anf"}
    dense = load_config([*parts, CONFIGS / "sparsity" / "dense.yaml"])
    assert dense.sparsity == {"preset": "dense"} and dense.agent.hyperparams == method.hyperparams
    ds = compose_run(method=f"ds_{agent}", env="Hopper-v5")
    assert ds.sparsity["epsilon"] == ({"input": 7, "hidden": 20} if agent == "sac" else {"input": 7, "hidden": 64})


def test_a_config_overrides_the_method_and_a_bad_name_is_refused() -> None:
    config = config_from_dict({"method": "anf_sac", "env": {"id": "Pendulum-v1"}, "sparsity": {"update_interval": 250},
                               "agent": {"hyperparams": {"learning_starts": 5000}}})
    assert config.agent.hyperparams["learning_starts"] == 5000 and config.agent.hyperparams["batch_size"] == 100
    assert config.sparsity == {"preset": "anf", "update_interval": 250}
    assert config_from_dict(config.to_dict()) == config  # the resolved config loads again unchanged
    with pytest.raises(ConfigError, match="method: unknown method 'ds_sca'"):
        config_from_dict({"method": "ds_sca", "env": {"id": "Pendulum-v1"}})


def _linear_weights_and_biases(model) -> list[tuple[torch.Tensor, torch.Tensor | None, int, int]]:
    from torch import nn

    from sparse_rl.sparse.layers import SparseLinear

    layers = []
    for module in [*model.actor.modules(), *model.critic.modules()]:
        if isinstance(module, (nn.Linear, SparseLinear)):
            layers.append((module.weight.detach(), module.bias, module.in_features, module.out_features))
    return layers


@pytest.mark.parametrize("sparsity", [None, "dense"])
def test_anf_sac_initialises_every_layer_xavier_uniform_as_their_code(sparsity: str | None) -> None:
    model = make_agent("anf_sac", "Pendulum-v1", sparsity=sparsity, seed=0, buffer_size=1000)
    assert model.policy.weight_init == "xavier_uniform" and model.critic_loss_scale == 1.0
    layers = _linear_weights_and_biases(model)
    assert len(layers) == 4 + 2 * 3  # actor: 2 hidden + mu + log_std; two Q-networks of 3
    for weight, bias, n_in, n_out in layers:
        bound = math.sqrt(6.0 / (n_in + n_out))
        assert float(weight.abs().max()) <= bound and float(weight.abs().max()) > 0.8 * bound
        assert bias is not None and torch.count_nonzero(bias) == 0
    # ANF-TD3's code keeps torch's init; SB3's SAC and a bare SparseSAC keep SB3's.
    td3 = make_agent("anf_td3", "Pendulum-v1", seed=0, buffer_size=1000)
    assert td3.policy.weight_init == "torch" and torch.count_nonzero(td3.actor.mu[-2].bias) > 0
    bare = SparseSAC("MlpPolicy", "Pendulum-v1", sparsity="dense", seed=0, buffer_size=1000)
    assert bare.policy.weight_init == "torch" and bare.critic_loss_scale == 0.5


def test_weight_init_survives_save_and_load(tmp_path: Path) -> None:
    model = make_agent("anf_sac", "Pendulum-v1", seed=0, buffer_size=1000, policy_kwargs={"net_arch": [16, 16]})
    model.save(tmp_path / "m.zip")
    loaded = SparseSAC.load(tmp_path / "m.zip")
    assert loaded.policy.weight_init == "xavier_uniform" and loaded.critic_loss_scale == 1.0
    assert len(loaded.critic.optimizer._optimizer_step_pre_hooks) == 1
    with pytest.raises(ValueError, match="unknown weight_init 'glorot'"):
        SparseSAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"weight_init": "glorot"})
    with pytest.raises(ValueError, match="critic_loss_scale must be a finite number > 0"):
        SparseSAC("MlpPolicy", "Pendulum-v1", critic_loss_scale=0)


def test_critic_loss_scale_one_gives_the_gradients_of_mse_plus_mse(tiny) -> None:
    # With plain SGD (no momentum, no decay) one critic step moves each weight by lr * grad, so the
    # summed loss (scale 1.0, Grooten et al.'s) must move the critic exactly twice as far as SB3's
    # 0.5 * (mse + mse) from the same start on the same batch.
    moves = {}
    for scale in (0.5, 1.0):
        kwargs = tiny(learning_starts=50, batch_size=16, critic_loss_scale=scale, learning_rate=1e-2,
                      policy_kwargs=dict(net_arch=[8, 8], optimizer_class=torch.optim.SGD))
        model = SparseSAC("MlpPolicy", "Pendulum-v1", sparsity="dense", **kwargs)
        model.learn(50)  # fills the buffer, no gradient step yet
        before = [p.detach().clone() for p in model.critic.parameters()]
        model.train(gradient_steps=1, batch_size=16)
        moves[scale] = [p.detach() - b for p, b in zip(model.critic.parameters(), before)]
    for half, full in zip(moves[0.5], moves[1.0]):
        assert torch.allclose(full, 2 * half, rtol=1e-5, atol=1e-7)
    assert any(float(m.abs().max()) > 0 for m in moves[0.5])


def test_sb3_implementation_refuses_what_sb3_cannot_do() -> None:
    from sparse_rl.experiment.factory import agent_kwargs

    config = load_config([CONFIGS / "base.yaml", CONFIGS / "agents" / "sac.yaml", CONFIGS / "sparsity" / "dense.yaml",
                          CONFIGS / "envs" / "hopper.yaml"], overrides=["agent.implementation=sb3"])
    with pytest.raises(ConfigError, match="critic_loss_scale is 1.0, which SB3's own"):
        agent_kwargs(config, 3)
    config = load_config([CONFIGS / "base.yaml", CONFIGS / "agents" / "sac.yaml", CONFIGS / "sparsity" / "dense.yaml",
                          CONFIGS / "envs" / "hopper.yaml"],
                         overrides=["agent.implementation=sb3", "agent.hyperparams.critic_loss_scale=0.5",
                                    "agent.hyperparams.policy_kwargs.weight_init=torch"])
    kwargs = agent_kwargs(config, 3)
    assert "critic_loss_scale" not in kwargs and "weight_init" not in kwargs["policy_kwargs"]


def test_rigl_sac_and_ds_td3_follow_their_code() -> None:
    rigl = METHODS["rigl_sac"]
    assert rigl.sparsity["drop_fraction"] == 0.1 and "output" in rigl.sparsity["sparse_roles"]
    assert rigl.hyperparams["learning_starts"] == 1000 and rigl.hyperparams["policy_kwargs"]["weight_init"] == (
        "xavier_uniform")
    model = make_agent("rigl_sac", "Pendulum-v1", seed=0, buffer_size=1000, policy_kwargs={"net_arch": [32, 32]})
    from sparse_rl.sparse.layers import SparseLinear

    assert isinstance(model.actor.mu, SparseLinear)  # the output heads are sparse too
    assert any("7 / 20" in departure for departure in METHODS["ds_td3"].departures)


def test_sb3s_own_td3_replays_fresh_noise_with_anf_td3s_settings() -> None:
    from sparse_rl.experiment.factory import agent_kwargs, build_env, sb3_replay_buffer

    config = load_config([CONFIGS / "base.yaml", CONFIGS / "agents" / "td3.yaml", CONFIGS / "sparsity" / "dense.yaml"],
                         overrides=["agent.implementation=sb3", "env={id: Pendulum-v1, noise_fraction: 0.9}"])
    assert "replay_noise" not in agent_kwargs(config, 1)
    buffer = sb3_replay_buffer(config, build_env(config, 0, training=True))
    assert buffer["replay_buffer_kwargs"] == {"n_real": 3, "fresh_noise": True}


def test_a_new_method_is_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    method = Method("tiny_sac", "Tiny-SAC", "sac", {"preset": "anf"}, {"learning_rate": 5e-4, "batch_size": 64},
                    net_arch=(32, 32))
    monkeypatch.setitem(METHODS, method.name, method)
    config = compose_run(method="tiny_sac", env="Pendulum-v1")
    assert config.method == "tiny_sac" and config.sparsity == {"preset": "anf"} and config.net_arch == [32, 32]
    assert config.agent.algorithm == "sac" and config.agent.hyperparams["learning_rate"] == 5e-4
    agent = make_agent("tiny_sac", "Pendulum-v1")
    assert isinstance(agent, SparseSAC) and agent.batch_size == 64
