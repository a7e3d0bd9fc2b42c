"""Issue 24: the last rough edges a new user and a fault meet. Each test reproduces one of them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sparse_rl.cli import main
from tests.conftest import cli_env, copy_run

Factory = Callable[..., dict[str, Any]]


def _error(capsys: pytest.CaptureFixture[str], argv: list[Any], code: int = 2) -> str:
    assert main([str(arg) for arg in argv]) == code
    err = capsys.readouterr().err
    assert "error: " in err and "Traceback" not in err, err
    return " ".join(err[err.index("error: "):].split())


# --------------------------------------------------------------------------------------------------
# 5. a closed pipe; 20. a Ctrl-C during the exit handlers


def test_a_command_piped_into_head_exits_quietly(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "sparse_rl.cli", "configs", "list"], cwd=tmp_path,
                               env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the command writes a line (`| head -0`)
    stderr = process.stderr.read()
    assert process.wait(timeout=300) == 141
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "Exception ignored" not in stderr, stderr


def test_a_ctrl_c_during_the_exit_handlers_exits_quietly(tmp_path: Path) -> None:
    script = ("import atexit, os, signal, sys, time\n"
              # as from a terminal: a runner started in the background (`cmd &`) passes SIGINT ignored
              "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              "from sparse_rl.cli import main\n"
              "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(2)))\n"
              "sys.argv = ['sparse-rl', 'configs', 'show', 'base']\n"
              "sys.exit(main())\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 130
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr, done.stderr


# --------------------------------------------------------------------------------------------------
# 1, 2, 9. evaluate --video


def test_a_video_path_that_cannot_be_written_is_refused_before_loading(capsys: pytest.CaptureFixture[str],
                                                                        finished_run: Path, tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    message = _error(capsys, ["evaluate", finished_run, "--best", "--video", tmp_path / "a_file" / "videos"])
    assert "cannot create the video directory" in message and "a_file" in message
    message = _error(capsys, ["evaluate", finished_run, "--video", tmp_path / "clip.gif"])
    assert "clip.gif" in message and "MP4" in message
    assert "--video-length must be >= 1" in _error(capsys, ["evaluate", finished_run, "--video", "--video-length", 0])
    if Path("/proc").is_dir():
        assert "/proc/forbidden" in _error(capsys, ["evaluate", finished_run, "--best", "--video", "/proc/forbidden"])


def test_a_video_path_ending_in_mp4_is_the_file_and_sdl_prints_nothing(finished_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("moviepy")
    pytest.importorskip("pygame")
    env = {name: value for name, value in cli_env().items()
           if name not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER", "XDG_RUNTIME_DIR")}
    target = tmp_path / "sub" / "myvideo.mp4"
    done = subprocess.run([sys.executable, "-m", "sparse_rl.cli", "evaluate", str(finished_run), "--episodes", "1",
                           "--video", str(target), "--video-length", "10"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert target.is_file() and target.stat().st_size > 1000
    assert list(target.parent.iterdir()) == [target]  # no temporary directory left
    assert f"video: {target}" in done.stdout
    assert "error:" not in done.stderr and "XDG_RUNTIME_DIR" not in done.stderr, done.stderr


# --------------------------------------------------------------------------------------------------
# 3. a checkpoint stores the replay buffer's filled rows only; 17, 19. its files are checked, no pickle


def test_a_checkpoint_stores_only_the_filled_rows_of_the_replay_buffer(tiny_config: Factory) -> None:
    import json

    import numpy as np

    from sparse_rl.experiment.checkpoint import latest_checkpoint, load_model
    from sparse_rl.experiment.config import config_from_dict
    from sparse_rl.experiment.runner import agent_class, build_env, train

    config = config_from_dict(tiny_config(total_timesteps=200, agent={"hyperparams": {"buffer_size": 1_000_000}}))
    run_dir = train(config).run_dir
    found = latest_checkpoint(run_dir)
    assert found is not None
    meta = json.loads((found.path / "replay_buffer.json").read_text())
    assert meta["pos"] == 200 and meta["rows"] == 200 and not meta["full"]
    with np.load(found.path / "replay_buffer.npz", allow_pickle=False) as data:
        assert data["observations"].shape[0] == 200 and data["observations"].dtype == np.float32
        saved = data["observations"]
    assert (found.path / "replay_buffer.npz").stat().st_size < 200_000  # not a million empty slots
    model = load_model(found, agent_class(config), build_env(config, config.seed), "cpu")
    assert model.replay_buffer.pos == 200 and model.replay_buffer.observations.shape[0] == 1_000_000
    assert np.array_equal(model.replay_buffer.observations[:200], saved)


def _plant(checkpoint: Path, name: str, content: bytes) -> None:
    """Write ``content`` into the checkpoint's file ``name`` and record it in the manifest (so that
    only the content check can catch it)."""
    import json

    from sparse_rl._util.rundir import sha256

    (checkpoint / name).write_bytes(content)
    manifest = json.loads((checkpoint / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": sha256(checkpoint / name), "bytes": len(content)}
    (checkpoint / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(("change", "message"), [
    ({"pos": 1e9}, "replay_buffer.json's 'pos' is 1000000000.0"),
    ({"pos": 10**9}, "replay_buffer.json's 'pos' is 1000000000, not an integer in [0, 2000)"),
    ({"full": "yes"}, "replay_buffer.json's 'full' is 'yes'"),
    ({"arrays": "observations"}, "'arrays' is not a list"),
])
def test_a_replay_buffer_json_with_wrong_contents_exits_2_naming_it(
        capsys: pytest.CaptureFixture[str], finished_run: Path, tmp_path: Path, change: dict[str, Any],
        message: str) -> None:
    import json

    run_dir = copy_run(finished_run, tmp_path)
    checkpoint = run_dir / "checkpoints" / "step_200"
    meta = json.loads((checkpoint / "replay_buffer.json").read_text())
    _plant(checkpoint, "replay_buffer.json", json.dumps({**meta, **change}).encode())
    error = _error(capsys, ["train", "--resume", run_dir, "--set", "total_timesteps=300"])
    assert message in error and "step_200" in error


def test_a_planted_replay_buffer_pickle_is_never_unpickled(capsys: pytest.CaptureFixture[str], finished_run: Path,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import pickle

    class Boom:
        def __reduce__(self) -> Any:
            return (os.system, (f"touch {tmp_path / 'planted'}",))

    run_dir = copy_run(finished_run, tmp_path)
    checkpoint = run_dir / "checkpoints" / "step_200"
    for name in ("replay_buffer.npz", "replay_buffer.json"):
        (checkpoint / name).unlink()
    import json

    manifest = json.loads((checkpoint / "manifest.json").read_text())
    for name in ("replay_buffer.npz", "replay_buffer.json"):
        del manifest["files"][name]
    (checkpoint / "manifest.json").write_text(json.dumps(manifest))
    _plant(checkpoint, "replay_buffer.pkl", pickle.dumps(Boom()))
    error = _error(capsys, ["train", "--resume", run_dir, "--set", "total_timesteps=300"])
    assert "replay_buffer.pkl" in error and "does not load" in error
    assert not (tmp_path / "planted").exists()


def test_a_checkpoint_of_format_1_is_refused_as_made_by_an_older_version(capsys: pytest.CaptureFixture[str],
                                                                         finished_run: Path, tmp_path: Path) -> None:
    import json

    run_dir = copy_run(finished_run, tmp_path)
    manifest_path = run_dir / "checkpoints" / "step_200" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "format_version": 1}))
    error = _error(capsys, ["train", "--resume", run_dir, "--set", "total_timesteps=300"])
    assert "made by an older version of sparse_rl (checkpoint format 1" in error and "config.yaml" in error


# --------------------------------------------------------------------------------------------------
# 6, 7. shipped names everywhere, with a did-you-mean; configs list says what each config is


def test_benchmark_takes_a_shipped_sweep_by_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["benchmark", "bench/quick", "--dry-run", "--out", str(tmp_path / "sweep")]) == 0
    assert "12 runs: 0 done, 12 to run" in capsys.readouterr().err
    assert "did you mean bench/quick" in _error(capsys, ["benchmark", "bench/quik"])
    assert "is a single run's config" in _error(capsys, ["benchmark", "quick/pendulum_sac_anf"])


def test_train_gives_a_did_you_mean_and_refuses_fragments_and_sweeps(capsys: pytest.CaptureFixture[str]) -> None:
    message = _error(capsys, ["train", "quick/pendulum_sac_anff"])
    assert "does not exist" in message and "did you mean quick/pendulum_sac_anf" in message
    assert "'base' is a fragment" in _error(capsys, ["train", "base"])
    assert "'bench/quick' is a sweep: run it with sparse-rl benchmark" in _error(capsys, ["train", "bench/quick"])


def test_configs_list_separates_runs_sweeps_and_fragments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["configs", "list"]) == 0
    out = capsys.readouterr().out
    runs, rest = out.split("\nsweeps ", 1)
    sweeps, fragments = rest.split("\nfragments ", 1)
    assert "  quick/pendulum_sac_anf\n" in runs and "  experiments/transfer/halfcheetah_sac_anf\n" in runs
    assert "  bench/quick" in sweeps and "  base\n" not in runs
    assert "  base\n" in fragments and "  sparsity/anf\n" in fragments and "  quick/parts/sac\n" in fragments


def test_configs_show_points_at_resolved_and_copy_counts_its_files(capsys: pytest.CaptureFixture[str],
                                                                   tmp_path: Path) -> None:
    assert main(["configs", "show", "quick/pendulum_sac_anf"]) == 0
    assert "sparse-rl configs show quick/pendulum_sac_anf --resolved" in capsys.readouterr().out
    assert main(["configs", "copy", "quick/pendulum_sac_anf", str(tmp_path / "mine")]) == 0
    copied = sum(1 for path in (tmp_path / "mine").rglob("*") if path.is_file())
    assert f"copied the shipped configs ({copied} files)" in capsys.readouterr().out and copied > 10
    (tmp_path / "a_file").write_text("x")
    assert "a_file" in _error(capsys, ["configs", "copy", "quick/pendulum_sac_anf", tmp_path / "a_file" / "x"])


# --------------------------------------------------------------------------------------------------
# 17. damaged run directories: exit 2 naming the file


def _plant_json(checkpoint: Path, name: str, change: Callable[[Any], Any]) -> None:
    import json

    _plant(checkpoint, name, json.dumps(change(json.loads((checkpoint / name).read_text()))).encode())


@pytest.mark.parametrize(("damage", "message"), [
    (lambda run: (run / "metrics.csv").write_bytes(b"\xff\xfe\x00garbage\x80\x81"), "metrics.csv' is damaged"),
    (lambda run: (run / "topology.csv").write_bytes(b"\xff\xfe\x00garbage\x80\x81"), "topology.csv' is damaged"),
    (lambda run: __import__("numpy").savez(run / "evaluations.npz",
                                           timesteps=__import__("numpy").array([object()], dtype=object)),
     "evaluations.npz' is not an evaluations archive"),
    (lambda run: (run / "evaluations.npz").write_bytes(b"garbage"), "evaluations.npz' is not an evaluations archive"),
    (lambda run: _plant_json(run / "checkpoints" / "step_200", "state.json",
                             lambda state: {**state, "num_timesteps": "200"}), "state.json's 'num_timesteps' is '200'"),
    (lambda run: _plant_json(run / "checkpoints" / "step_200", "state.json",
                             lambda state: {**state, "env_state": "x"}), "'env_state' is not a list"),
    (lambda run: _plant_json(run / "checkpoints" / "step_200", "rng.json",
                             lambda rng: {**rng, "torch": [1, 2, 3]}), "rng.json holds no valid generator states"),
    (lambda run: _plant_json(run / "checkpoints" / "step_200", "rng.json", lambda rng: "garbage"),
     "rng.json holds no valid generator states"),
    (lambda run: _plant_json(run / "checkpoints" / "step_200", "rng.json",
                             lambda rng: {**rng, "python": [3, [1, 2], None]}), "rng.json holds no valid generator"),
])
def test_a_damaged_run_directory_exits_2_naming_the_file_on_resume(
        capsys: pytest.CaptureFixture[str], finished_run: Path, tmp_path: Path, damage: Callable[[Path], Any],
        message: str) -> None:
    run_dir = copy_run(finished_run, tmp_path)
    damage(run_dir)
    config = (run_dir / "config.yaml").read_bytes()
    assert message in _error(capsys, ["train", "--resume", run_dir, "--set", "total_timesteps=300"])
    assert (run_dir / "config.yaml").read_bytes() == config


def test_compare_refuses_damaged_runs_unwritable_outputs_formats_and_label_counts(
        capsys: pytest.CaptureFixture[str], finished_run: Path, tmp_path: Path) -> None:
    run_dir = copy_run(finished_run, tmp_path)
    out = tmp_path / "c.png"
    assert "unsupported format '.xyz'" in _error(capsys, ["compare", run_dir, "-o", tmp_path / "curves.xyz"])
    assert "2 label(s) for 1 path(s)" in _error(capsys, ["compare", run_dir, "--labels", "a", "b", "-o", out])
    (tmp_path / "a_file").write_text("x")
    assert "a_file" in _error(capsys, ["compare", run_dir, "-o", tmp_path / "a_file" / "c.png"])
    assert not out.exists()
    (run_dir / "metrics.csv").write_bytes(b"\xff\xfe\x00garbage\x80\x81")
    message = _error(capsys, ["compare", run_dir, "-o", out])
    assert "metrics.csv" in message and not out.exists()


# --------------------------------------------------------------------------------------------------
# 11. what the README and SB3's format promise


def test_evaluations_npz_ep_lengths_are_int64_as_sb3_writes_them(finished_run: Path) -> None:
    import numpy as np

    with np.load(finished_run / "evaluations.npz", allow_pickle=False) as data:
        assert data["ep_lengths"].dtype == np.int64 and data["ep_lengths"].tolist() == [[50], [50]]
        assert data["timesteps"].dtype == np.int64 and data["results"].dtype == np.float64


def test_the_analysis_plots_import_from_sparse_rl_analysis_and_backends_are_as_documented() -> None:
    from sparse_rl.analysis import load_snapshots, plot_real_share
    from sparse_rl.sparse import SparseLinear
    from sparse_rl.sparse.layers import make_sparse_linear

    assert callable(plot_real_share) and callable(load_snapshots)
    assert SparseLinear(1700, 256, density=0.05).backend == "masked"  # README: SparseLinear itself builds masked
    assert SparseLinear(1700, 256, density=0.05, backend="auto").backend == "csr"
    assert make_sparse_linear(1700, 256, density=0.05).backend == "csr"  # auto, the default there


def test_rich_is_not_a_dependency() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    assert not [name for name in project["dependencies"] if name.startswith("rich")]  # nothing imports it


# --------------------------------------------------------------------------------------------------
# 14, 15. checked at config time, before a run directory exists, naming the key


@pytest.mark.parametrize(("override", "message"), [
    ("agent.hyperparams.learning_rate=.inf", "agent.hyperparams.learning_rate must be a finite number > 0, got inf"),
    ("agent.hyperparams.learning_rate=.nan", "agent.hyperparams.learning_rate must be a finite number > 0"),
    ("eval.seed=-1", "eval.seed must be an integer in [0, 4294967295], got -1"),
    ("seed=-3", "seed must be an integer in [0, 4294967295], got -3"),
    ("env.make_kwargs={max_episode_steps: -1}", "env.make_kwargs.max_episode_steps must be an integer >= 1"),
    ("env.make_kwargs={max_episode_steps: 0}", "env.make_kwargs.max_episode_steps must be an integer >= 1"),
    ("total_timesteps=1e23", "total_timesteps must be <= 1e+10"),
    ("n_envs=1000000", "n_envs must be <= 1024"),
    ("sparsity={preset: dense, density: 0.1}", "sparsity.density is set, but this config's networks are dense"),
    ("sparsity.drop_schedule=linear", "sparsity.drop_schedule: unknown drop schedule 'linear'"),
    ("sparsity.update_stop=-1", "sparsity.update_stop must be an integer >= 0, got -1"),
    ("sparsity.update_interval=0", "sparsity.update_interval must be an integer >= 1, got 0"),
])
def test_bad_values_exit_2_naming_the_key_before_a_run_directory_exists(
        capsys: pytest.CaptureFixture[str], tiny_yaml: Callable[..., Path], tmp_path: Path, override: str,
        message: str) -> None:
    assert message in _error(capsys, ["train", tiny_yaml(), "--set", override])
    assert not (tmp_path / "runs").exists()


def test_an_env_without_a_time_limit_needs_one(tiny_config: Factory, tmp_path: Path) -> None:
    import gymnasium as gym

    from sparse_rl.experiment.config import config_from_dict
    from sparse_rl.experiment.errors import ConfigError

    gym.register(id="NoLimitPendulum-v0", entry_point="gymnasium.envs.classic_control:PendulumEnv")
    try:
        data = tiny_config(env={"id": "NoLimitPendulum-v0"})
        data["env"]["make_kwargs"] = {}
        with pytest.raises(ConfigError, match="'NoLimitPendulum-v0' has no time limit.*env.make_kwargs.max_episode"):
            config_from_dict(data)
        config_from_dict(tiny_config(env={"id": "NoLimitPendulum-v0", "make_kwargs": {"max_episode_steps": 9}}))
    finally:
        del gym.registry["NoLimitPendulum-v0"]


def test_the_memory_check_counts_the_envs_and_the_cgroup_limit(tiny_config: Factory, tmp_path: Path) -> None:
    from sparse_rl.experiment.config import config_from_dict
    from sparse_rl.experiment.errors import ConfigError
    from sparse_rl.experiment.resources import available_memory, check_resources, estimate_memory

    one = estimate_memory(config_from_dict(tiny_config()), n_real=3)
    many = estimate_memory(config_from_dict(tiny_config(n_envs=1000, vec_env="subproc")), n_real=3)
    assert many.total - one.total > 100 * 2**30  # a Python process per env
    with pytest.raises(ConfigError, match=r"n_envs=1000 makes .* GiB of memory is available"):
        check_resources(config_from_dict(tiny_config(n_envs=1000, vec_env="subproc", env={"noise_fraction": 0.0})),
                        available=8 << 30)

    proc, cgroup = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text("MemTotal: 67108864 kB\nMemAvailable: 62914560 kB\n")  # 60 GiB free
    (proc / "self" / "cgroup").write_text("0::/job\n")
    (cgroup / "job").mkdir(parents=True)
    (cgroup / "job" / "memory.max").write_text(f"{8 << 30}\n")
    (cgroup / "job" / "memory.current").write_text(f"{1 << 30}\n")
    assert available_memory(cgroup, proc) == 7 << 30  # the cgroup's limit, not the machine's free memory
    (cgroup / "job" / "memory.max").write_text("max\n")
    assert available_memory(cgroup, proc) == 60 << 30


# --------------------------------------------------------------------------------------------------
# 4. --track without wandb; 16. read-only and full output directories


def test_track_without_wandb_fails_before_a_run_directory_exists(capsys: pytest.CaptureFixture[str],
                                                                  tiny_yaml: Callable[..., Path], tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # not installed
    assert "needs Weights & Biases" in _error(capsys, ["train", tiny_yaml(), "--track"])
    assert not (tmp_path / "runs").exists()


def test_a_full_disk_when_the_run_directory_is_made_exits_4_and_leaves_nothing(
        capsys: pytest.CaptureFixture[str], tiny_yaml: Callable[..., Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import sparse_rl._util.rundir as rundir

    def full(config: Any, run_dir: Path) -> None:
        (run_dir / ".config.yaml.tmp").write_text("partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(run_dir / ".config.yaml.tmp"))

    monkeypatch.setattr(rundir, "write_config", full)
    message = _error(capsys, ["train", tiny_yaml()], code=4)
    assert "No space left on device (the disk is full)" in message
    assert list((tmp_path / "runs").iterdir()) == []


def test_benchmark_refuses_an_out_directory_it_cannot_write_before_training(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    (tmp_path / "a_file").write_text("x")
    message = _error(capsys, ["benchmark", "bench/quick", "--out", tmp_path / "a_file" / "sweep"])
    assert "a_file' is a file" in message
    read_only = tmp_path / "ro"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == read_only else real_access(path, mode))
    message = _error(capsys, ["benchmark", "bench/quick", "--out", read_only / "sweep"])
    assert "is read-only" in message and not (read_only / "sweep").exists()


# --------------------------------------------------------------------------------------------------
# 19. symbolic links out of the run are refused; a run can be checked before anything of it is loaded


@pytest.mark.parametrize("name", ["metrics.csv", ".lock"])
def test_a_symlink_leaving_the_run_directory_is_refused_and_nothing_is_written_through_it(
        capsys: pytest.CaptureFixture[str], finished_run: Path, tmp_path: Path, name: str) -> None:
    run_dir = copy_run(finished_run, tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    (run_dir / name).unlink(missing_ok=True)
    (run_dir / name).symlink_to(outside)
    for argv in (["train", "--resume", run_dir, "--set", "total_timesteps=300"], ["evaluate", run_dir],
                 ["analyze", run_dir, "--no-gif"]):
        message = _error(capsys, argv)
        assert "symbolic link that leaves it" in message and name in message
    assert outside.read_text() == "precious\n"
    (run_dir / name).unlink()
    (run_dir / name).symlink_to(run_dir / "config.yaml")  # a link inside the run is fine
    (run_dir / "wandb" / "logs").mkdir(parents=True)
    (run_dir / "wandb" / "logs" / "debug.log").symlink_to(outside)  # W&B's own links to its logs are too
    assert main(["verify", str(run_dir)]) == 0


def test_verify_checks_the_digests_without_loading_anything(capsys: pytest.CaptureFixture[str], finished_run: Path,
                                                           tmp_path: Path) -> None:
    from sparse_rl._util.rundir import sha256

    run_dir = copy_run(finished_run, tmp_path)
    assert main(["verify", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "2 checkpoint(s) match their manifests (step_100, step_200)" in out
    assert f"{sha256(run_dir / 'model.zip')}  model.zip  (" in out and "pickled values)" in out
    state = run_dir / "checkpoints" / "step_100" / "state.json"
    state.write_text(state.read_text().replace('"episodes"', '"episodez"'))
    (run_dir / "best_model.zip").write_bytes(b"not a zip")
    message = _error(capsys, ["verify", run_dir])
    assert "step_100" in message and "state.json does not match the sha256" in message
    assert "best_model.zip is not an SB3 model archive" in message


# --------------------------------------------------------------------------------------------------
# 18. the Python API checks its arguments, naming them


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((0, 5), {}, "in_features must be an integer >= 1, got 0"),
    ((10, 0), {}, "out_features must be an integer >= 1, got 0"),
    ((-1, 5), {}, "in_features must be an integer >= 1, got -1"),
    ((10.5, 5), {}, "in_features must be an integer >= 1, got 10.5"),
    (("10", 5), {}, "in_features must be an integer >= 1, got '10'"),
    ((10, 5), {"density": "0.5"}, "density must be a number in (0, 1], got '0.5'"),
    ((10, 5), {"density": True}, "density must be a number in (0, 1], got True"),
    ((10, 5), {"density": 1.5}, "density must be in (0, 1], got 1.5"),
])
def test_sparse_linear_checks_its_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    import re

    from sparse_rl.sparse import SparseLinear
    from sparse_rl.sparse.layers import MaskedSparseLinear

    with pytest.raises(ValueError, match=re.escape(message)):
        SparseLinear(*args, **kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        MaskedSparseLinear(*args, **kwargs)


def test_sparse_linear_takes_numpy_integers() -> None:
    import numpy as np

    from sparse_rl.sparse import SparseLinear

    layer = SparseLinear(np.int64(10), np.int32(4), density=0.5)
    assert (layer.in_features, layer.out_features) == (10, 4) and type(layer.in_features) is int


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sparsity": 5}, "sparsity must be a preset name"),
    ({"sparsity": ["anf"]}, "sparsity must be a preset name"),
    ({"store_noise": "yes"}, "store_noise must be True or False, got 'yes'"),
])
def test_sparse_agents_check_sparsity_and_store_noise(kwargs: dict[str, Any], message: str) -> None:
    from sparse_rl.agents import SparseSAC

    with pytest.raises(ValueError, match=message):
        SparseSAC("MlpPolicy", "Pendulum-v1", **kwargs)


def test_store_noise_in_a_config_must_be_a_bool(capsys: pytest.CaptureFixture[str],
                                                tiny_yaml: Callable[..., Path]) -> None:
    assert "'agent.hyperparams.store_noise' expects bool, got 'maybe'" in _error(
        capsys, ["train", tiny_yaml(), "--set", "agent.hyperparams.store_noise=maybe"])


def test_divergence_before_any_checkpoint_does_not_suggest_resuming(capsys: pytest.CaptureFixture[str],
                                                                    tiny_yaml: Callable[..., Path]) -> None:
    argv = ["train", tiny_yaml(total_timesteps=1000, checkpoint={"freq": 0}), "--set",
            "agent.hyperparams.learning_rate=1e30"]
    message = _error(capsys, argv, code=3)
    assert "no checkpoint had been written, so there is nothing to resume" in message and "--resume" not in message


# --------------------------------------------------------------------------------------------------
# 8. summary.md says what ran, from the runs' own records


def test_the_summary_states_what_ran_not_only_the_sweep_files_description(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import sparse_rl.benchmark.results as results

    monkeypatch.setattr(results, "summary_table", lambda records, agents: "")
    records = [{"agent": agent, "env": "Pendulum-v1", "noise_fraction": fraction, "seed": seed, "timesteps": 2000}
               for agent in ("ANF-SAC", "SAC") for fraction in (0.0, 0.98) for seed in (0, 1)]
    path = results.write_summary(records, tmp_path / "summary.md", name="quick", agents=["ANF-SAC", "SAC"],
                                 description="3 seeds, 15k env steps", planned=12)
    text = " ".join(path.read_text().split())
    assert "The sweep file's description: 3 seeds, 15k env steps" in text
    assert ("What ran (the runs' own records): agents ANF-SAC, SAC; envs Pendulum-v1 at noise fractions 0.0, 0.98; "
            "2 seeds (0, 1); 2,000 env steps each") in text


# --------------------------------------------------------------------------------------------------
# 12. the demo's return comes with a yardstick


def test_the_demo_says_what_random_and_solved_score(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["demo", "--root", str(tmp_path), "--no-progress", "--set", "total_timesteps=150", "net_arch=[16, 16]",
                 "agent.hyperparams.learning_starts=50", "eval.freq=0", "eval.n_episodes=1"])
    out = capsys.readouterr().out
    assert code == 0 and "final evaluation return: " in out
    assert "yardstick on Pendulum-v1 (higher is better): a random policy scores about -1,200" in out
