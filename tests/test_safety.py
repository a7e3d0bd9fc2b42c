"""Issue 15: nothing lost, nothing run twice, nothing loaded that should not be. Each test
reproduces a failure found by trying the CLI as a careful user would."""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sparse_rl.experiment.checkpoint import (
    CheckpointError,
    CheckpointWriteError,
    checkpoint_dirs,
    latest_checkpoint,
    load_replay_buffer,
)
from sparse_rl.experiment.config import config_from_dict
from sparse_rl.experiment.errors import ConfigError, UserError
from sparse_rl.experiment.runlock import RunLocked, run_lock
from sparse_rl.experiment.runner import evaluate_run, resume, train

Factory = Callable[..., dict[str, Any]]


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _steps(run_dir: Path) -> list[int]:
    return [int(row["timesteps"]) for row in _metrics(run_dir)]


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------------
# one process per run


def test_a_second_process_on_a_run_fails_at_once_naming_the_first(tiny_config: Factory, run_cli: Any) -> None:
    run_dir = train(config_from_dict(tiny_config(total_timesteps=200))).run_dir
    before = (run_dir / "config.yaml").read_bytes()
    with run_lock(run_dir):  # this test process is the first one, training the run
        second = run_cli("train", "--resume", run_dir, "--set", "total_timesteps=400")
        assert second.returncode == 2
        assert f"is being trained by another process (pid {os.getpid()}" in second.stderr
        assert "Traceback" not in second.stderr
        with pytest.raises(RunLocked, match=str(os.getpid())):
            resume(run_dir, ["total_timesteps=400"])
    assert (run_dir / "config.yaml").read_bytes() == before and _steps(run_dir) == [100, 200]
    assert resume(run_dir, ["total_timesteps=300"]).num_timesteps == 300  # released: the run goes on


# --------------------------------------------------------------------------------------------------
# a failed resume changes nothing


def test_a_failed_resume_leaves_config_yaml_alone(tiny_config: Factory) -> None:
    run_dir = train(config_from_dict(tiny_config(total_timesteps=200))).run_dir
    before = (run_dir / "config.yaml").read_bytes()
    with pytest.raises(ConfigError, match=r"agent.hyperparams.learning_rate must be a number > 0, got -1"):
        resume(run_dir, ["agent.hyperparams.learning_rate=-1"])
    with pytest.raises(ConfigError, match=r"total_timesteps must be >= 200, the steps this run has done already"):
        resume(run_dir, ["total_timesteps=100"])
    model = run_dir / "checkpoints" / "step_200" / "model.zip"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))  # a valid override, but the checkpoint fails to load
    with pytest.raises(CheckpointError, match="corrupt"):
        resume(run_dir, ["total_timesteps=400"])
    assert (run_dir / "config.yaml").read_bytes() == before


# --------------------------------------------------------------------------------------------------
# Ctrl-C


