"""The runner in-process: run directory layout, resume, mismatch checks, divergence, evaluation."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparse_rl.experiment.checkpoint import CheckpointError, checkpoint_dirs
from sparse_rl.experiment.config import config_from_dict, load_config
from sparse_rl.experiment.errors import UserError
from sparse_rl.experiment.runner import TrainingDiverged, evaluate_run, resume, run_name, train

Factory = Callable[..., dict[str, Any]]


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_train_writes_the_run_directory(tiny_config: Factory) -> None:
    config = config_from_dict(tiny_config())
    result = train(config)
    run_dir = result.run_dir
    assert run_dir.name.startswith("Pendulum-v1-sac-anf-f0.5-s1-") and result.completed
    assert {p.name for p in run_dir.iterdir()} >= {"config.yaml", "metrics.csv", "tb", "checkpoints",
                                                   "connectivity", "model.zip"}
    assert load_config(run_dir / "config.yaml") == config
    rows = _metrics(run_dir)
    assert [int(row["timesteps"]) for row in rows] == [100, 200, 300]
    assert all(float(row["steps_per_second"]) > 0 and row["real_share_actor"] for row in rows)
    for network in ("actor", "qf0", "qf1"):  # the filtering metrics of every input layer, at every evaluation
        assert all(float(row[f"in_degree_real_{network}"]) > 0 and row[f"topk_precision_{network}"] for row in rows)
    # and at every topology update (every 50 gradient steps from step 100 on: 4 per updater)
    updates = list(csv.DictReader((run_dir / "topology.csv").open()))
    assert [row["updated"] for row in updates] == ["actor", "critic"] * 4
    assert [int(row["gradient_step"]) for row in updates] == [50, 50, 100, 100, 150, 150, 200, 200]
    assert all(int(row["changed"]) > 0 and float(row["in_degree_noise_qf1"]) > 0 for row in updates)
    assert [step for step, _ in checkpoint_dirs(run_dir / "checkpoints")] == [200, 300]
    assert any((run_dir / "tb").iterdir())
    assert result.last_eval == pytest.approx((float(rows[-1]["eval_return_mean"]), float(rows[-1]["eval_return_std"])),
                                             rel=1e-4)
    evaluation = evaluate_run(run_dir, n_episodes=2)
    assert len(evaluation.returns) == 2 and evaluation.num_timesteps == 300


def test_run_names_and_taken_names(tiny_config: Factory) -> None:
    config = config_from_dict(tiny_config(agent={"algorithm": "td3"}, sparsity="dense", seed=4,
                                          env={"noise_fraction": 0.98}))
    assert run_name(config, now=0).startswith("Pendulum-v1-td3-dense-f0.98-s4-19")
    named = config_from_dict(tiny_config(total_timesteps=50, run={"name": "mine"}, checkpoint={"freq": 0},
                                         eval={"freq": 0}, agent={"hyperparams": {"learning_starts": 10}}))
    assert train(named).run_dir.name == "mine"
    with pytest.raises(UserError, match="already exists"):
        train(named)


def test_resume_extends_a_run_and_keeps_metrics_unique(tiny_config: Factory) -> None:
    result = train(config_from_dict(tiny_config(total_timesteps=200, agent={"algorithm": "td3"},
                                                 env={"permute_at_step": 150})))
    extended = resume(result.run_dir, ["total_timesteps=400", "agent.hyperparams.learning_rate=5e-4"])
    assert extended.num_timesteps == 400 and extended.completed
    assert [int(row["timesteps"]) for row in _metrics(result.run_dir)] == [100, 200, 300, 400]
    with (result.run_dir / "topology.csv").open() as handle:
        updates = [(row["gradient_step"], row["updated"]) for row in csv.DictReader(handle)]
    assert len(updates) == len(set(updates)) and updates[-1] == ("300", "critic")  # TD3's actor: every 2nd step
    assert load_config(result.run_dir / "config.yaml").total_timesteps == 400
    from sparse_rl.experiment.checkpoint import latest_checkpoint

    last = latest_checkpoint(result.run_dir)
    assert last is not None and last.state["resumes"] == 1
    permutation = next(entry for entry in last.state["env_state"] if entry["wrapper"] == "FeaturePermutation")
    assert permutation["state"]["step_count"] == 400 and permutation["state"]["permuted"]
    done = resume(result.run_dir)
    assert done.num_timesteps == 400 and "already complete" in done.message


def test_resume_refuses_a_changed_setting(tiny_config: Factory) -> None:
    run_dir = train(config_from_dict(tiny_config(total_timesteps=150))).run_dir
    with pytest.raises(CheckpointError, match=r"does not match.*agent.algorithm is 'sac' there but 'td3' here"):
        resume(run_dir, ["agent.algorithm=td3", "total_timesteps=300"])
    with pytest.raises(CheckpointError, match=r"env.noise_fraction is 0.5 there but 0.9 here"):
        resume(run_dir, ["env.noise_fraction=0.9", "total_timesteps=300"])


def test_resume_from_an_older_checkpoint_sets_newer_ones_aside(tiny_config: Factory) -> None:
    run_dir = train(config_from_dict(tiny_config(total_timesteps=300, checkpoint={"keep": 3}))).run_dir
    (run_dir / "checkpoints" / "step_300" / "model.zip").write_bytes(b"damaged")
    with pytest.raises(CheckpointError, match="corrupt"):
        resume(run_dir, ["total_timesteps=400"])
    result = resume(run_dir, ["total_timesteps=400"], checkpoint="step_200")
    assert result.num_timesteps == 400
    assert [int(row["timesteps"]) for row in _metrics(run_dir)] == [100, 200, 300, 400]
    assert list((run_dir / "checkpoints").glob(".discarded-step_300-*"))


def test_resume_needs_a_run_and_starts_one_without_a_checkpoint_over(tmp_path: Path, tiny_config: Factory) -> None:
    with pytest.raises(UserError, match="does not exist"):
        resume(tmp_path / "nowhere")
    with pytest.raises(UserError, match="not a run directory"):
        resume(tmp_path)
    (tmp_path / "half").mkdir()  # killed before its first checkpoint: resume starts it over, in place
    (tmp_path / "half" / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    (tmp_path / "half" / "metrics.csv").write_text("timesteps,eval_return_mean\n100,-1\n")
    result = resume(tmp_path / "half")
    assert result.completed and result.run_dir == tmp_path / "half"
    assert [int(row["timesteps"]) for row in _metrics(tmp_path / "half")] == [100, 200, 300]


def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(tiny_config: Factory) -> None:
    config = config_from_dict(tiny_config(total_timesteps=2000, checkpoint={"freq": 50},
                                          agent={"hyperparams": {"learning_rate": 1e30, "ent_coef": 0.2}}))
    with pytest.raises(TrainingDiverged) as error:
        train(config)
    message = str(error.value)
    assert "diverged at step" in message and "'train/" in message and "_loss'" in message
    run_dir = next((Path(config.run.root)).iterdir())
    assert not (run_dir / "model.zip").exists()
    assert [step for step, _ in checkpoint_dirs(run_dir / "checkpoints")] == [50, 100]  # none after step 100
    assert error.value.exit_code == 3


def test_sb3_implementation_trains_stable_baselines3_itself(tiny_config: Factory) -> None:
    from stable_baselines3 import SAC

    from sparse_rl.agents import SparseSAC
    from sparse_rl.agents.buffers import NoiseFreeReplayBuffer

    common = {"total_timesteps": 200, "sparsity": "dense", "snapshots": {"enabled": False}}
    sb3 = train(config_from_dict(tiny_config(**common, agent={"implementation": "sb3"})))
    ours = train(config_from_dict(tiny_config(**common)))
    assert "-sac-sb3-f0.5-s1-" in sb3.run_dir.name
    model = SAC.load(sb3.run_dir / "model.zip")
    assert type(model) is SAC and not isinstance(model, SparseSAC)
    assert isinstance(model.replay_buffer, NoiseFreeReplayBuffer)  # the noise is not stored, yet replayed exactly
    # SparseSAC with sparsity dense is SB3's SAC: the same seed gives the same evaluations
    assert [row["eval_return_mean"] for row in _metrics(sb3.run_dir)] == \
        [row["eval_return_mean"] for row in _metrics(ours.run_dir)]
    assert resume(sb3.run_dir, ["total_timesteps=300"]).num_timesteps == 300
    with pytest.raises(UserError, match=r"agent.implementation 'sb3' trains stable_baselines3's own SAC, whose "
                                        r"networks are dense, but sparsity is 'anf'; set sparsity: dense"):
        config_from_dict(tiny_config(agent={"implementation": "sb3"}, sparsity="anf"))
    with pytest.raises(UserError, match=r"agent.implementation must be one of sparse_rl, sb3; got 'sb4'"):
        config_from_dict(tiny_config(agent={"implementation": "sb4"}))


def test_transfer_refill_empties_the_buffer_and_acts_at_random_after_permuting(tiny_config: Factory) -> None:
    from sparse_rl.agents import SparseSAC
    from sparse_rl.experiment.checkpoint import latest_checkpoint

    common = dict(total_timesteps=400, env={"permute_at_step": 150}, checkpoint={"freq": 400})
    plain = train(config_from_dict(tiny_config(**common))).run_dir
    refilled = train(config_from_dict(tiny_config(**common, transfer_refill_steps=100))).run_dir
    steps = [latest_checkpoint(run).state["gradient_steps"] for run in (plain, refilled)]
    # one gradient step per env step after the 100 warm-up steps: at steps 101-400 without the refill,
    # at 101-149 and 251-400 with it (the buffer emptied at step 150, then 100 random steps)
    assert steps == [300, 49 + 150]
    model = SparseSAC.load(refilled / "model.zip", custom_objects={"buffer_size": 1})
    assert model.learning_starts == 250
    with pytest.raises(UserError, match="transfer_refill_steps"):
        config_from_dict(tiny_config(transfer_refill_steps=-1))
