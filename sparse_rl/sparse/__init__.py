"""Framework-agnostic dynamic sparse training core (torch only, no SB3).

- :mod:`~sparse_rl.sparse.layers`: ``SparseLinear`` (weight + boolean mask).
- :mod:`~sparse_rl.sparse.distributions`: WHICH layers and how dense (uniform, ER, ERK; a floor of
  connections per output unit from the input count).
- :mod:`~sparse_rl.sparse.schedules`: WHEN (interval, start/stop, drop-fraction decay).
- :mod:`~sparse_rl.sparse.criteria`: HOW (drop and grow scores, selection).
- :mod:`~sparse_rl.sparse.algorithms`: the registry of named algorithms (dense, static, set, rigl).
- :mod:`~sparse_rl.sparse.topology`: ``TopologyUpdater``, prune-then-grow at constant density.
"""

from sparse_rl.sparse.algorithms import ALGORITHMS, DSTAlgorithm, make_algorithm, register_algorithm
from sparse_rl.sparse.distributions import DISTRIBUTIONS, fan_in_floor, layer_densities
from sparse_rl.sparse.layers import SparseLinear, random_mask
from sparse_rl.sparse.schedules import UpdateSchedule
from sparse_rl.sparse.topology import LayerUpdateStats, TopologyUpdate, TopologyUpdater, sparse_layers

__all__ = [
    "ALGORITHMS",
    "DISTRIBUTIONS",
    "DSTAlgorithm",
    "LayerUpdateStats",
    "SparseLinear",
    "TopologyUpdate",
    "TopologyUpdater",
    "UpdateSchedule",
    "fan_in_floor",
    "layer_densities",
    "make_algorithm",
    "random_mask",
    "register_algorithm",
    "sparse_layers",
]
