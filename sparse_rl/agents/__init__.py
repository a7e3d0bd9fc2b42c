"""Stable-Baselines3 integration: sparse policies, SparseSAC, SparseTD3, and the papers' methods
(:func:`make_agent`, :data:`METHODS`)."""

from sparse_rl.agents.methods import METHODS, Method, make_agent
from sparse_rl.agents.policies import SparseSACPolicy, SparseTD3Policy
from sparse_rl.agents.sac import SparseSAC
from sparse_rl.agents.sparsity import PRESETS, SparsityConfig, resolve_sparsity
from sparse_rl.agents.td3 import SparseTD3

AGENTS = {"sac": SparseSAC, "td3": SparseTD3}

__all__ = [
    "AGENTS",
    "METHODS",
    "Method",
    "PRESETS",
    "SparseSAC",
    "SparseSACPolicy",
    "SparseTD3",
    "SparseTD3Policy",
    "SparsityConfig",
    "make_agent",
    "resolve_sparsity",
]
