"""The base of every error a user can fix (every layer may raise one), and the one for a run's files
that cannot be written."""


class UserError(Exception):
    """A mistake a user can fix (a bad config, a missing file, a corrupt checkpoint…): the CLI prints
    its message as one paragraph and exits with :attr:`exit_code`, without a traceback."""

    exit_code: int = 2


class RunWriteError(UserError):
    """A run's file could not be written (a full disk, a read-only directory…): the run stopped."""

    exit_code = 4
