"""What users of rl-zoo3, CleanRL, TensorBoard and W&B expect, through the runner and the CLI:
several (subprocess) envs, logger formats, W&B tracking, evaluations.npz and best_model.zip,
videos of an evaluation, learning curves of several runs on one plot, shipped configs, --version."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from sparse_rl.experiment.config import config_from_dict
from sparse_rl.experiment.errors import ConfigError
from sparse_rl.experiment.runner import evaluate_run, train

Factory = Callable[..., dict[str, Any]]


@pytest.mark.parametrize(("vec_env", "noise_fraction"), [("subproc", 0.5), ("dummy", 0.0)])
def test_runs_train_on_several_envs(tiny_config: Factory, vec_env: str, noise_fraction: float) -> None:
    config = config_from_dict(tiny_config(n_envs=2, vec_env=vec_env, env={"noise_fraction": noise_fraction},
                                          snapshots={"enabled": False}))
    result = train(config)
    assert result.completed and result.num_timesteps >= 300
    with (result.run_dir / "metrics.csv").open(newline="") as handle:
        assert [int(row["timesteps"]) for row in csv.DictReader(handle)] == [100, 200, 300]
    assert yaml.safe_load((result.run_dir / "config.yaml").read_text())["vec_env"] == vec_env


def test_config_checks_the_vec_env_and_log_formats(tiny_config: Factory) -> None:
    with pytest.raises(ConfigError, match="vec_env"):
        config_from_dict(tiny_config(vec_env="ray"))
    with pytest.raises(ConfigError, match="n_envs"):
        config_from_dict(tiny_config(n_envs=0))
    with pytest.raises(ConfigError, match=r"run.log_formats\[1\]"):
        config_from_dict(tiny_config(run={"log_formats": ["csv", "wandb"]}))


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory: pytest.TempPathFactory, tiny_defaults: dict[str, Any]) -> Path:
    """One run logging to every SB3 format and to W&B (offline), with evaluations every 100 steps."""
    pytest.importorskip("wandb")
    from sparse_rl.experiment.config import deep_merge

    root = tmp_path_factory.mktemp("tracked")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    try:
        data = deep_merge(tiny_defaults, {"run": {"root": str(root), "log_interval": 1, "track": True,
                                                  "log_formats": ["tensorboard", "csv", "json", "log"]},
                                          "snapshots": {"enabled": False}})
        return train(config_from_dict(data)).run_dir
    finally:
        monkeypatch.undo()


def test_sparsity_scalars_reach_every_logger_format(tracked_run: Path) -> None:
    with (tracked_run / "progress.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert any(row.get("sparsity/actor/density") for row in rows) and any(row.get("eval/mean_reward") for row in rows)
    records = [json.loads(line) for line in (tracked_run / "progress.json").read_text().splitlines()]
    assert any("sparsity/actor/real_share" in record for record in records)
    log = (tracked_run / "log.txt").read_text()
    assert "| sparsity/" in log and "actor/changed" in log
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tracked_run / "tb")).Reload()
    assert {"sparsity/actor/density", "sparsity/qf0/real_share", "eval/mean_reward"} <= set(events.Tags()["scalars"])


def test_track_logs_to_weights_and_biases_offline(tracked_run: Path) -> None:
    runs = list((tracked_run / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    # the offline run's record log (protobuf records; keys and config values are stored as plain bytes)
    records = next(runs[0].glob("*.wandb")).read_bytes()
    assert b"sparsity/actor/density" in records and b"eval/mean_reward" in records and b"Pendulum-v1" in records


def test_wandb_format_logs_numeric_scalars_with_the_step() -> None:
    from sparse_rl.experiment.tracking import WandbOutputFormat

    class Run:
        logged: list[dict[str, float]] = []

        def log(self, data: dict[str, float]) -> None:
            self.logged.append(data)

    run = Run()
    WandbOutputFormat(run).write({"sparsity/actor/density": np.float32(0.25), "eval/mean_reward": -3, "note": "x",
                                  "hidden": 1.0}, {"hidden": ("wandb",)}, step=7)
    assert run.logged == [{"sparsity/actor/density": 0.25, "eval/mean_reward": -3.0, "global_step": 7}]


def test_evaluations_npz_and_best_model_like_sb3_eval_callback(tracked_run: Path) -> None:
    with np.load(tracked_run / "evaluations.npz") as data:
        assert data["timesteps"].tolist() == [100, 200, 300]
        assert data["results"].shape == (3, 1) and data["ep_lengths"].tolist() == [[50], [50], [50]]
        best = float(data["results"].mean(axis=1).max())
    result = evaluate_run(tracked_run, n_episodes=1, best=True)
    assert result.model_path.name == "best_model.zip"
    with (tracked_run / "metrics.csv").open(newline="") as handle:
        means = [float(row["eval_return_mean"]) for row in csv.DictReader(handle)]
    assert best == pytest.approx(max(means), rel=1e-5)


def test_evaluate_records_a_video(tracked_run: Path, run_cli: Callable[..., Any], tmp_path: Path) -> None:
    pytest.importorskip("moviepy")
    pytest.importorskip("pygame")
    done = run_cli("evaluate", tracked_run, "--episodes", "1", "--video", tmp_path / "videos", "--video-length", "20")
    assert done.returncode == 0, done.stderr
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000
    assert f"video: {videos[0]}" in done.stdout


def test_compare_plots_runs_and_sweeps(tracked_run: Path, run_cli: Callable[..., Any], tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    (sweep / "results").mkdir(parents=True)
    for seed, shift in enumerate((0.0, 10.0, 20.0)):
        record = {"agent": "ANF-SAC", "env": "Pendulum-v1", "noise_fraction": 0.98, "seed": seed,
                  "curve": {"timesteps": [100, 200, 300], "returns": [-1500 + shift, -1000 + shift, -400 + shift]}}
        (sweep / "results" / f"run{seed}.json").write_text(json.dumps(record))
    done = run_cli("compare", tracked_run, sweep, "--out", tmp_path / "curves.png", "--title", "mine")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "curves.png").stat().st_size > 5000
    from sparse_rl.benchmark.compare import load_curves

    curves = load_curves([tracked_run, sweep])
    assert [curve.returns.shape for curve in curves] == [(1, 3), (3, 3)]
    assert curves[1].label == "ANF-SAC · Pendulum-v1 f=0.98 (3 seeds)"
    bad = run_cli("compare", tmp_path / "nothing")
    assert bad.returncode == 2 and "neither a run directory" in bad.stderr


def test_shipped_configs_list_show_copy_and_train_by_name(run_cli: Callable[..., Any], tmp_path: Path) -> None:
    listed = run_cli("configs", "list")
    assert listed.returncode == 0 and "  quick/pendulum_sac_anf\n" in listed.stdout
    shown = run_cli("configs", "show", "quick/pendulum_sac_anf", "--resolved")
    assert yaml.safe_load(shown.stdout)["env"]["id"] == "Pendulum-v1"
    assert run_cli("configs", "copy", "quick/pendulum_sac_anf", "mine").returncode == 0
    assert (tmp_path / "mine" / "quick" / "pendulum_sac_anf.yaml").is_file()
    (tmp_path / "one").mkdir()
    assert run_cli("configs", "copy", "experiments/transfer/halfcheetah_sac_anf", "one").returncode == 0
    copied = yaml.safe_load((tmp_path / "one" / "halfcheetah_sac_anf.yaml").read_text())
    assert "defaults" not in copied and copied["env"]["id"] == "HalfCheetah-v5"
    mine = tmp_path / "mine.yaml"
    mine.write_text("defaults: [mine/base.yaml]\nmethod: anf_sac\nenv: {id: Hopper-v5, noise_fraction: 0.9}\n")
    resolved = yaml.safe_load(run_cli("configs", "show", mine, "--resolved").stdout)  # a file; the method expanded
    assert resolved["agent"]["hyperparams"]["policy_kwargs"]["weight_init"] == "xavier_uniform"
    assert resolved["env"]["noise_fraction"] == 0.9 and resolved["total_timesteps"] == 1_025_000
    missing = run_cli("configs", "show", "quick/pendulum_sac_anff")
    assert missing.returncode == 2 and "did you mean quick/pendulum_sac_anf" in missing.stderr
    from sparse_rl.experiment.shipped_configs import resolve_config_path

    assert Path(resolve_config_path("quick/pendulum_sac_anf")).is_file()


def test_version(run_cli: Callable[..., Any]) -> None:
    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.startswith("sparse-rl ")


def test_demo_hint_says_how_to_call_sparse_rl_outside_an_active_venv(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    import sys

    from sparse_rl.cli import command_hint

    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "sparse-rl").write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "executable", str(venv_bin / "python"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin")
    command, note = command_hint()
    assert command == ".venv/bin/sparse-rl" and "source .venv/bin/activate" in note
    monkeypatch.setenv("PATH", str(venv_bin))
    (venv_bin / "sparse-rl").chmod(0o755)
    assert command_hint() == ("sparse-rl", "")


def test_a_sweep_planned_before_the_new_config_keys_resumes(tiny_config: Factory, tmp_path: Path) -> None:
    from sparse_rl.benchmark.spec import RunTask
    from sparse_rl.benchmark.sweep import check_plan

    config = config_from_dict(tiny_config()).to_dict()
    old = {key: value for key, value in config.items() if key not in ("n_envs", "vec_env")}
    new_run_keys = ("log_formats", "track", "wandb_project", "wandb_entity")
    old["run"] = {key: value for key, value in config["run"].items() if key not in new_run_keys}
    (tmp_path / "plan.json").write_text(json.dumps({"runs": {"r0": old}}))
    task = RunTask("r0", "ANF", "Pendulum", 0.5, 1, config, "runs/r0")
    check_plan(tmp_path, [task])  # no error: the absent keys take their defaults
    with pytest.raises(ConfigError, match="another config"):
        check_plan(tmp_path, [RunTask("r0", "ANF", "Pendulum", 0.5, 1, {**config, "seed": 5}, "runs/r0")])


def test_a_resumed_run_goes_on_with_its_evaluations(tiny_config: Factory) -> None:
    from sparse_rl.experiment.runner import resume

    run_dir = train(config_from_dict(tiny_config(total_timesteps=200, snapshots={"enabled": False}))).run_dir
    resume(run_dir, ["total_timesteps=300"])
    with np.load(run_dir / "evaluations.npz") as data:
        assert data["timesteps"].tolist() == [100, 200, 300] and data["results"].shape == (3, 1)
    assert (run_dir / "best_model.zip").is_file()
