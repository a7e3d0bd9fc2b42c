"""scripts/bench_speed.py: the shipped method as an agent, the "× clean dense" ratio, the phase timer."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from sparse_rl.agents import SparseSAC
from sparse_rl.agents.buffers import NoiseFreeReplayBuffer
from sparse_rl.envs import make_env
from tests.conftest import load_script

REPO = Path(__file__).resolve().parent.parent


def _load_script() -> ModuleType:
    return load_script("bench_speed")


def _run(agent: str, setting: str, speed: float, round_index: int, batch: int = 256) -> dict:
    return {"agent": agent, "setting": setting, "batch_size": batch, "threads": 1, "round": round_index,
            "steps_per_second": speed, "peak_rss_mb": 100.0, "observation_size": 17,
            "buffer_bytes_per_transition": 182.0}


def test_each_run_is_divided_by_clean_dense_sb3_of_its_round_batch_and_threads() -> None:
    bench = _load_script()
    runs = [_run("dense_sb3", "f0", 50.0, 0), _run("anf_sac", "f0", 45.0, 0),
            _run("dense_sb3", "f0.98", 20.0, 0), _run("anf_sac", "f0.98", 40.0, 0),
            _run("dense_sb3", "f0", 40.0, 1), _run("anf_sac", "f0.98", 30.0, 1), _run("dense_sb3", "f0.98", 15.0, 1),
            _run("dense_sb3", "f0", 10.0, 0, batch=100), _run("anf_sac", "f0.98", 9.0, 0, batch=100)]
    rows = {(row["setting"], row["batch_size"], row["agent"]): row for row in bench.summarise(runs)}
    noisy = rows[("f0.98", 256, "anf_sac")]
    assert noisy["clean_ratios_per_round"] == [0.8, 0.75]  # 40 / 50 and 30 / 40: its own round's clean run
    assert noisy["ratios_per_round"] == [2.0, 2.0]
    assert rows[("f0.98", 100, "anf_sac")]["clean_ratios_per_round"] == [0.9]  # batch 100's clean run
    assert rows[("f0", 256, "dense_sb3")]["ratio_vs_clean_dense"] == 1.0
    table = bench.markdown(bench.summarise(runs), "cmd", "today")
    assert "× clean dense SB3 (rounds)" in table
    assert "| f0.98 | 17 | 256 | 1 | anf_sac | 35 | 2.00 (2.00, 2.00) | 0.78 (0.80, 0.75) |" in table


def test_without_a_clean_run_the_clean_ratio_is_left_out() -> None:
    bench = _load_script()
    rows = bench.summarise([_run("dense_sb3", "f0.99", 10.0, 0), _run("anf", "f0.99", 20.0, 0)])
    assert all("ratio_vs_clean_dense" not in row for row in rows)
    assert "| 2.00 | – |" in bench.markdown(rows, "cmd", "today")


def test_the_anf_sac_agent_is_the_shipped_method_with_the_benchs_batch_size() -> None:
    bench = _load_script()
    env = make_env({"id": "Pendulum-v1", "n_noise": 300}, seed=0)
    model = bench.build_agent("anf_sac", env, learning_starts=20, buffer_size=100, batch_size=32, device="cpu")
    assert isinstance(model, SparseSAC) and model.batch_size == 32 and model.learning_starts == 20
    assert model.critic_loss_scale == 1.0 and model.replay_noise == "fresh" and float(model.ent_coef) == 0.2
    assert model.policy.optimizer_kwargs["weight_decay"] == 2e-4 and model.policy.weight_init == "xavier_uniform"
    assert isinstance(model.replay_buffer, NoiseFreeReplayBuffer) and model.replay_buffer.fresh_noise


def test_the_phase_timer_splits_the_cpu_time_of_training(monkeypatch: pytest.MonkeyPatch) -> None:
    import stable_baselines3.sac.sac as sac_module
    import torch

    monkeypatch.setattr(sac_module, "polyak_update", sac_module.polyak_update)  # undone after the test
    monkeypatch.setattr(torch.Tensor, "backward", torch.Tensor.backward)
    bench = _load_script()
    env = make_env({"id": "Pendulum-v1", "n_noise": 300}, seed=0)
    model = bench.build_agent("anf_sac", env, learning_starts=20, buffer_size=100, batch_size=16, device="cpu")
    model.learn(25)
    seconds = bench.phase_timer(model)
    model.learn(5, reset_num_timesteps=False)
    for phase in ("replay sample", "critic forward", "critic_target forward", "actor action_log_prob", "backward",
                  "critic optimizer step", "actor optimizer step", "polyak_update", "env step", "topology step"):
        assert seconds.get(phase, 0.0) > 0.0, phase
    assert "ent_coef optimizer step" not in seconds  # ANF-SAC's temperature is fixed


def test_the_fused_variant_adds_fused_adam_to_the_methods_optimizer_settings() -> None:
    bench = _load_script()
    env = make_env({"id": "Pendulum-v1", "n_noise": 300}, seed=0)
    model = bench.build_agent("anf_sac_fused", env, learning_starts=20, buffer_size=100, batch_size=32, device="cpu")
    assert model.policy.optimizer_kwargs == {"weight_decay": 2e-4, "fused": True}
    assert all(group["fused"] and not group["foreach"] for group in model.actor.optimizer.param_groups)
    model.learn(25)  # fused Adam steps the csr values and the dense layers


def test_a_baseline_checkout_adds_each_sparse_agent_from_there_in_the_same_round(tmp_path: Path) -> None:
    bench = _load_script()
    assert bench.run_list(["dense_sb3", "anf_sac", "anf"], None) == ["dense_sb3", "anf_sac", "anf"]
    assert bench.run_list(["dense_sb3", "anf_sac", "anf"], str(tmp_path)) == [
        "dense_sb3", "anf_sac", "anf_sac@baseline", "anf", "anf@baseline"]
    runs = [_run("dense_sb3", "f0", 50.0, 0), _run("anf_sac", "f0.98", 40.0, 0),
            _run("anf_sac@baseline", "f0.98", 30.0, 0)]
    rows = {row["agent"]: row for row in bench.summarise(runs) if row["setting"] == "f0.98"}
    assert rows["anf_sac"]["ratio_vs_clean_dense"] == 0.8 and rows["anf_sac@baseline"]["ratio_vs_clean_dense"] == 0.6
