"""The benchmark: statistics on known data, network costs, sweep files and their errors, a tiny sweep
end to end on the local process pool and on a local Ray instance, and resuming a half-done sweep."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from sparse_rl.benchmark import LocalBackend, auc, bootstrap_ci, iqm, load_sweep, make_backend, plan_runs, run_sweep
from sparse_rl.benchmark.backends import Backend
from sparse_rl.benchmark.costs import network_cost
from sparse_rl.benchmark.results import result_fields
from sparse_rl.benchmark.stats import curve_band
from sparse_rl.cli import main
from sparse_rl.experiment.errors import ConfigError, UserError
from sparse_rl.sparse.layers import SparseLinear

REPO = Path(__file__).resolve().parent.parent

#: two agents (ANF-SAC and SB3's own SAC) x Pendulum at f = 0.9 x 2 seeds, 200 steps each
TINY_SWEEP: dict[str, Any] = {
    "name": "tiny",
    "description": "a tiny sweep for the tests",
    "agents": {"ANF-SAC": {"configs": ["base.yaml"]},
               "SAC": {"configs": ["base.yaml"], "set": {"sparsity": "dense", "agent.implementation": "sb3"}}},
    "envs": {"Pendulum-v1": {}},
    "noise_fractions": [0.9],
    "seeds": 2,
}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory, tiny_defaults: dict[str, Any]) -> Path:
    """A directory holding ``base.yaml`` (a tiny run of 200 steps) and ``tiny.yaml`` (the sweep)."""
    directory = tmp_path_factory.mktemp("sweep")
    base = {**tiny_defaults, "total_timesteps": 200, "snapshots": {"enabled": False}}
    (directory / "base.yaml").write_text(yaml.safe_dump(base), encoding="utf-8")
    (directory / "tiny.yaml").write_text(yaml.safe_dump(TINY_SWEEP, sort_keys=False), encoding="utf-8")
    return directory


def _write_sweep(directory: Path, **changes: Any) -> Path:
    data = {**TINY_SWEEP, **changes}
    path = directory / f"sweep_{abs(hash(json.dumps(data, sort_keys=True)))}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------------------------------
# statistics


def test_bootstrap_ci_contains_the_mean_and_is_reproducible() -> None:
    values = [1.0, 2.0, 4.0, 8.0, 3.0]
    low, high = bootstrap_ci(values)
    assert low < np.mean(values) < high
    assert min(values) <= low and high <= max(values)
    assert bootstrap_ci(values) == (low, high)  # seeded
    narrow = bootstrap_ci(values, confidence=0.5)
    assert low <= narrow[0] <= narrow[1] <= high
    assert bootstrap_ci([3.0]) == (3.0, 3.0)
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert all(np.isnan(bootstrap_ci([])))
    assert bootstrap_ci([1.0, float("nan"), 3.0]) == bootstrap_ci([1.0, 3.0])
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
        bootstrap_ci(values, confidence=95)


def test_iqm_of_known_arrays() -> None:
    assert iqm([1.0, 2.0, 3.0]) == 2.0  # fewer than 4 values: nothing cut, the mean
    assert iqm([4.0, 1.0, 3.0, 2.0]) == 2.5  # cut 1 from each end: mean of 2, 3
    assert iqm([0, 1, 2, 3, 100, 5, 6, 7]) == 4.0  # cut 2 each end: mean of 2, 3, 5, 6
    assert iqm([-1000.0, 1.0, 2.0, 3.0, 1000.0]) == 2.0  # outliers do not move it
    assert np.isnan(iqm([]))


def test_auc_of_known_curves() -> None:
    assert auc([0, 10], [0.0, 10.0]) == 5.0  # a line from 0 to 10: mean height 5
    assert auc([0, 10], [0.0, 10.0], normalize=False) == 50.0
    assert auc([0, 1, 3], [2.0, 2.0, 2.0]) == 2.0
    assert auc([0, 1, 3], [0.0, 1.0, 1.0], normalize=False) == 2.5
    assert auc([5], [7.0]) == 7.0
    with pytest.raises(ValueError, match="increasing"):
        auc([2, 1], [0.0, 1.0])
    with pytest.raises(ValueError, match="same length"):
        auc([1, 2], [0.0])


def test_curve_band_brackets_the_mean_curve() -> None:
    curves = np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 4.0], [1.0, 2.0, 9.0]])
    mean, low, high = curve_band(curves)
    np.testing.assert_allclose(mean, [1.0, 2.0, 5.0])
    assert np.all(low <= mean) and np.all(mean <= high) and np.all(low < high)


# --------------------------------------------------------------------------------------------------
# network costs


def test_network_cost_counts_only_active_weights() -> None:
    torch.manual_seed(0)
    network = torch.nn.Sequential(SparseLinear(10, 4, density=0.5), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    cost = network_cost(network)
    assert cost.weights == 20 + 8 and cost.dense_weights == 40 + 8 and cost.biases == 4 + 2
    assert cost.params == 34 and cost.dense_params == 54
    assert cost.flops == 2 * 28 + 6


# --------------------------------------------------------------------------------------------------
# sweep files and their errors


def test_plan_composes_every_run(sweep_dir: Path) -> None:
    spec = load_sweep(sweep_dir / "tiny.yaml")
    tasks = plan_runs(spec, sweep_dir / "tiny.yaml", sweep_dir / "out", ["eval.n_episodes=2"])
    assert [task.run_id for task in tasks] == ["Pendulum-v1-f0.9-ANF-SAC-s0", "Pendulum-v1-f0.9-SAC-s0",
                                               "Pendulum-v1-f0.9-ANF-SAC-s1", "Pendulum-v1-f0.9-SAC-s1"]
    anf, sac = tasks[0].config, tasks[1].config
    assert anf["agent"]["implementation"] == "sparse_rl" and anf["sparsity"] == {"preset": "anf",
                                                                                 "update_interval": 50}
    assert sac["agent"]["implementation"] == "sb3" and sac["sparsity"] == "dense"
    assert {t.config["env"]["noise_fraction"] for t in tasks} == {0.9} and tasks[2].config["seed"] == 1
    assert all(t.config["eval"]["n_episodes"] == 2 and t.config["torch_threads"] == 1 for t in tasks)
    assert tasks[3].config["run"]["name"] == tasks[3].run_id
    assert Path(tasks[3].run_dir) == (sweep_dir / "out").resolve() / "runs" / tasks[3].run_id


@pytest.mark.parametrize(("changes", "message"), [
    ({"agent": {}}, "unknown sweep key 'agent'; did you mean 'agents'?"),
    ({"seeds": "three"}, "sweep key 'seeds' expects int or list of int, got 'three'"),
    ({"noise_fractions": [0.5, 1.0]}, "a noise fraction must be in [0, 1), got 1.0"),
    ({"agents": {"bad/name": {"configs": ["base.yaml"]}}}, "label 'bad/name' must be a plain name"),
    ({"agents": {"A": {"configs": ["missing.yaml"]}}}, "config file"),
    ({"agents": {"A": {"configs": ["base.yaml"], "set": {"sparsity": "anf", "agent.implementation": "sb3"}}}},
     "run Pendulum-v1-f0.9-A-s0 (agent A, env Pendulum-v1): agent.implementation 'sb3' trains stable_baselines3's "
     "own SAC, whose networks are dense, but sparsity is 'anf'; set sparsity: dense"),
    ({"agents": {"A": {"configs": ["base.yaml"], "set": {"agent.hyperparams.bach_size": 3}}}},
     "did you mean 'agent.hyperparams.batch_size'?"),
])
def test_bad_sweep_files_exit_2_with_a_clear_message(sweep_dir: Path, capsys: pytest.CaptureFixture[str],
                                                    changes: dict[str, Any], message: str) -> None:
    path = _write_sweep(sweep_dir, **changes)
    assert main(["benchmark", str(path), "--out", str(sweep_dir / "never")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (sweep_dir / "never").exists()


def test_missing_ray_says_how_to_install_it(sweep_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(UserError, match=r"pip install 'sparse_rl\[ray\]'"):
        make_backend("ray")
    assert main(["benchmark", str(sweep_dir / "tiny.yaml"), "--backend", "ray", "--out",
                 str(sweep_dir / "never")]) == 2
    assert "pip install 'sparse_rl[ray]'" in capsys.readouterr().err
    with pytest.raises(UserError, match="--address is for the Ray backend"):
        make_backend("local", address="auto")
    with pytest.raises(UserError, match="--workers must be >= 1"):
        LocalBackend(0)


# --------------------------------------------------------------------------------------------------
# a tiny sweep, end to end


@pytest.fixture(scope="module")
def local_sweep(sweep_dir: Path) -> Path:
    """The tiny sweep run on the local backend with 2 worker processes."""
    out = sweep_dir / "local"
    outcome = run_sweep(sweep_dir / "tiny.yaml", out, backend="local", workers=2, log=lambda line: None)
    assert len(outcome.finished) == 4 and not outcome.failed and not outcome.skipped
    return out


def test_local_sweep_writes_results_summary_and_plots(local_sweep: Path) -> None:
    rows = _rows(local_sweep / "results.csv")
    assert list(rows[0]) == list(result_fields())
    assert [row["run_id"] for row in rows] == ["Pendulum-v1-f0.9-ANF-SAC-s0", "Pendulum-v1-f0.9-SAC-s0",
                                               "Pendulum-v1-f0.9-ANF-SAC-s1", "Pendulum-v1-f0.9-SAC-s1"]
    for row in rows:
        assert int(row["timesteps"]) == 200 and float(row["steps_per_second"]) > 0
        assert float(row["final_return"]) < 0 and float(row["auc"]) < 0
        assert int(row["critic_params"]) > int(row["actor_params"]) > 0 and int(row["actor_flops"]) > 0
    anf, sac = rows[0], rows[1]
    assert sac["implementation"] == "sb3" and float(sac["weights_pct_of_dense"]) == 100.0
    assert sac["actor_params"] == sac["actor_dense_params"] and sac["real_share_actor"] == ""
    # ANF: the 30x32 input layers at density 0.2; the rest of the networks dense
    assert anf["implementation"] == "sparse_rl" and float(anf["weights_pct_of_dense"]) < 100.0
    assert int(anf["actor_dense_weights"]) - int(anf["actor_weights"]) == 30 * 32 - 192
    assert anf["actor_dense_weights"] == sac["actor_dense_weights"]
    assert 0.0 < float(anf["real_share_actor"]) < 1.0
    # the filtering metrics: 3 real + 27 noise columns, 32 outputs at density 0.2 (≈ 6.4 per column)
    assert 0 < float(anf["in_degree_real_actor"]) <= 32 and 0 < float(anf["in_degree_noise_critic"]) <= 32
    assert float(anf["in_degree_ratio_actor"]) == pytest.approx(
        float(anf["in_degree_real_actor"]) / float(anf["in_degree_noise_actor"]), rel=1e-4)
    assert 0 <= float(anf["topk_precision_critic"]) <= 1 and sac["in_degree_ratio_actor"] == ""
    run_dir = local_sweep / "runs" / "Pendulum-v1-f0.9-SAC-s1"
    assert (run_dir / "model.zip").is_file() and not (run_dir / "checkpoints").exists()  # keep_checkpoints: false
    record = json.loads((local_sweep / "results" / "Pendulum-v1-f0.9-SAC-s1.json").read_text())
    assert record["curve"]["timesteps"] == [100, 200] and record["status"] == "finished"
    anf_record = json.loads((local_sweep / "results" / "Pendulum-v1-f0.9-ANF-SAC-s1.json").read_text())
    assert len(anf_record["filtering_curve"]["in_degree_real_actor"]) == 2
    summary = (local_sweep / "summary.md").read_text()
    assert "4 of 4 runs finished" in summary
    assert "| Pendulum-v1 | 0.9 | ANF-SAC | 2 |" in summary and "| Pendulum-v1 | 0.9 | SAC | 2 |" in summary
    assert summary.index("| ANF-SAC |") < summary.index("| SAC |")
    assert "in-degree real / noise (actor; critic)" in summary and "× |" in summary
    assert len(record["curve"]["wall_time_s"]) == 2 and record["curve"]["wall_time_s"][1] > 0
    for plot in ("Pendulum-v1.png", "Pendulum-v1-f0.9.png", "filtering-Pendulum-v1-f0.9.png"):
        assert (local_sweep / "plots" / plot).read_bytes()[:4] == b"\x89PNG" and f"(plots/{plot})" in summary


def test_a_changed_sweep_does_not_reuse_the_directory(local_sweep: Path, sweep_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"holds run Pendulum-v1-f0.9-ANF-SAC-s0 with another config "
                                          r"\(total_timesteps is 200 there, 400 here\)"):
        run_sweep(sweep_dir / "tiny.yaml", local_sweep, overrides=["total_timesteps=400"], dry_run=True)
    lines: list[str] = []
    run_sweep(sweep_dir / "tiny.yaml", local_sweep, dry_run=True, log=lines.append)
    assert lines[-1] == "4 runs: 4 done, 0 to run (dry run: nothing trained)"


class RecordingBackend(Backend):
    """Runs tasks in this process, remembering which it was given."""

    name = "recording"

    def __init__(self) -> None:
        self.given: list[str] = []

    def run(self, tasks: Sequence[Any], on_result: Callable[[dict[str, Any]], None]) -> None:
        """Record the run ids, then run them one after the other here."""
        self.given.extend(task["run_id"] for task in tasks)
        LocalBackend(1).run(tasks, on_result)


def test_resume_skips_finished_runs_and_continues_a_killed_one(sweep_dir: Path) -> None:
    sweep = _write_sweep(sweep_dir, agents={"SAC": TINY_SWEEP["agents"]["SAC"]}, keep_checkpoints=True)
    out = sweep_dir / "resume"
    first = RecordingBackend()
    run_sweep(sweep, out, backend=first, log=lambda line: None)
    assert first.given == ["Pendulum-v1-f0.9-SAC-s0", "Pendulum-v1-f0.9-SAC-s1"]
    # as if the sweep had been killed while seed 1 trained: no record, no final model, only step_100
    killed = out / "runs" / "Pendulum-v1-f0.9-SAC-s1"
    (out / "results" / "Pendulum-v1-f0.9-SAC-s1.json").unlink()
    (killed / "model.zip").unlink()
    shutil.rmtree(killed / "checkpoints" / "step_200")
    second = RecordingBackend()
    outcome = run_sweep(sweep, out, backend=second, log=lambda line: None)
    assert second.given == ["Pendulum-v1-f0.9-SAC-s1"] and outcome.skipped == ["Pendulum-v1-f0.9-SAC-s0"]
    record = json.loads((out / "results" / "Pendulum-v1-f0.9-SAC-s1.json").read_text())
    assert record["resumed"] and record["curve"]["timesteps"] == [100, 200]
    state = json.loads((killed / "checkpoints" / "step_200" / "state.json").read_text())
    assert state["resumes"] == 1
    assert len(_rows(out / "results.csv")) == 2
    third = RecordingBackend()
    run_sweep(sweep, out, backend=third, log=lambda line: None)
    assert third.given == []


def test_a_run_another_process_is_training_is_not_trained_twice(sweep_dir: Path) -> None:
    from sparse_rl.benchmark.sweep import SweepIncomplete
    from sparse_rl.experiment.runlock import run_lock, sibling_lock

    sweep = _write_sweep(sweep_dir, agents={"SAC": TINY_SWEEP["agents"]["SAC"]}, seeds=1)
    out = sweep_dir / "locked"
    run_dir = out / "runs" / "Pendulum-v1-f0.9-SAC-s0"
    with run_lock(run_dir, lock_file=sibling_lock(run_dir)):  # as a worker of an earlier, killed sweep
        with pytest.raises(SweepIncomplete, match=rf"being trained by another process \(pid {os.getpid()}"):
            run_sweep(sweep, out, backend=RecordingBackend(), log=lambda line: None)
        assert not run_dir.exists()
    outcome = run_sweep(sweep, out, backend=RecordingBackend(), log=lambda line: None)
    assert outcome.finished == ["Pendulum-v1-f0.9-SAC-s0"]


def test_the_same_sweep_on_a_local_ray_instance(sweep_dir: Path, local_sweep: Path) -> None:
    pytest.importorskip("ray")
    out = sweep_dir / "ray"
    outcome = run_sweep(sweep_dir / "tiny.yaml", out, backend="ray", workers=2, log=lambda line: None)
    assert len(outcome.finished) == 4 and not outcome.failed
    ray_rows, local_rows = _rows(out / "results.csv"), _rows(local_sweep / "results.csv")
    assert [row["run_id"] for row in ray_rows] == [row["run_id"] for row in local_rows]
    for ray_row, local_row in zip(ray_rows, local_rows):  # the same seeds train the same way anywhere
        assert ray_row["final_return"] == local_row["final_return"]
        assert ray_row["actor_weights"] == local_row["actor_weights"]
    assert (out / "summary.md").is_file() and (out / "plots" / "Pendulum-v1.png").is_file()


def test_run_order_plans_groups_of_agents_over_every_seed_in_turn(sweep_dir: Path) -> None:
    path = _write_sweep(sweep_dir, run_order=[["SAC"], ["ANF-SAC"]])
    tasks = plan_runs(load_sweep(path), path, sweep_dir / "out")
    assert [task.run_id for task in tasks] == ["Pendulum-v1-f0.9-SAC-s0", "Pendulum-v1-f0.9-SAC-s1",
                                               "Pendulum-v1-f0.9-ANF-SAC-s0", "Pendulum-v1-f0.9-ANF-SAC-s1"]
    for bad in ([["SAC"]], [["SAC", "ANF-SAC"], ["SAC"]], [["SAC", "ANF-SAC"], []], [["SAC", "DQN"], ["ANF-SAC"]]):
        with pytest.raises(ConfigError, match="'run_order' must list every agent exactly once"):
            load_sweep(_write_sweep(sweep_dir, run_order=bad))


def test_the_bench_tiers_plan(tmp_path: Path) -> None:
    quick = load_sweep(REPO / "configs" / "bench" / "quick.yaml")
    tasks = plan_runs(quick, REPO / "configs" / "bench" / "quick.yaml", tmp_path)
    assert len(quick.seed_list) >= 3 and any(task.config["agent"]["implementation"] == "sb3" for task in tasks)
    assert max(task.noise_fraction for task in tasks) >= 0.9
    full = load_sweep(REPO / "configs" / "bench" / "full.yaml")
    full_tasks = plan_runs(full, REPO / "configs" / "bench" / "full.yaml", tmp_path)
    assert len(full_tasks) == 5 * 5 * 5 * len(full.agents)
    assert {task.config["total_timesteps"] for task in full_tasks} == {1_025_000}  # 25k random + 1M training
    assert {task.noise_fraction for task in full_tasks} == {0.0, 0.9, 0.95, 0.98, 0.99}
    assert (REPO / "scripts" / "benchmark.py").read_text().count("from sparse_rl.cli import main") == 1


def test_time_to_return_is_the_wall_time_of_the_first_evaluation_that_reaches_it(tmp_path: Path) -> None:
    from sparse_rl.benchmark.plots import plot_time_to_return, time_to_return

    record = {"env": "E", "noise_fraction": 0.5, "agent": "A",
              "curve": {"timesteps": [10, 20, 30], "returns": [-5.0, 2.0, 9.0], "wall_time_s": [60.0, 120.0, 180.0]}}
    assert time_to_return(record, 1.0) == 120.0 and time_to_return(record, 9.0) == 180.0
    assert math.isnan(time_to_return(record, 10.0))
    path = plot_time_to_return([record], tmp_path / "t.png", ["A"], {"E": 1.0})
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_sweep_executors_have_their_own_name() -> None:
    from sparse_rl import benchmark
    from sparse_rl.sparse import layers

    assert set(benchmark.EXECUTORS) == {"local", "ray"}
    assert "csr" in layers.BACKENDS  # the sparse layers' storage backends, another thing
