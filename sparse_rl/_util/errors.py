"""The base of every error a user can fix (every layer may raise one)."""


class UserError(Exception):
    """A mistake a user can fix (a bad config, a missing file, a corrupt checkpoint…): the CLI prints
    its message as one paragraph and exits with :attr:`exit_code`, without a traceback."""

    exit_code: int = 2
