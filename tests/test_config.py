"""Config loading: composition, overrides, validation messages, and every committed config file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparse_rl.agents.methods import METHODS
from sparse_rl.experiment.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    compose,
    config_from_dict,
    load_config,
    parse_yaml,
)
from sparse_rl.experiment.errors import UserError
from sparse_rl.experiment.shipped_configs import compose_run

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"


def _write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# the committed configs


def _shipped_run_files() -> list[Path]:
    return sorted([*(CONFIGS / "experiments").glob("*/*.yaml"), *(CONFIGS / "quick").glob("*.yaml")])


ENVS = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5")


def test_every_shipped_run_config_validates() -> None:
    files = _shipped_run_files()
    assert len([p for p in files if "transfer" in p.parts]) == 4
    assert len([p for p in files if "quick" in p.parts]) >= 4
    for path in files:
        config = load_config(path)
        assert config.env.id and config.total_timesteps > 0, path


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_composes_on_every_task_without_a_config_file(method: str) -> None:
    for env in ENVS:
        for sparsity in (None, "dense", "static", "fit_input"):
            config = compose_run(method=method, env=env, noise=0.98, sparsity=sparsity)
            assert (config.env.id, config.env.noise_fraction, config.method) == (env, 0.98, method)
            assert config.agent.algorithm == METHODS[method].agent
            assert config.sparsity_name == (sparsity or METHODS[method].sparsity["preset"])


@pytest.mark.parametrize("noise", [0.0, 0.9, 0.95, 0.98, 0.99])
def test_noise_levels_are_one_flag_away(noise: float) -> None:
    assert compose_run(method="anf_td3", env="HalfCheetah-v5", noise=noise).env.noise_fraction == noise


def test_paper_hyperparameters_reach_the_config() -> None:
    sac = compose_run(method="anf_sac", env="Hopper-v5")
    assert sac.agent.hyperparams["learning_rate"] == 1e-3 and sac.agent.hyperparams["batch_size"] == 100
    assert sac.agent.hyperparams["ent_coef"] == 0.2 and sac.agent.hyperparams["learning_starts"] == 25_000
    assert sac.agent.hyperparams["policy_kwargs"]["optimizer_kwargs"]["weight_decay"] == 2e-4
    assert sac.net_arch == [256, 256] and sac.eval.freq == 5000 and sac.eval.n_episodes == 5
    assert sac.total_timesteps == 1_025_000  # the paper's 25k random steps, then 1M training steps
    td3 = compose_run(method="anf_td3", env="Hopper-v5", sparsity="dense")
    assert td3.agent.action_noise is not None and td3.agent.action_noise.sigma == 0.1
    assert td3.agent.hyperparams["target_policy_noise"] == 0.2 and td3.agent.hyperparams["policy_delay"] == 2
    ds_sac = compose_run(method="ds_sac", env="Humanoid-v5")
    assert ds_sac.sparsity == {"preset": "all_layers", "drop_fraction": 0.1, "density": None,
                               "epsilon": {"input": 61, "hidden": 64}}


def test_compose_run_takes_files_names_and_overrides_and_names_what_is_missing() -> None:
    shipped = compose_run(["quick/pendulum_sac_anf"], noise=0.5, overrides=["seed=3"])
    assert (shipped.env.id, shipped.env.noise_fraction, shipped.seed) == ("Pendulum-v1", 0.5, 3)
    with pytest.raises(UserError, match="give a config file or name .* or a method and an env"):
        compose_run()
    with pytest.raises(UserError, match="no env: give --env ID"):
        compose_run(method="anf_sac")
    with pytest.raises(UserError, match="no shipped config has that name; did you mean quick/pendulum_sac_anf"):
        compose_run(["quick/pendulum_sac_anff"])
    with pytest.raises(UserError, match="unknown method 'anf_sca'"):
        compose_run(method="anf_sca", env="Hopper-v5")


# --------------------------------------------------------------------------------------------------
# composition and overrides


def test_defaults_compose_relative_to_the_including_file(tmp_path: Path) -> None:
    _write(tmp_path / "parts" / "a.yaml", {"seed": 1, "eval": {"freq": 10, "n_episodes": 2}})
    _write(tmp_path / "parts" / "b.yaml", {"defaults": ["a.yaml"], "eval": {"freq": 20}, "net_arch": [8]})
    top = _write(tmp_path / "exp" / "top.yaml",
                 {"defaults": ["../parts/b.yaml"], "seed": 3, "env": {"id": "Pendulum-v1"}})
    data = compose(top)
    assert data == {"seed": 3, "eval": {"freq": 20, "n_episodes": 2}, "net_arch": [8], "env": {"id": "Pendulum-v1"}}
    config = load_config(top, ["eval.n_episodes=7", "net_arch=[4, 4]", "agent.hyperparams.learning_rate=3e-4"])
    assert (config.seed, config.eval.freq, config.eval.n_episodes, config.net_arch) == (3, 20, 7, [4, 4])
    assert config.agent.hyperparams["learning_rate"] == 3e-4


def test_several_files_merge_in_order(tmp_path: Path) -> None:
    first = _write(tmp_path / "1.yaml", {"env": {"id": "Pendulum-v1"}, "seed": 1})
    second = _write(tmp_path / "2.yaml", {"seed": 2})
    assert load_config([first, second]).seed == 2


def test_exponent_floats_are_floats_and_configs_round_trip(tmp_path: Path) -> None:
    assert parse_yaml("a: 1e-3\nb: 2E5\nc: 7\nd: '1e-3'") == {"a": 0.001, "b": 200000.0, "c": 7, "d": "1e-3"}
    config = compose_run(method="anf_td3", env="Ant-v5", sparsity="rigl", overrides=["total_timesteps=1e5"])
    assert config.total_timesteps == 100_000 and isinstance(config.total_timesteps, int)
    again = load_config(_write(tmp_path / "resolved.yaml", config.to_yaml()))
    assert again == config


def test_override_through_a_scalar_explains_itself() -> None:
    with pytest.raises(ConfigError, match=r"sparsity is 'anf', not a mapping.*sparsity.preset"):
        apply_overrides({"sparsity": "anf"}, ["sparsity.density=0.1"])


# --------------------------------------------------------------------------------------------------
# error messages


def _minimal(**extra: Any) -> dict[str, Any]:
    return {"env": {"id": "Pendulum-v1"}, **extra}


@pytest.mark.parametrize(("data", "fragments"), [
    (_minimal(evl={}), ["unknown config key 'evl'", "did you mean 'eval'"]),
    (_minimal(eval={"freqq": 3}), ["'eval.freqq'", "did you mean 'eval.freq'"]),
    ({"env": {"id": "Pendulum-v1", "noise_fration": 0.9}}, ["'env.noise_fration'", "'env.noise_fraction'"]),
    (_minimal(agent={"hyperparams": {"learning_rat": 1.0}}), ["'agent.hyperparams.learning_rat'",
                                                              "'agent.hyperparams.learning_rate'"]),
    (_minimal(agent={"hyperparams": {"policy_kwargs": {"net_arc": [3]}}}), ["policy_kwargs.net_arc",
                                                                          "policy_kwargs.net_arch"]),
    (_minimal(agent={"hyperparams": {"policy_kwargs": {"optimizer_kwargs": {"weight_decy": 1.0}}}}),
     ["optimizer_kwargs.weight_decay"]),
    (_minimal(sparsity={"preset": "anf", "densty": 0.1}), ["sparsity", "'densty'", "'density'"]),
    (_minimal(sparsity="anff"), ["sparsity", "'anff'", "'anf'"]),
])
def test_unknown_keys_name_the_path_and_the_closest_key(data: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as error:
        config_from_dict(data)
    for fragment in fragments:
        assert fragment in str(error.value)


@pytest.mark.parametrize(("data", "fragments"), [
    (_minimal(eval={"freq": "often"}), ["'eval.freq'", "expects int", "'often'"]),
    (_minimal(total_timesteps=1.5), ["'total_timesteps'", "expects int", "1.5"]),
    (_minimal(seed="zero"), ["'seed'", "expects int"]),
    (_minimal(net_arch="big"), ["'net_arch'", "list of int"]),
    (_minimal(agent={"hyperparams": {"learning_rate": "fast"}}), ["learning_rate", "expects float", "'fast'"]),
    (_minimal(agent={"hyperparams": {"train_freq": [1, 2]}}), ["train_freq", "[int, str]"]),
    (_minimal(agent={"action_noise": 0.1}), ["'agent.action_noise'", "mapping"]),
    (_minimal(checkpoint={"keep": 0}), ["checkpoint.keep", ">= 1"]),
    ({"env": {"id": "Pendulum-v1", "noise_fraction": 1.5}}, ["env", "noise_fraction"]),
])
def test_wrong_types_and_values_name_key_type_and_value(data: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as error:
        config_from_dict(data)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_unknown_algorithm_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"agent.algorithm must be one of sac, td3; got 'ppo'"):
        config_from_dict(_minimal(agent={"algorithm": "ppo"}))


def test_keys_set_elsewhere_are_redirected() -> None:
    with pytest.raises(ConfigError, match="top-level 'seed'"):
        config_from_dict(_minimal(agent={"hyperparams": {"seed": 3}}))
    with pytest.raises(ConfigError, match="agent.action_noise"):
        config_from_dict(_minimal(agent={"hyperparams": {"action_noise": 0.1}}))
    with pytest.raises(ConfigError, match="set twice"):
        config_from_dict(_minimal(net_arch=[8], agent={"hyperparams": {"policy_kwargs": {"net_arch": [8]}}}))
    with pytest.raises(ConfigError, match="needs a Python object"):
        config_from_dict(_minimal(agent={"hyperparams": {"replay_buffer_class": "ReplayBuffer"}}))


def test_missing_env_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'env' is missing"):
        config_from_dict({"seed": 0})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    top = _write(tmp_path / "top.yaml", {"defaults": ["gone.yaml"], "env": {"id": "Pendulum-v1"}})
    with pytest.raises(ConfigError, match=r"gone.yaml.*listed in 'defaults'"):
        load_config(top)


def test_malformed_yaml_cycles_and_overrides(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path / "bad.yaml", "env: {id: [\n"))
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(_write(tmp_path / "list.yaml", "- 1\n- 2\n"))
    _write(tmp_path / "x.yaml", {"defaults": ["y.yaml"]})
    _write(tmp_path / "y.yaml", {"defaults": ["x.yaml"]})
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "x.yaml")
    good = _write(tmp_path / "good.yaml", _minimal())
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(good, ["seed"])
    with pytest.raises(ConfigError, match="unknown config key 'sed'"):
        load_config(good, ["sed=3"])


def test_config_defaults_and_properties(tiny_config: Callable[..., dict[str, Any]]) -> None:
    config = config_from_dict(tiny_config())
    assert isinstance(config, ExperimentConfig)
    assert config.eval_seed == config.seed + 10_000 and config.sparsity_name == "anf"
    assert list(config.to_dict())[:3] == ["description", "seed", "total_timesteps"]


def test_one_list_of_agent_kinds() -> None:
    from sparse_rl.agents import AGENT_KINDS, AGENTS
    from sparse_rl.experiment import config
    from sparse_rl.sparse import ALGORITHMS as DST_ALGORITHMS

    assert tuple(AGENTS) == AGENT_KINDS == config.AGENT_KINDS and config.ALGORITHMS is AGENT_KINDS
    assert "set" in DST_ALGORITHMS  # the DST algorithms, another thing
