"""The errors a user can fix: :class:`UserError` (defined in :mod:`sparse_rl._util.errors`, so that
the run directory's layout below the analysis can raise it) and :class:`ConfigError`."""

from sparse_rl._util.errors import UserError

__all__ = ["ConfigError", "RunWriteError", "UserError"]


class ConfigError(UserError):
    """A config that cannot be loaded or does not validate."""


class RunWriteError(UserError):
    """A run's file could not be written (a full disk, a read-only directory…): the run stopped."""

    exit_code = 4
