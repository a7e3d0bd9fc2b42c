"""Run one run of a sweep, in whatever process a backend gives it, and summarize it.

:func:`execute_run` takes and returns plain data (picklable for a process pool and for Ray). It
trains the run with :func:`sparse_rl.experiment.runner.train`, or continues it with
:func:`sparse_rl.experiment.runner.resume` when its directory already holds a checkpoint (a sweep killed
half-way), then reads its ``metrics.csv`` and counts its networks. This module imports torch and
Stable-Baselines3 only inside functions, so that a worker sets its thread count first.
"""

from __future__ import annotations

import ctypes
import math
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sparse_rl._util.rundir import RunDir
from sparse_rl.experiment.runlock import RunLocked, run_lock, sibling_lock
from sparse_rl.sparse.connectivity import filtering_keys

#: ``RunLocked`` and ``run_lock`` (now in :mod:`sparse_rl.experiment.runlock`) are still importable from here
__all__ = ["THREAD_VARIABLES", "RunLocked", "die_with_parent", "execute_run", "init_worker", "run_lock",
           "summarize_run"]

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def init_worker(threads: int = 1, parent: int | None = None) -> None:
    """Make this process use ``threads`` threads in torch and the BLAS libraries (call it first in a
    worker process: SB3 slows down badly when the runs in parallel oversubscribe the cores); with
    ``parent``, make it die with that process (:func:`die_with_parent`).

    :param threads: threads per run
    :param parent: the pid of the sweep's driver
    """
    if parent is not None:
        die_with_parent(parent)
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    import torch

    torch.set_num_threads(threads)


