"""``SparseLinear``: a fully-connected layer that keeps only a fixed fraction of its connections.

Two storage backends share one interface (chosen by ``backend=``):

- ``masked`` (:class:`~sparse_rl.sparse.layers.masked.MaskedSparseLinear`): a dense ``weight``
  parameter and a boolean ``mask`` buffer of the same shape; the forward pass multiplies them, so
  inactive weights get exactly zero gradient. Sparsity saves nothing on the clock (≈1.0–1.2× a
  dense layer) but every operation is dense and simple; best for small layers and high densities.
- ``csr`` (:class:`~sparse_rl.sparse.layers.csr.CSRSparseLinear`): only the active weights are
  stored, in a ``values`` parameter of fixed length ``nnz`` (so the optimizer's state is ``nnz`` long too), with
  their positions in a ``flat_index`` buffer; forward and backward use sparse kernels
  (:mod:`~sparse_rl.sparse.kernels`). ``weight`` and ``mask`` are read-only dense views built on
  demand.
- ``auto`` picks per layer with :func:`resolve_backend`.

Topology updates go through one interface on both: :meth:`SparseLinear.replace_connections`
moves connections and returns the parameter and the flat slots whose optimizer state must be
reset; :meth:`SparseLinear.follow_topology_` makes a target network's layer take another layer's
connections. Parameters are never replaced, so optimizers built once keep working.

One module per part: :mod:`~sparse_rl.sparse.layers.base` (the interface), one per backend
(:mod:`~sparse_rl.sparse.layers.masked`, :mod:`~sparse_rl.sparse.layers.csr`), the backend names and
rule (:mod:`~sparse_rl.sparse.layers.backends`) and :func:`make_sparse_linear`
(:mod:`~sparse_rl.sparse.layers.factory`).
"""

from sparse_rl.sparse.layers.backends import (
    AUTO_MAX_DENSITY,
    AUTO_MIN_INPUTS,
    BACKENDS,
    backend_class,
    layers_built_for,
    register_backend,
    resolve_backend,
)
from sparse_rl.sparse.layers.base import INITS, SparseLinear, active_count, random_mask
from sparse_rl.sparse.layers.factory import CSRSparseLinear, MaskedSparseLinear, make_sparse_linear

__all__ = [
    "AUTO_MAX_DENSITY",
    "AUTO_MIN_INPUTS",
    "BACKENDS",
    "INITS",
    "CSRSparseLinear",
    "MaskedSparseLinear",
    "SparseLinear",
    "active_count",
    "backend_class",
    "layers_built_for",
    "make_sparse_linear",
    "random_mask",
    "register_backend",
    "resolve_backend",
]
