"""Deprecated: the argument checks moved to :mod:`sparse_rl._util.validation`."""

import warnings

from sparse_rl._util.validation import (  # noqa: F401
    check_choice,
    check_density,
    check_drop_fraction,
    check_non_negative_int,
    check_positive_int,
)

warnings.warn("sparse_rl.sparse.validation moved to sparse_rl._util.validation", DeprecationWarning, stacklevel=2)
