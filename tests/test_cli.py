"""The ``sparse-rl`` command line: end to end in subprocesses (train, evaluate, analyze, resume after
SIGKILL) and every user-error path (exit code 2 and a one-paragraph message, no traceback)."""

from __future__ import annotations

import csv
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparse_rl.cli import main
from sparse_rl.experiment.config import config_from_dict
from sparse_rl.experiment.runner import train
from tests.conftest import copy_run

REPO = Path(__file__).resolve().parent.parent


def _steps(run_dir: Path) -> list[int]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return [int(row["timesteps"]) for row in csv.DictReader(handle)]


def _run_dir_from(stdout: str) -> Path:
    line = next(line for line in stdout.splitlines() if line.startswith("run directory: "))
    return Path(line.removeprefix("run directory: "))


# --------------------------------------------------------------------------------------------------
# end to end, in subprocesses


def test_train_and_evaluate_end_to_end(run_cli: Callable[..., Any], tiny_yaml: Callable[..., Path],
                                          tmp_path: Path) -> None:
    trained = run_cli("train", tiny_yaml(total_timesteps=200), "--set", "agent.algorithm=td3", "sparsity=all_layers",
                      "agent.action_noise={sigma: 0.1}")
    assert trained.returncode == 0, trained.stderr
    run_dir = tmp_path / _run_dir_from(trained.stdout)
    assert run_dir.name.startswith("Pendulum-v1-td3-all_layers-f0.5-s1-")
    assert _steps(run_dir) == [100, 200] and (run_dir / "model.zip").is_file()
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["agent"]["algorithm"] == "td3"

    evaluated = run_cli("evaluate", run_dir, "--episodes", "2")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "return over 2 episodes: " in evaluated.stdout and " ± " in evaluated.stdout


def test_train_composes_a_run_from_a_method_an_env_and_a_noise_level(run_cli: Callable[..., Any],
                                                                      tmp_path: Path) -> None:
    trained = run_cli("train", "--method", "anf_td3", "--env", "Pendulum-v1", "--noise", "0.9", "--sparsity", "static",
                      "--set", "total_timesteps=200", "agent.hyperparams.learning_starts=100",
                      "agent.hyperparams.buffer_size=500", "eval.freq=100", "eval.n_episodes=1", "net_arch=[8, 8]")
    assert trained.returncode == 0, trained.stderr
    run_dir = tmp_path / _run_dir_from(trained.stdout)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["method"] == "anf_td3" and saved["sparsity"] == "static" and saved["agent"]["algorithm"] == "td3"
    assert saved["env"] == {**saved["env"], "id": "Pendulum-v1", "noise_fraction": 0.9}
    assert saved["agent"]["hyperparams"]["batch_size"] == 100 and _steps(run_dir) == [100, 200]
    both = run_cli("train", "--method", "anf_sac", "--resume", run_dir)
    assert both.returncode == 2 and "give either --method (a new run) or --resume RUN_DIR" in both.stderr
    no_env = run_cli("train", "--method", "anf_sac")
    assert no_env.returncode == 2 and "no env: give --env ID" in no_env.stderr


def test_analyze_writes_plots(capsys: pytest.CaptureFixture[str], finished_run: Path, tmp_path: Path) -> None:
    run_dir = copy_run(finished_run, tmp_path)
    assert main(["analyze", str(run_dir), "--no-gif", "--no-tensorboard"]) == 0
    out = capsys.readouterr().out
    assert f"in {run_dir / 'plots'}" in out and "real_share" in out and any((run_dir / "plots").iterdir())
    assert "not a run directory" in _error(capsys, ["analyze", tmp_path])


