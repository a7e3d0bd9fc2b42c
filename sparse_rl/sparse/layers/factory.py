"""Building a sparse layer of the right backend by name: what ``SparseLinear(...)`` does, as a
function (for code that injects a layer factory, Tianshou-style)."""

from __future__ import annotations

from typing import Any

from sparse_rl._util.validation import check_density
from sparse_rl.sparse.layers.backends import backend_class, resolve_backend
from sparse_rl.sparse.layers.base import SparseLinear
from sparse_rl.sparse.layers.csr import CSRSparseLinear
from sparse_rl.sparse.layers.masked import MaskedSparseLinear

__all__ = ["CSRSparseLinear", "MaskedSparseLinear", "make_sparse_linear"]


def make_sparse_linear(in_features: int, out_features: int, density: float = 1.0, backend: str = "auto",
                       **kwargs: Any) -> SparseLinear:
    """A :class:`SparseLinear` of the backend ``backend`` resolves to for this shape and density.

    :param in_features: inputs
    :param out_features: outputs
    :param density: fraction of active connections, in (0, 1]
    :param backend: ``auto``, ``masked`` or ``csr``
    :param kwargs: the other arguments of :class:`SparseLinear`
    """
    cls = backend_class(resolve_backend(backend, in_features, out_features, check_density(density),
                                        kwargs.get("device")))
    return cls(in_features, out_features, density, backend=backend, **kwargs)
