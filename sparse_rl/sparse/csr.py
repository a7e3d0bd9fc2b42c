"""Deprecated: moved to :mod:`sparse_rl.sparse.layers.csr`."""

from sparse_rl._util.deprecation import alias_module

alias_module(__name__, "sparse_rl.sparse.layers.csr")
