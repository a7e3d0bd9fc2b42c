"""The papers' methods: one source of values for the Python API and the YAML configs."""

from __future__ import annotations

from pathlib import Path

import pytest
from stable_baselines3.common.noise import NormalActionNoise

from sparse_rl.agents import METHODS, SparseSAC, SparseTD3, make_agent
from sparse_rl.experiment.config import config_from_dict, load_config
from sparse_rl.experiment.errors import ConfigError

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
    dense = load_config(CONFIGS / "experiments" / "hopper" / f"{agent}_dense.yaml")
    assert dense.sparsity == {"preset": "dense"} and dense.agent.hyperparams == method.hyperparams
    ds = load_config(CONFIGS / "experiments" / "hopper" / f"{agent}_all_layers.yaml")
    assert ds.sparsity["epsilon"] == ({"input": 7, "hidden": 20} if agent == "sac" else {"input": 7, "hidden": 64})


def test_a_config_overrides_the_method_and_a_bad_name_is_refused() -> None:
    config = config_from_dict({"method": "anf_sac", "env": {"id": "Pendulum-v1"}, "sparsity": {"update_interval": 250},
                               "agent": {"hyperparams": {"learning_starts": 5000}}})
    assert config.agent.hyperparams["learning_starts"] == 5000 and config.agent.hyperparams["batch_size"] == 100
    assert config.sparsity == {"preset": "anf", "update_interval": 250}
    assert config_from_dict(config.to_dict()) == config  # the resolved config loads again unchanged
    with pytest.raises(ConfigError, match="method: unknown method 'ds_sca'"):
        config_from_dict({"method": "ds_sca", "env": {"id": "Pendulum-v1"}})
