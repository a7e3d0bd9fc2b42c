"""The errors a user can fix: :class:`UserError` and :class:`RunWriteError` (defined in
:mod:`sparse_rl._util.errors`, so that the run directory's layout below the analysis can raise them)
and :class:`ConfigError`."""

from sparse_rl._util.errors import RunWriteError, UserError

__all__ = ["ConfigError", "RunWriteError", "UserError"]


class ConfigError(UserError):
    """A config that cannot be loaded or does not validate."""

