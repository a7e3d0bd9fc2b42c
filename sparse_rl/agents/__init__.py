"""Stable-Baselines3 integration: sparse policies, SparseSAC, SparseTD3, and the papers' methods
(:func:`make_agent`, :data:`METHODS`)."""

from sparse_rl.agents.loading import AGENT_KINDS, IMPLEMENTATIONS, agent_class, load_agent
from sparse_rl.agents.methods import METHODS, Method, make_agent
from sparse_rl.agents.policies import SparseSACPolicy, SparseTD3Policy
from sparse_rl.agents.sac import SparseSAC
from sparse_rl.agents.sparsity import PRESETS, SparsityConfig, resolve_sparsity
from sparse_rl.agents.td3 import SparseTD3

#: agent kind -> this library's agent class (one list: :data:`AGENT_KINDS`)
AGENTS = {kind: agent_class(kind) for kind in AGENT_KINDS}

__all__ = [
    "AGENTS",
    "AGENT_KINDS",
    "IMPLEMENTATIONS",
    "METHODS",
    "Method",
    "PRESETS",
    "SparseSAC",
    "SparseSACPolicy",
    "SparseTD3",
    "SparseTD3Policy",
    "SparsityConfig",
    "agent_class",
    "load_agent",
    "make_agent",
    "resolve_sparsity",
]
