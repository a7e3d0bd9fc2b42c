"""Fault injection (issue 15): training and a sweep killed with SIGKILL at random points, again and
again; afterwards no metrics row is lost or doubled and nothing finished is trained again. Also:
a sweep's workers die with their driver, and a finished run whose record was lost is not retrained."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
Factory = Callable[..., dict[str, Any]]


def _steps(metrics: Path) -> list[int]:
    with metrics.open(newline="") as handle:
        return [int(row["timesteps"]) for row in csv.DictReader(handle)]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, which no init may reap in a container, counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in ("Z", "X")


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_training_killed_at_random_points_loses_and_doubles_no_metrics_row(tmp_path: Path, tiny_config: Factory,
                                                                          start_cli: Any) -> None:
    config = tiny_config(total_timesteps=800, eval={"freq": 50}, checkpoint={"freq": 100, "keep": 1},
                         run={"name": "killed", "progress_bar": False})
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    run_dir = tmp_path / "runs" / "killed"
    chooser = random.Random(15)
    kills = 0
    process = start_cli("train", tmp_path / "run.yaml")
    while kills < 4:
        _wait_for(lambda p=process: p.poll() is not None or (run_dir / ".lock").is_file()
                  and (run_dir / ".lock").read_text().strip() == str(p.pid))  # it holds the run: training
        time.sleep(chooser.uniform(0.0, 1.5))  # anywhere: env steps, gradient steps, evaluation, checkpoint
        if process.poll() is not None:
            break  # finished before this kill
        process.send_signal(signal.SIGKILL)
        process.communicate()
        kills += 1
        process = start_cli("train", "--resume", run_dir)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert kills >= 2
    assert _steps(run_dir / "metrics.csv") == list(range(50, 801, 50))  # each evaluation once, none lost


def test_sweep_workers_die_with_their_driver(tmp_path: Path) -> None:
    driver = textwrap.dedent("""
        import multiprocessing, os, sys, time
        from concurrent.futures import ProcessPoolExecutor
        from sparse_rl.benchmark.execute import init_worker
        def train_long(path):  # as a run that trains for long
            with open(path, "w") as handle:
                handle.write(str(os.getpid()))
            time.sleep(300)
        if __name__ == "__main__":
            pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker,
                                       initargs=(1, os.getpid()))
            for name in ("a", "b"):
                pool.submit(train_long, name + ".pid")
            time.sleep(300)
    """)
    (tmp_path / "driver.py").write_text(driver)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, str(tmp_path / "driver.py")], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    files = [tmp_path / "a.pid", tmp_path / "b.pid"]
    _wait_for(lambda: all(path.is_file() and path.read_text() for path in files))  # both busy in a task
    workers = [int(path.read_text()) for path in files]
    assert all(_alive(pid) for pid in workers)
    process.send_signal(signal.SIGKILL)  # the driver alone, left unreaped (a zombie) for now
    try:
        _wait_for(lambda: not any(_alive(pid) for pid in workers), timeout=15)
    finally:
        process.wait()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_finished_run_whose_record_was_lost_is_not_trained_again(tmp_path: Path, tiny_config: Factory) -> None:
    from sparse_rl.benchmark.execute import execute_run

    run_dir = tmp_path / "runs" / "r"
    task = {"run_id": "r", "agent": "ANF-SAC", "env": "Pendulum-v1", "noise_fraction": 0.5, "seed": 1,
            "config": tiny_config(total_timesteps=200, run={"name": "r"}), "run_dir": str(run_dir),
            "keep_checkpoints": False}
    first = execute_run(task)
    assert first["status"] == "finished" and not (run_dir / "checkpoints").exists()
    trained = {name: (run_dir / name).stat().st_mtime_ns for name in ("model.zip", "metrics.csv")}
    # the driver was killed before it wrote results/r.json: the next sweep runs the task again
    second = execute_run(task)
    assert second["status"] == "finished" and second["final_return"] == first["final_return"]
    assert {name: (run_dir / name).stat().st_mtime_ns for name in trained} == trained  # not retrained


def test_a_sweep_killed_at_random_points_trains_nothing_twice(tmp_path: Path, tiny_defaults: dict[str, Any]) -> None:
    base = {**tiny_defaults, "total_timesteps": 300, "snapshots": {"enabled": False},
            "eval": {"freq": 50, "n_episodes": 1}, "checkpoint": {"freq": 100, "keep": 1}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    sweep = {"name": "faults", "agents": {"ANF-SAC": {"configs": ["base.yaml"]}}, "envs": {"Pendulum-v1": {}},
             "noise_fractions": [0.5], "seeds": 3}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    out = tmp_path / "out"
    chooser = random.Random(16)
    finished: dict[Path, int] = {}  # final model -> its mtime when first seen
    command = [sys.executable, "-m", "sparse_rl.cli", "benchmark", str(tmp_path / "sweep.yaml"), "--workers", "2",
               "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    for attempt in range(3):
        with (tmp_path / f"driver{attempt}.log").open("w") as log:  # a file: an orphan holding it blocks nothing
            process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log)
        _wait_for(lambda p=process: p.poll() is not None or any((out / "runs").glob("*/metrics.csv")), timeout=90)
        time.sleep(chooser.uniform(0.5, 4.0))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)  # the driver alone: its workers must die with it
        process.wait()
        _wait_for(lambda: not any(_locked(path) for path in (out / "runs").glob("*.lock")), 15)  # no orphan
        for model in (out / "runs").glob("*/model.zip"):
            finished.setdefault(model, model.stat().st_mtime_ns)
    last = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert last.returncode == 0, last.stderr
    runs = sorted(path for path in (out / "runs").iterdir() if path.is_dir())
    assert len(runs) == 3 and len(list((out / "results").glob("*.json"))) == 3
    for run in runs:
        assert _steps(run / "metrics.csv") == list(range(50, 301, 50)), run.name
    for model, mtime in finished.items():
        assert model.stat().st_mtime_ns == mtime, f"{model.parent.name} was trained again after it finished"


def _locked(path: Path) -> bool:
    """Whether a process holds the ``flock`` of ``path`` (a worker still alive)."""
    import fcntl

    with path.open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False
