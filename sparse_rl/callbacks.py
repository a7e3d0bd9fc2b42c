"""Deprecated: moved to :mod:`sparse_rl.experiment.callbacks`."""

from sparse_rl._util.deprecation import alias_module

alias_module(__name__, "sparse_rl.experiment.callbacks")
