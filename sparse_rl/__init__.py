"""sparse_rl: dynamic sparse training for deep RL agents on Stable-Baselines3.

Subpackages:
- :mod:`sparse_rl.sparse`: the framework-agnostic dynamic sparse training core (torch only).
- :mod:`sparse_rl.agents`: SparseSAC and SparseTD3, drop-in SB3 algorithms.
- :mod:`sparse_rl.envs`: extremely noisy environments (ENE) and feature permutation.
- :mod:`sparse_rl.analysis`: per-input-feature connectivity metrics and plots.
"""

__version__ = "0.1.0"