def test_ctrl_c_writes_a_checkpoint_then_exits_130(tiny_yaml: Callable[..., Path], start_cli: Any, run_cli: Any,
                                                   only_run: Callable[[], Path]) -> None:
    config = tiny_yaml(total_timesteps=1000, checkpoint={"freq": 1000}, eval={"freq": 100})
    process = start_cli("train", config)

    def evaluated_twice() -> bool:  # training is under way
        found = list((config.parent / "runs").glob("*/metrics.csv"))
        return bool(found) and len(found[0].read_text().splitlines()) >= 3

    _wait_for(evaluated_twice)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    run_dir = only_run()
    steps = [step for step, _ in checkpoint_dirs(run_dir / "checkpoints")]
    assert len(steps) == 1 and 200 <= steps[0] < 1000  # written at the interrupt, not a periodic one
    assert f"checkpoint {run_dir / 'checkpoints' / f'step_{steps[0]}'} written" in " ".join(stderr.split())
    assert "Traceback" not in stderr
    resumed = run_cli("train", "--resume", run_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert _steps(run_dir) == list(range(100, 1001, 100))


# --------------------------------------------------------------------------------------------------
# killed before the first checkpoint


def test_a_run_killed_before_its_first_checkpoint_resumes_by_starting_over(tiny_config: Factory,
                                                                           run_cli: Any) -> None:
    config = config_from_dict(tiny_config(run={"name": "early"}))
    run_dir = Path(config.run.root) / "early"
    (run_dir / "checkpoints").mkdir(parents=True)  # what a kill before the first checkpoint leaves
    (run_dir / "config.yaml").write_text(config.to_yaml())
    (run_dir / "metrics.csv").write_text("timesteps,eval_return_mean\n100,-1000\n")
    again = run_cli("train", run_dir / "config.yaml")
    assert again.returncode == 2 and f"sparse-rl train --resume {run_dir}" in again.stderr
    resumed = run_cli("train", "--resume", run_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert "starting it over" in resumed.stderr and _steps(run_dir) == [100, 200, 300]
    shutil.rmtree(run_dir / "checkpoints")  # finished, its checkpoints deleted (as a sweep does): never redone
    model = (run_dir / "model.zip").stat().st_mtime_ns
    assert resume(run_dir).completed and (run_dir / "model.zip").stat().st_mtime_ns == model
    with pytest.raises(UserError, match="has finished and holds no checkpoint"):
        resume(run_dir, ["total_timesteps=600"])
    assert _steps(run_dir) == [100, 200, 300]


# --------------------------------------------------------------------------------------------------
# evaluate while the run prunes its checkpoints


def test_evaluate_reads_the_newest_checkpoint_again_when_one_is_pruned_under_it(
        tiny_config: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    import sparse_rl.experiment.evaluate as evaluate_module

    run_dir = train(config_from_dict(tiny_config())).run_dir
    (run_dir / "model.zip").unlink()  # as while training: only checkpoints (200 and 300)
    calls: list[int] = []

    def pruned_under_us(path: Path) -> Any:
        found = latest_checkpoint(path)
        calls.append(found.step)
        if len(calls) == 1:  # the run writes step_400 and prunes the one we are about to read
            shutil.rmtree(found.path)
        return found

    monkeypatch.setattr(evaluate_module, "latest_checkpoint", pruned_under_us)
    result = evaluate_run(run_dir, n_episodes=1)
    assert calls == [300, 200] and result.num_timesteps == 200
    assert result.model_path == run_dir / "checkpoints" / "step_200" / "model.zip"


# --------------------------------------------------------------------------------------------------
# bad input: one line, exit 2


@pytest.mark.parametrize(("override", "message"), [
    ("net_arch=[0]", "net_arch must hold positive integers (hidden layer sizes), got [0]"),
    ("net_arch=[-4,8]", "net_arch must hold positive integers (hidden layer sizes), got [-4, 8]"),
    ("net_arch=null ; agent.hyperparams.policy_kwargs={net_arch: [0]}",
     "agent.hyperparams.policy_kwargs.net_arch must hold"),
    ("agent.hyperparams.batch_size=0", "agent.hyperparams.batch_size must be an integer >= 1, got 0"),
    ("agent.hyperparams.buffer_size=0", "agent.hyperparams.buffer_size must be an integer >= 1, got 0"),
    ("agent.hyperparams.tau=-1", "agent.hyperparams.tau must be a number > 0 and <= 1, got -1.0"),
    ("agent.hyperparams.gamma=2", "agent.hyperparams.gamma must be a number >= 0 and <= 1, got 2.0"),
    ("agent.hyperparams.learning_rate=0", "agent.hyperparams.learning_rate must be a number > 0, got 0.0"),
    ("agent.hyperparams.train_freq=[1, 'hour']", "agent.hyperparams.train_freq must be an integer >= 1, or"),
    ("agent.hyperparams.gradient_steps=0", "agent.hyperparams.gradient_steps must be an integer >= 1, or -1"),
    ("agent.hyperparams.ent_coef=-0.1", "agent.hyperparams.ent_coef must be 'auto', 'auto_<initial value > 0>'"),
    ("agent.hyperparams.learning_starts=-5", "agent.hyperparams.learning_starts must be an integer >= 0"),
])
def test_bad_hyperparameters_are_refused_at_config_time(tiny_config: Factory, override: str, message: str) -> None:
    from sparse_rl.experiment.config import apply_overrides

    with pytest.raises(ConfigError) as error:
        config_from_dict(apply_overrides(tiny_config(), override.split(" ; ")))
    assert message in str(error.value) and error.value.exit_code == 2


def test_td3_hyperparameters_are_checked_too(tiny_config: Factory) -> None:
    with pytest.raises(ConfigError, match="agent.hyperparams.policy_delay must be an integer >= 1, got 0"):
        config_from_dict(tiny_config(agent={"algorithm": "td3", "hyperparams": {"policy_delay": 0}}))
    config_from_dict(tiny_config(agent={"algorithm": "td3", "hyperparams": {"target_policy_noise": 0.2,
                                                                              "train_freq": [1, "episode"]}}))


def test_cuda_without_a_gpu_is_refused_before_anything_is_built(tiny_config: Factory, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"device is 'cuda' but torch finds no CUDA GPU here"):
        train(config_from_dict(tiny_config(device="cuda")))
    assert not (tmp_path / "runs").exists()


def test_a_noise_fraction_whose_run_cannot_fit_in_memory_is_refused(tiny_config: Factory, tmp_path: Path) -> None:
    from sparse_rl.experiment.resources import check_resources, estimate_memory

    config = config_from_dict(tiny_config(env={"noise_fraction": 0.999999}))
    estimate = estimate_memory(config, n_real=3)
    assert estimate.inputs == 3_000_000 and estimate.batches == 3 * 2 * 32 * 3_000_000 * 4
    with pytest.raises(ConfigError, match=r"env.noise_fraction=0.999999 makes 3,000,000 inputs \(3 real\): the run "
                                          r"needs at least .* GiB .* but 1.0 GiB of memory is available"):
        check_resources(config, available=1 << 30)
    assert check_resources(config_from_dict(tiny_config()), available=1 << 30) is not None  # the tiny run fits
    huge = config_from_dict(tiny_config(env={"noise_fraction": 0.0, "n_noise": 10**12}))
    with pytest.raises(ConfigError, match=r"env.n_noise=1000000000000 makes"):
        train(huge)  # refused before the env (and its noise tables) is built
    assert not (tmp_path / "runs").exists()


def test_the_memory_estimate_counts_the_floor_of_input_connections(tiny_config: Factory) -> None:
    from sparse_rl.experiment.resources import estimate_memory

    def networks(sparsity: object) -> int:
        config = config_from_dict(tiny_config(env={"noise_fraction": 0.99}, sparsity=sparsity))
        return estimate_memory(config, n_real=3).networks  # 300 inputs

    # fit_input's floor, 32 / 300, is under 0.2: strength_filter's csr layers, the same estimate.
    assert networks({"preset": "fit_input"}) == networks({"preset": "strength_filter"})
    # A floor of 100 per unit makes the layer 1/3 dense (> 0.3): masked, every position counted.
    floored = networks({"preset": "fit_input", "min_fan_in": 100})
    assert floored == networks({"preset": "strength_filter", "backend": "masked"})
    assert floored > networks({"preset": "strength_filter"})


def test_a_model_of_the_other_algorithm_is_refused_clearly(tiny_config: Factory) -> None:
    sac = train(config_from_dict(tiny_config(total_timesteps=100, run={"name": "sac"}))).run_dir
    td3 = train(config_from_dict(tiny_config(total_timesteps=100, run={"name": "td3"},
                                             agent={"algorithm": "td3"}))).run_dir
    shutil.copy(td3 / "model.zip", sac / "model.zip")
    with pytest.raises(CheckpointError, match=r"holds a TD3 model, but this run trains SAC"):
        evaluate_run(sac, n_episodes=1)
    shutil.copy(sac / "checkpoints" / "step_100" / "model.zip", td3 / "checkpoints" / "step_100" / "model.zip")
    manifest = json.loads((td3 / "checkpoints" / "step_100" / "manifest.json").read_text())
    from sparse_rl._util.rundir import sha256 as _sha256

    model = td3 / "checkpoints" / "step_100" / "model.zip"
    manifest["files"]["model.zip"] = {"sha256": _sha256(model), "bytes": model.stat().st_size}
    (td3 / "checkpoints" / "step_100" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=r"holds a SAC model, but this run trains TD3"):
        resume(td3, ["total_timesteps=200"])


def test_a_full_disk_at_a_checkpoint_stops_cleanly_and_loses_nothing(tiny_config: Factory,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import sparse_rl.experiment.checkpoint as checkpoint

    real = checkpoint._write_json
    writes: list[Path] = []

    def fill_up(path: Path, data: Any) -> None:
        writes.append(path)
        if len(writes) > 8:  # two checkpoints (buffer, rng, state, manifest), then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(checkpoint, "_write_json", fill_up)
    config = config_from_dict(tiny_config(total_timesteps=400, checkpoint={"keep": 5}))
    with pytest.raises(CheckpointWriteError) as error:
        train(config)
    message = str(error.value)
    assert error.value.exit_code == 4
    assert "step_300" in message and "No space left on device (the disk is full)" in message
    assert "earlier checkpoints are intact" in message and "sparse-rl train --resume" in message
    run_dir = next(path for path in Path(config.run.root).iterdir() if path.is_dir())
    assert [step for step, _ in checkpoint_dirs(run_dir / "checkpoints")] == [100, 200]
    assert not list((run_dir / "checkpoints").glob(".tmp-*"))
    monkeypatch.setattr(checkpoint, "_write_json", real)  # space freed
    assert resume(run_dir).num_timesteps == 400 and _steps(run_dir) == [100, 200, 300, 400]


def test_read_only_runs_give_clear_errors_and_analyze_out_writes_nothing_into_the_run(
        tiny_config: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sparse_rl.cli import main

    run_dir = train(config_from_dict(tiny_config(total_timesteps=200))).run_dir
    before = {path: path.stat().st_mtime_ns for path in run_dir.rglob("*")}
    assert main(["analyze", str(run_dir), "--no-gif", "--out", str(tmp_path / "elsewhere")]) == 0
    assert {path: path.stat().st_mtime_ns for path in run_dir.rglob("*")} == before  # nothing written there
    assert not (run_dir / "tb" / "analysis").exists() and any((tmp_path / "elsewhere").iterdir())

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == run_dir else real_access(path, mode))
    with pytest.raises(UserError, match=r"is read-only .* a resumed run writes checkpoints and metrics there"):
        resume(run_dir, ["total_timesteps=300"])
    assert main(["analyze", str(run_dir), "--no-gif"]) == 2


# --------------------------------------------------------------------------------------------------
# the replay buffer without pickle


def test_a_noise_free_buffer_is_stored_as_plain_arrays_and_read_without_pickle(tiny_config: Factory) -> None:
    from sparse_rl.agents.buffers import NoiseFreeReplayBuffer
    from sparse_rl.experiment.checkpoint import load_model
    from sparse_rl.experiment.runner import agent_class, build_env

    config = config_from_dict(tiny_config(total_timesteps=200))
    run_dir = train(config).run_dir
    found = latest_checkpoint(run_dir)
    assert found is not None
    names = {path.name for path in found.path.iterdir()}
    assert {"replay_buffer.npz", "replay_buffer.json"} <= names and "replay_buffer.pkl" not in names
    meta = json.loads((found.path / "replay_buffer.json").read_text())
    assert meta["class"] == "NoiseFreeReplayBuffer" and meta["pos"] == 200 and "noise_index" in meta["arrays"]
    with np.load(found.path / "replay_buffer.npz", allow_pickle=False) as data:
        assert all(data[name].dtype != object for name in data.files)
        real_obs = data["observations"]
    model = load_model(found, agent_class(config), build_env(config, config.seed), "cpu")
    assert isinstance(model.replay_buffer, NoiseFreeReplayBuffer) and model.replay_buffer.pos == 200
    assert len(real_obs) == 200  # the filled rows only
    assert np.array_equal(model.replay_buffer.observations[:200], real_obs)

    # a planted pickle in the arrays is refused, never unpickled
    class Boom:
        def __reduce__(self) -> Any:
            return (os.system, ("touch planted",))

    np.savez(found.path / "replay_buffer.npz", observations=np.array([Boom()], dtype=object))
    meta["arrays"] = ["observations"]
    (found.path / "replay_buffer.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="cannot read replay_buffer.npz"):
        load_replay_buffer(model.replay_buffer, found.path)
    assert not Path("planted").exists()
