"""Callbacks (NaN guard, metrics log, checkpoints) and the checkpoint format, on tiny models."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from sparse_rl.agents import SparseSAC
from sparse_rl.envs.factory import EnvConfig, make_env
from sparse_rl.experiment.callbacks import CheckpointCallback, NanGuardCallback, crossed
from sparse_rl.experiment.checkpoint import (
    CheckpointError,
    capture_rng,
    checkpoint_dirs,
    env_state,
    latest_checkpoint,
    load_model,
    prune_checkpoints,
    read_checkpoint,
    restore_env_state,
    restore_rng,
    write_checkpoint,
)
from sparse_rl.experiment.logs import MetricsLog


def _tiny_model(steps: int = 0) -> SparseSAC:
    model = SparseSAC("MlpPolicy", "Pendulum-v1", sparsity={"preset": "anf", "update_interval": 20},
                      learning_starts=20, batch_size=16, buffer_size=500, policy_kwargs={"net_arch": [16, 16]},
                      seed=0, device="cpu")
    return model.learn(steps) if steps else model


def test_crossed() -> None:
    assert crossed(0, 100, 100) and crossed(99, 100, 100) and crossed(150, 250, 100)
    assert not crossed(100, 199, 100) and not crossed(0, 99, 100) and not crossed(0, 500, 0)


def test_metrics_log_appends_and_truncates(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.csv", ["timesteps", "eval_return_mean", "extra"])
    for step in (100, 200, 300):
        log.append({"timesteps": step, "eval_return_mean": -float(step), "ignored": 1})
    assert [row["timesteps"] for row in log.rows()] == ["100", "200", "300"]
    assert log.truncate_after(200) == 1
    reopened = MetricsLog(tmp_path / "metrics.csv", ["something", "else"])
    assert reopened.fields == ("timesteps", "eval_return_mean", "extra")
    assert [row["timesteps"] for row in reopened.rows()] == ["100", "200"] and reopened.rows()[0]["extra"] == ""
    with (tmp_path / "metrics.csv").open("a") as handle:
        handle.write("30")  # a row cut short by a kill
    assert reopened.truncate_after(200) == 1 and len(reopened.rows()) == 2


def _fake_model(**values: Any) -> Any:
    policy = torch.nn.Linear(2, 2)
    return SimpleNamespace(logger=SimpleNamespace(name_to_value=dict(values)), policy=policy, num_timesteps=42)


def test_nan_guard_names_the_loss_and_stays_tripped() -> None:
    guard = NanGuardCallback()
    guard.model = _fake_model(**{"train/critic_loss": 1.0, "train/actor_loss": -2.0, "rollout/ep_rew_mean": np.nan})
    assert guard.check(parameters=True) and not guard.tripped
    guard.model.logger.name_to_value["train/critic_loss"] = float("inf")
    assert not guard.check()
    assert guard.reason == "the loss 'train/critic_loss' is inf" and guard.step == 42
    guard.model.logger.name_to_value["train/critic_loss"] = 0.0
    assert not guard.check() and guard.tripped


def test_nan_guard_scans_parameters_on_request() -> None:
    guard = NanGuardCallback()
    guard.model = _fake_model()
    with torch.no_grad():
        guard.model.policy.weight[0, 0] = float("nan")
    assert guard.check()  # losses only
    assert not guard.check(parameters=True) and "'weight'" in (guard.reason or "")


def test_checkpoint_round_trip_prune_and_corruption(tmp_path: Path) -> None:
    model = _tiny_model(60)
    directory = tmp_path / "checkpoints"
    first = write_checkpoint(model, directory, {"note": "a"})
    assert first.name == "step_60" and not list(directory.glob(".tmp-*"))
    model.learn(20, reset_num_timesteps=False)
    write_checkpoint(model, directory, {"note": "b"})
    model.learn(20, reset_num_timesteps=False)
    newest = write_checkpoint(model, directory, {"note": "c"})
    (directory / ".tmp-step_999").mkdir()  # what a writer killed mid-way leaves
    prune_checkpoints(directory, keep=2)
    assert [step for step, _ in checkpoint_dirs(directory)] == [80, 100] and not (directory / ".tmp-step_999").exists()

    found = latest_checkpoint(tmp_path)
    assert found is not None and found.path == newest and found.step == 100 and found.state["note"] == "c"
    loaded = load_model(found, SparseSAC, model.get_env(), "cpu")
    assert loaded.num_timesteps == 100 and loaded.replay_buffer.size() == model.replay_buffer.size()
    for key, value in model.policy.state_dict().items():
        assert torch.equal(value, loaded.policy.state_dict()[key]), key
    assert loaded.topology_updaters["actor"].step_count == model.topology_updaters["actor"].step_count

    data = bytearray((newest / "replay_buffer.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (newest / "replay_buffer.npz").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"step_100.*corrupt.*replay_buffer.npz.*sha256"):
        read_checkpoint(newest)
    with pytest.raises(CheckpointError, match=r"previous one is .*step_80"):
        latest_checkpoint(tmp_path)
    (newest / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="manifest is missing"):
        read_checkpoint(newest)


def test_checkpoint_callback_never_writes_after_the_guard_trips(tmp_path: Path) -> None:
    model = _tiny_model()
    guard = NanGuardCallback()
    callback = CheckpointCallback(tmp_path, freq=10, keep=2, state=dict, guard=guard)
    guard.init_callback(model)
    callback.init_callback(model)
    assert callback.save() is not None
    guard.reason = "the loss 'train/critic_loss' is nan"
    assert callback.save() is None and len(checkpoint_dirs(tmp_path)) == 1


def test_rng_states_round_trip() -> None:
    model = _tiny_model()
    state = json.loads(json.dumps(capture_rng(model)))
    expected = (random.random(), np.random.rand(), torch.rand(1).item(), model.action_space.sample())
    random.seed(5), np.random.seed(5), torch.manual_seed(5), model.action_space.seed(5)
    restore_rng(state, model)
    again = (random.random(), np.random.rand(), torch.rand(1).item(), model.action_space.sample())
    assert expected[:3] == again[:3] and np.array_equal(expected[3], again[3])


def test_env_wrapper_state_round_trip() -> None:
    config = EnvConfig("Pendulum-v1", noise_fraction=0.5, permute_at_step=5)
    env = make_env(config, seed=0)
    env.reset(seed=0)
    for _ in range(7):
        env.step(env.action_space.sample())
    saved = json.loads(json.dumps(env_state(env)))
    fresh = make_env(config, seed=0)
    restore_env_state(fresh, saved)
    assert fresh.get_wrapper_attr("step_count") == 7 and fresh.get_wrapper_attr("permuted")
    assert fresh.get_wrapper_attr("observation_index") == env.get_wrapper_attr("observation_index")
    with pytest.raises(CheckpointError, match="env config changed"):
        restore_env_state(make_env(EnvConfig("Pendulum-v1"), seed=0), saved)
