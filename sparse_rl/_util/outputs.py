"""Where a command writes: checked before any work, so that a read-only, missing or full output
location is one ``error:`` line (exit 2) naming the path, not a traceback after the work was done."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

from sparse_rl._util.errors import UserError


def describe_os_error(error: OSError) -> str:
    """``error``'s reason in words, saying so when the disk is full."""
    reason = error.strerror or type(error).__name__
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        reason += " (the disk is full)"
    return reason


def prepare_output_dir(path: str | Path, what: str) -> Path:
    """Create the directory ``path`` (and its parents) if needed and check that it can be written.

    :param path: the directory
    :param what: what it is for the message (``"--out"``, ``"the video directory"``…)
    :return: ``path`` as a :class:`~pathlib.Path`
    :raises UserError: naming ``what`` and ``path`` if it is a file, cannot be created or is read-only
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {str(path)!r} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {what} {str(path)!r}: {describe_os_error(error)}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"{what} {str(path)!r} is read-only; give a writable directory")
    return path


def check_creatable_dir(path: str | Path, what: str) -> Path:
    """Check, creating nothing, that the directory ``path`` exists and is writable or can be created
    (its nearest existing parent is a writable directory).

    :param path: the directory
    :param what: what it is for the message
    :return: ``path`` as a :class:`~pathlib.Path`
    :raises UserError: naming ``what`` and ``path``
    """
    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot create {what} {str(path)!r}: {str(existing)!r} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        kind = "is read-only" if existing == path else f"cannot be created: {str(existing)!r} is read-only"
        raise UserError(f"{what} {str(path)!r} {kind}; give a writable directory")
    return path


def check_output_file(path: str | Path, what: str, suffixes: Iterable[str] | None = None) -> Path:
    """Check that the file ``path`` can be written (its directory is created if needed), and that it
    has one of ``suffixes`` (lower-case, with the dot) when given.

    :param path: the file
    :param what: what it is for the message (``"--out"``…)
    :param suffixes: the accepted suffixes (``None``: any)
    :return: ``path`` as a :class:`~pathlib.Path`
    :raises UserError: naming ``what`` and ``path``
    """
    path = Path(path)
    if suffixes is not None:
        accepted = list(suffixes)
        if path.suffix.lower() not in accepted:
            raise UserError(f"{what} {str(path)!r} has an unsupported format {path.suffix or '(no suffix)'!r}; give "
                            f"a file ending in {', '.join(accepted)}")
    if path.is_dir():
        raise UserError(f"{what} {str(path)!r} is a directory; give a file name")
    prepare_output_dir(path.parent if str(path.parent) else Path("."), f"the directory of {what}")
    if path.exists() and not os.access(path, os.W_OK):
        raise UserError(f"{what} {str(path)!r} is read-only")
    return path
