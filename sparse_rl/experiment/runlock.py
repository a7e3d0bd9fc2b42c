"""One process at a time per run directory: an exclusive ``flock`` on a lock file.

``sparse-rl train`` and ``train --resume`` hold ``<run dir>/.lock`` while they write into the run;
a sweep's worker also holds ``<run dir>.lock`` beside it (taken before the directory exists, so
that it survives the sweep deleting a half-made directory). The operating system releases a lock
when its holder dies, so a kill never leaves a stale lock. A second process on the same run fails
at once with :class:`RunLocked`, naming the holder's pid. The lock is not re-entrant (a second
``with`` on the same file in one process fails too). Without ``fcntl`` (Windows) nothing is locked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sparse_rl._util.rundir import LOCK_FILE
from sparse_rl.experiment.errors import UserError

try:
    import fcntl
except ImportError:  # not POSIX (Windows): runs are not locked
    fcntl = None  # type: ignore[assignment]

class RunLocked(UserError):
    """Another process holds the run's lock: it is writing that run now."""


#: the lock file inside a run directory


def sibling_lock(run_dir: str | Path) -> Path:
    """``<run dir>.lock``, beside the run's directory (a sweep's lock of one of its runs).

    :param run_dir: the run's directory (it need not exist)
    """
    run_dir = Path(run_dir)
    return run_dir.with_name(run_dir.name + ".lock")


@contextmanager
def run_lock(run_dir: str | Path, hint: str = "let it finish or stop it, then try again",
             lock_file: str | Path | None = None) -> Iterator[None]:
    """Hold the exclusive lock of ``run_dir`` for the ``with`` block.

    :param run_dir: the run's directory
    :param hint: what the user should do, appended to the :class:`RunLocked` message
    :param lock_file: the lock file (default: ``<run dir>/.lock``, which needs the directory)
    :raises RunLocked: if another process (or another ``with`` of this one) holds it
    :raises UserError: if the lock file cannot be created (e.g. a read-only directory)
    """
    if fcntl is None:
        yield
        return
    path = Path(lock_file) if lock_file is not None else Path(run_dir) / LOCK_FILE
    handle = _acquire(path, Path(run_dir), hint)
    try:
        yield
    finally:
        handle.close()  # releases the lock


def _acquire(path: Path, run_dir: Path, hint: str) -> IO[str]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle: IO[str] = path.open("a+", encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot lock run {str(run_dir)!r}: cannot create {str(path)!r} ({error.strerror or error}); "
                        "the directory holding the run must be writable") from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise RunLocked(f"run {str(run_dir)!r} is being trained by another process (pid {holder}, lock {path}); "
                        f"{hint}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
