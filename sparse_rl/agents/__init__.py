"""Stable-Baselines3 integration: sparse policies, SparseSAC, SparseTD3."""

from sparse_rl.agents.policies import SparseSACPolicy, SparseTD3Policy
from sparse_rl.agents.sac import SparseSAC
from sparse_rl.agents.sparsity import PRESETS, SparsityConfig, resolve_sparsity
from sparse_rl.agents.td3 import SparseTD3

AGENTS = {"sac": SparseSAC, "td3": SparseTD3}

__all__ = [
    "AGENTS",
    "PRESETS",
    "SparseSAC",
    "SparseSACPolicy",
    "SparseTD3",
    "SparseTD3Policy",
    "SparsityConfig",
    "resolve_sparsity",
]
