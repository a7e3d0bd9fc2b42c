"""Where the runs of a sweep execute: a local process pool (the default) or a Ray cluster.

A backend takes the tasks (plain data, :meth:`~sparse_rl.benchmark.spec.RunTask.to_dict`) and calls
``on_result(record)`` in the driver process as each run ends, with the record
:func:`~sparse_rl.benchmark.execute.execute_run` returned. Every run uses one torch thread.
A new backend is one class with a ``run`` method, added to :data:`EXECUTORS`.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from sparse_rl.benchmark.execute import execute_run, init_worker
from sparse_rl.experiment.errors import UserError

Task = Mapping[str, Any]
OnResult = Callable[[dict[str, Any]], None]

RAY_INSTALL_HINT = "pip install 'sparse_rl[ray]'"


class Backend(ABC):
    """Runs the tasks of a sweep and reports each record as it comes."""

    name: str = ""

    @abstractmethod
    def run(self, tasks: Sequence[Task], on_result: OnResult) -> None:
        """Execute every task; call ``on_result`` in this process with each run's record.

        :param tasks: the runs to do
        :param on_result: called once per task, in the order they finish
        """

    def describe(self) -> str:
        """One line for the log: where and how many at once."""
        return self.name


class LocalBackend(Backend):
    """A pool of ``workers`` processes on this machine (started with ``spawn``: each imports torch
    fresh with one thread; each dies with this process, never trains on as an orphan);
    ``workers=1`` runs the tasks one after the other in this process.

    :param workers: runs at once (>= 1); default: the number of CPU cores
    """

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        if self.workers < 1:
            raise UserError(f"--workers must be >= 1, got {self.workers}")

    def describe(self) -> str:
        """One line for the log."""
        return f"local backend, {self.workers} worker process{'es' if self.workers > 1 else ''}"

    def run(self, tasks: Sequence[Task], on_result: OnResult) -> None:
        """Execute the tasks in the process pool (or in this process for one worker)."""
        if not tasks:
            return
        if self.workers == 1:
            for task in tasks:
                on_result(execute_run(task))
            return
        context = multiprocessing.get_context("spawn")
        executor = ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)), mp_context=context,
                                       initializer=init_worker, initargs=(1, os.getpid()))  # die with the driver
        futures: dict[Future[dict[str, Any]], Task] = {executor.submit(execute_run, task): task for task in tasks}
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    on_result(_outcome(future, futures[future]))
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        executor.shutdown(wait=True)


class RayBackend(Backend):
    """Ray tasks of one CPU each: on a local Ray instance started for the sweep (``workers`` CPUs),
    or on an existing cluster (``address``: ``auto``, ``HOST:PORT`` or ``ray://HOST:10001``).

    Every node needs sparse_rl installed; run directories are written at the same path on the node
    that runs them (give ``--out`` on a shared file system to keep them all, and to let a killed
    sweep resume its half-done runs). Records come back to the driver either way.

    :param workers: CPUs of the local instance (default: the number of cores); ignored with ``address``
    :param address: an existing cluster to connect to (``None``: start a local instance)
    :raises UserError: if Ray is not installed
    """

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        self.ray = import_ray()
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        if self.workers < 1:
            raise UserError(f"--workers must be >= 1, got {self.workers}")
        self.address = address

    def describe(self) -> str:
        """One line for the log."""
        where = f"cluster at {self.address}" if self.address else f"a local instance with {self.workers} CPUs"
        return f"ray backend, {where}"

    def run(self, tasks: Sequence[Task], on_result: OnResult) -> None:
        """Submit every task as a Ray task of one CPU; report each as it finishes."""
        if not tasks:
            return
        ray = self.ray
        started_here = not ray.is_initialized()
        if started_here:
            try:
                if self.address:
                    ray.init(address=self.address, include_dashboard=False)
                else:
                    ray.init(num_cpus=self.workers, include_dashboard=False)
            except ConnectionError as error:
                raise UserError(f"cannot connect to the Ray cluster at {self.address!r}: {error}") from None
        remote = ray.remote(num_cpus=1, max_retries=0)(execute_run)
        references = {remote.remote(dict(task)): task for task in tasks}
        try:
            while references:
                done, _ = ray.wait(list(references), num_returns=1)
                for reference in done:
                    task = references.pop(reference)
                    try:
                        record = ray.get(reference)
                    except Exception as error:  # noqa: BLE001 - a crashed worker (killed, out of memory)
                        record = _failure(task, error)
                    on_result(record)
        except BaseException:
            for reference in references:
                ray.cancel(reference, force=True)
            raise
        finally:
            if started_here:
                ray.shutdown()


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`UserError` saying how to install it."""
    try:
        import ray
    except ImportError as error:
        raise UserError(f"the Ray backend needs Ray, an optional dependency of sparse_rl: {RAY_INSTALL_HINT} "
                        f"(importing ray failed: {error})") from None
    return ray


#: sweep executor (``--backend``) name -> constructor taking (workers, address); not the sparse layers'
#: storage backends (:data:`sparse_rl.sparse.layers.BACKENDS`)
EXECUTORS: dict[str, Callable[[int | None, str | None], Backend]] = {
    "local": lambda workers, address: _local(workers, address),
    "ray": lambda workers, address: RayBackend(workers, address),
}


def make_backend(name: str, workers: int | None = None, address: str | None = None) -> Backend:
    """The backend called ``name``.

    :param name: ``local`` or ``ray``
    :param workers: runs at once (local) or CPUs of a local Ray instance
    :param address: a Ray cluster's address (``ray`` only)
    :raises UserError: for an unknown name, ``--address`` without Ray, or Ray not installed
    """
    if name not in EXECUTORS:
        raise UserError(f"unknown backend {name!r}; choose one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name](workers, address)


def _local(workers: int | None, address: str | None) -> Backend:
    if address is not None:
        raise UserError("--address is for the Ray backend: add --backend ray")
    return LocalBackend(workers)


def _outcome(future: Future[dict[str, Any]], task: Task) -> dict[str, Any]:
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - e.g. a worker process killed (BrokenProcessPool)
        return _failure(task, error)


def _failure(task: Task, error: BaseException) -> dict[str, Any]:
    print(f"warning: run {task['run_id']} crashed its worker: {type(error).__name__}: {error}", file=sys.stderr)
    return {**{key: task[key] for key in ("run_id", "agent", "env", "noise_fraction", "seed")}, "status": "failed",
            "error": f"{type(error).__name__}: {' '.join(str(error).split())}", "error_type": type(error).__name__,
            "traceback": ""}