#: ``prctl`` option: the signal a process gets when its parent dies (Linux)
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, interval: float = 1.0) -> None:
    """Kill this process (SIGKILL) when ``parent`` dies, so that a worker of a sweep whose driver was
    killed does not train on as an orphan (it could not report its result, and a restarted sweep
    would find its run locked). On Linux ``prctl(PR_SET_PDEATHSIG)`` does it at once; everywhere,
    a daemon thread checks every ``interval`` seconds whether this process was re-parented or
    ``parent`` is gone. The run loses at most what it did since its last checkpoint.

    :param parent: the pid of the process to die with
    :param interval: seconds between two checks of the watchdog thread
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    original = os.getppid()

    def gone() -> bool:
        return os.getppid() != original or not _running(parent)  # re-parented, or the parent exited

    def watch() -> None:
        while not gone():
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGKILL)

    if gone():
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Thread(target=watch, name="sparse_rl-die-with-parent", daemon=True).start()


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state not in ("Z", "X")


def execute_run(task: Mapping[str, Any]) -> dict[str, Any]:
    """Train (or resume) one run of a sweep and return its record; unless the task says
    ``keep_checkpoints``, delete the run's checkpoints once it has finished.

    :param task: :meth:`~sparse_rl.benchmark.spec.RunTask.to_dict` of the run
    :return: the record (see :func:`summarize_run`) plus ``run_id``, ``agent``, ``env``,
        ``noise_fraction``, ``seed``, ``status`` (``finished``) and ``resumed``; or, if the run
        failed, ``status: failed`` with ``error`` (one paragraph) and ``traceback``
    """
    identity = {key: task[key] for key in ("run_id", "agent", "env", "noise_fraction", "seed")}
    started = time.time()
    try:
        init_worker(int(task["config"].get("torch_threads") or 1))
        from sparse_rl.experiment import runner
        from sparse_rl.experiment.checkpoint import latest_checkpoint
        from sparse_rl.experiment.config import config_from_dict

        config = config_from_dict(task["config"])
        run_dir = Path(task["run_dir"])
        resumed = False
        with run_lock(run_dir, "let it finish or stop it, then run the sweep again", sibling_lock(run_dir)):
            if run_dir.is_dir() and RunDir(run_dir).config.is_file() and latest_checkpoint(run_dir) is not None:
                runner.resume(run_dir, progress_bar=False)
                resumed = True
            elif _finished(run_dir):
                pass  # finished and its checkpoints deleted, but the driver died before writing its record
            else:
                if run_dir.exists():  # started, but killed before its first checkpoint: start again
                    shutil.rmtree(run_dir)
                runner.train(config, progress_bar=False)
            record = summarize_run(run_dir)
            if not task.get("keep_checkpoints", False):
                shutil.rmtree(RunDir(run_dir).checkpoints, ignore_errors=True)
    except KeyboardInterrupt:
        raise
    except Exception as error:  # noqa: BLE001 - reported per run; the sweep goes on with the others
        return {**identity, "status": "failed", "error": " ".join(str(error).split()) or type(error).__name__,
                "error_type": type(error).__name__, "traceback": traceback.format_exc(),
                "duration_s": time.time() - started}
    return {**identity, **record, "status": "finished", "resumed": resumed, "duration_s": time.time() - started}


def _finished(run_dir: Path) -> bool:
    """Whether the run finished: its final model is written only after its last evaluation and
    checkpoint (so a run whose checkpoints were deleted is summarized again, never retrained)."""
    run = RunDir(run_dir)
    return run.final_model.is_file() and run.metrics.is_file()


def summarize_run(run_dir: str | Path) -> dict[str, Any]:
    """The numbers of a finished run: returns, area under the curve, speed, network sizes and
    FLOPs, real-share at the end, and the learning curve.

    :param run_dir: a finished run directory (``config.yaml``, ``metrics.csv``, ``model.zip``)
    :return: ``final_return`` (last evaluation), ``mean_return`` (over all evaluations), ``auc``
        (see :func:`~sparse_rl.benchmark.stats.auc`, normalized), ``steps_per_second`` (env steps
        over the run's time, the random warm-up included, evaluations excluded), ``wall_time_s``,
        ``timesteps``; ``actor_params``, ``actor_dense_params``, ``actor_weights``,
        ``actor_dense_weights``, ``actor_flops`` and the same for ``critic_``;
        ``weights_pct_of_dense``; the filtering metrics at the last evaluation
        (:func:`~sparse_rl.sparse.connectivity.filtering_keys`, e.g. ``in_degree_ratio_actor``,
        ``topk_precision_critic``: the critic's averaged over its Q-networks; ``nan`` when not
        sparse or no noise); the config's ``algorithm``, ``implementation`` and ``sparsity``;
        ``run_dir``; ``curve`` (``timesteps``, ``returns``, ``wall_time_s`` of each evaluation) and
        ``filtering_curve`` (every filtering metric, actor and critic, at each evaluation:
        ``<name>_actor``, ``<name>_critic``)
    """
    import numpy as np

    from sparse_rl.agents.loading import agent_class
    from sparse_rl.benchmark.costs import agent_costs
    from sparse_rl.benchmark.stats import auc
    from sparse_rl.experiment.session import load_run_config

    run = RunDir(Path(run_dir))
    config = load_run_config(run.path)
    rows = run.metrics_rows()
    if not rows:
        raise ValueError(f"run {str(run.path)!r} has no evaluation in {run.metrics.name}")
    steps = [int(float(row["timesteps"])) for row in rows]
    returns = [_number(row.get("eval_return_mean")) for row in rows]
    last = rows[-1]
    model = agent_class(config.agent.algorithm, config.agent.implementation).load(
        run.final_model, device="cpu", custom_objects={"buffer_size": 1})
    costs = agent_costs(model)
    record: dict[str, Any] = {
        "algorithm": config.agent.algorithm,
        "implementation": config.agent.implementation,
        "sparsity": config.sparsity_name,
        "timesteps": steps[-1],
        "final_return": returns[-1],
        "mean_return": float(np.mean(returns)),
        "auc": auc(steps, returns),
        "steps_per_second": _training_speed(rows),
        "wall_time_s": _number(last.get("wall_time_s")),
    }
    for name, cost in costs.items():
        record.update({f"{name}_params": cost.params, f"{name}_dense_params": cost.dense_params,
                       f"{name}_weights": cost.weights, f"{name}_dense_weights": cost.dense_weights,
                       f"{name}_flops": cost.flops})
    weights = sum(cost.weights for cost in costs.values())
    dense = sum(cost.dense_weights for cost in costs.values())
    record["weights_pct_of_dense"] = 100.0 * weights / dense if dense else float("nan")
    keys = filtering_keys()
    for key in keys:
        record[f"{key}_actor"], record[f"{key}_critic"] = _actor_and_critic(last, key)
    record["run_dir"] = str(run_dir)
    record["curve"] = {"timesteps": steps, "returns": returns,
                       "wall_time_s": [_number(row.get("wall_time_s")) for row in rows]}
    record["filtering_curve"] = {
        f"{key}_{network}": [_actor_and_critic(row, key)[index] for row in rows]
        for key in keys for index, network in enumerate(("actor", "critic"))}
    return record


def _actor_and_critic(row: dict[str, str], key: str) -> tuple[float, float]:
    """A filtering metric of one metrics.csv row for the actor, and averaged over the Q-networks
    (``qf0``, ``qf1``…); ``nan`` where the run has none (dense, no noise)."""
    import numpy as np

    critics = [_number(value) for column, value in row.items() if column.startswith(f"{key}_qf")]
    return _number(row.get(f"{key}_actor")), float(np.mean(critics)) if critics else float("nan")


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _training_speed(rows: list[dict[str, str]]) -> float:
    """Env steps per second of training over the whole run: the steps between evaluations over the
    time they took (each row's ``steps_per_second`` covers the steps since the previous row)."""
    steps = seconds = 0.0
    previous = 0
    for row in rows:
        step = int(float(row["timesteps"]))
        speed = _number(row.get("steps_per_second"))
        if step > previous and math.isfinite(speed) and speed > 0:
            steps += step - previous
            seconds += (step - previous) / speed
        previous = step
    return steps / seconds if seconds > 0 else float("nan")