def test_resume_after_sigkill_ends_at_the_total(tmp_path: Path, tiny_yaml: Callable[..., Path],
                                               start_cli: Callable[..., Any], run_cli: Callable[..., Any]) -> None:
    total = 1000
    config = tiny_yaml(total_timesteps=total, eval={"freq": 100}, checkpoint={"freq": 200})
    process = start_cli("train", config)
    deadline = time.monotonic() + 300  # generous: a loaded machine takes minutes to import torch and start
    checkpoints: list[Path] = []
    while time.monotonic() < deadline and process.poll() is None and not checkpoints:
        checkpoints = list((tmp_path / "runs").glob("*/checkpoints/step_*"))
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before a checkpoint could be seen"
    assert checkpoints, "no checkpoint within 300 s"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    run_dir = checkpoints[0].parent.parent
    assert not (run_dir / "model.zip").exists()
    kept = max(int(path.name.removeprefix("step_")) for path in (run_dir / "checkpoints").glob("step_*"))
    assert kept < total

    resumed = run_cli("train", "--resume", run_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert f"run finished at step {total}" in resumed.stdout
    steps = _steps(run_dir)
    assert steps == sorted(set(steps)) and steps[-1] == total
    assert steps == list(range(100, total + 1, 100))  # rows after the checkpoint were redone, none twice
    assert (run_dir / "model.zip").is_file()


def test_user_errors_exit_2_without_a_traceback(run_cli: Callable[..., Any], tiny_yaml: Callable[..., Path]) -> None:
    bad = run_cli("train", tiny_yaml(evall={"freq": 3}))
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: unknown config key 'evall'; did you mean 'eval'?")
    assert "Traceback" not in bad.stderr


# --------------------------------------------------------------------------------------------------
# error paths, in-process


def _error(capsys: pytest.CaptureFixture[str], argv: list[Any], code: int = 2) -> str:
    assert main([str(arg) for arg in argv]) == code
    err = capsys.readouterr().err
    assert "error: " in err and "Traceback" not in err
    return " ".join(err[err.index("error: "):].split())


def test_error_unknown_key_wrong_type_and_algorithm(capsys: pytest.CaptureFixture[str],
                                                    tiny_yaml: Callable[..., Path]) -> None:
    assert "did you mean 'agent.hyperparams.batch_size'" in _error(
        capsys, ["train", tiny_yaml(agent={"hyperparams": {"bach_size": 3}})])
    assert "'eval.n_episodes' expects int, got 'five' (str)" in _error(
        capsys, ["train", tiny_yaml(), "--set", "eval.n_episodes=five"])
    assert "must be one of sac, td3; got 'ppo'" in _error(
        capsys, ["train", tiny_yaml(), "--set", "agent.algorithm=ppo"])
    assert "expects KEY=VALUE" in _error(capsys, ["train", tiny_yaml(), "--set", "seed"])


def test_error_missing_file_and_bad_env(capsys: pytest.CaptureFixture[str], tiny_yaml: Callable[..., Path],
                                        tmp_path: Path) -> None:
    assert "does not exist" in _error(capsys, ["train", tmp_path / "missing.yaml"])
    message = _error(capsys, ["train", tiny_yaml(env={"id": "Pendulum-v9"})])
    assert "Pendulum-v9" in message and "not registered" in message
    assert not (tmp_path / "runs").exists()  # nothing is created for a config that fails


def test_error_resume_of_something_that_is_not_a_run(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     tiny_yaml: Callable[..., Path]) -> None:
    assert "not a run directory" in _error(capsys, ["train", "--resume", tmp_path])
    assert "does not exist" in _error(capsys, ["train", "--resume", tmp_path / "nope"])
    assert "is a file" in _error(capsys, ["train", "--resume", tiny_yaml()])
    assert "not both" in _error(capsys, ["train", tiny_yaml(), "--resume", tmp_path])
    assert "not a run directory" in _error(capsys, ["evaluate", tmp_path])


def test_error_corrupt_checkpoint(capsys: pytest.CaptureFixture[str], finished_run: Path, tmp_path: Path) -> None:
    run_dir = copy_run(finished_run, tmp_path)
    state = run_dir / "checkpoints" / "step_200" / "state.json"
    state.write_text(state.read_text().replace('"episodes"', '"episodez"'))
    message = _error(capsys, ["train", "--resume", run_dir, "--set", "total_timesteps=300"])
    assert "step_200" in message and "corrupt" in message and "state.json" in message
    assert "--checkpoint" in message and "step_100" in message


def test_error_mismatched_checkpoint(capsys: pytest.CaptureFixture[str], finished_run: Path, tmp_path: Path) -> None:
    run_dir = copy_run(finished_run, tmp_path)
    message = _error(capsys, ["train", "--resume", run_dir, "--set", "total_timesteps=300", "net_arch=[8, 8]"])
    assert "does not match" in message and "net_arch" in message
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("algorithm: sac", "algorithm: td3"))
    assert "agent.algorithm is 'sac' there but 'td3' here" in _error(capsys, ["train", "--resume", run_dir])


def test_error_checkpoint_of_another_run(capsys: pytest.CaptureFixture[str], finished_run: Path,
                                         tmp_path: Path, tiny_config: Callable[..., dict[str, Any]]) -> None:
    other = train(config_from_dict(tiny_config(total_timesteps=100, agent={"algorithm": "td3"}))).run_dir
    run_dir = copy_run(finished_run, tmp_path)
    foreign = other / "checkpoints" / "step_100"
    message = _error(capsys, ["train", "--resume", run_dir, "--checkpoint", foreign])
    assert "is not a checkpoint of run" in message
    shutil.copytree(foreign, run_dir / "checkpoints" / "step_300")  # a TD3 checkpoint, newest in a SAC run
    message = _error(capsys, ["train", "--resume", run_dir, "--set", "total_timesteps=400"])
    assert "step_300" in message and "agent.algorithm is 'td3' there but 'sac' here" in message
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step_100", "step_200", "step_300"]


def test_divergence_exits_3_naming_the_loss(capsys: pytest.CaptureFixture[str], tiny_yaml: Callable[..., Path]) -> None:
    argv = ["train", tiny_yaml(total_timesteps=1000), "--set", "agent.hyperparams.learning_rate=1e30"]
    message = _error(capsys, argv, code=3)
    assert "training diverged at step" in message and "'train/" in message


def test_demo_runs_on_embedded_defaults(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["demo", "--root", str(tmp_path), "--no-progress", "--set", "total_timesteps=150", "net_arch=[16, 16]",
                 "agent.hyperparams.learning_starts=50", "eval.freq=0", "eval.n_episodes=1",
                 "env.make_kwargs={max_episode_steps: 50}"])
    out = capsys.readouterr().out
    assert code == 0 and "final evaluation return: " in out and " ± " in out
    assert _run_dir_from(out).parent == tmp_path and _steps(_run_dir_from(out)) == [150]


def test_scripts_are_thin_wrappers(capsys: pytest.CaptureFixture[str]) -> None:
    for script in ("train.py", "evaluate.py"):
        text = (REPO / "scripts" / script).read_text()
        assert "from sparse_rl.cli import main" in text
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0 and "--resume" in capsys.readouterr().out
