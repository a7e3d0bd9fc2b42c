"""sparse_rl: dynamic sparse training for deep RL agents on Stable-Baselines3.

Subpackages, by layer (a module imports only from its own layer or lower ones):
- L0 :mod:`sparse_rl._util`: validation, the registry, JSON helpers, the run directory's layout.
- L0 :mod:`sparse_rl.sparse`: the framework-agnostic dynamic sparse training core (torch only).
- L1 :mod:`sparse_rl.envs`: extremely noisy environments (ENE) and feature permutation.
- L2 :mod:`sparse_rl.agents`: SparseSAC and SparseTD3, drop-in SB3 algorithms.
- L3 :mod:`sparse_rl.analysis`: per-input-feature connectivity metrics and plots.
- L4 :mod:`sparse_rl.experiment`: configs, run directories, training, resume, evaluation.
- L5 :mod:`sparse_rl.benchmark`: sweeps.
- L6 :mod:`sparse_rl.cli`: the ``sparse-rl`` command.
"""

__version__ = "0.1.0"
