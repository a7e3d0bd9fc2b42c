"""agents.loading: a saved model is loaded with the one class that saved it."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest
from stable_baselines3 import SAC, TD3

from sparse_rl.agents import SparseSAC, SparseTD3
from sparse_rl.agents.loading import agent_class, load_agent, model_algorithm, model_implementation


@pytest.mark.parametrize("cls", [SAC, TD3, SparseSAC, SparseTD3])
def test_the_saved_class_is_read_back(tmp_path: Path, cls: type) -> None:
    model = cls("MlpPolicy", gym.make("Pendulum-v1"), buffer_size=10, policy_kwargs={"net_arch": [8]})
    model.save(tmp_path / "model.zip")
    algorithm = "td3" if issubclass(cls, TD3) else "sac"
    implementation = "sparse_rl" if cls.__module__.startswith("sparse_rl.") else "sb3"
    assert model_algorithm(tmp_path / "model.zip") == algorithm
    assert model_implementation(tmp_path / "model.zip") == implementation
    assert agent_class(algorithm, implementation) is cls
    assert type(load_agent(tmp_path / "model.zip")) is cls


def test_a_missing_or_foreign_file_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_agent(tmp_path / "model.zip")
    (tmp_path / "model.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="SAC or a TD3"):
        load_agent(tmp_path / "model.zip")
