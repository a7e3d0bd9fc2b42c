"""HOW connections are chosen: drop and grow scores, and the selection of positions from them.

Scores are tensors of the weight's shape; the updater drops the active positions with the
*lowest* drop score and grows the candidate positions with the *highest* grow score. Random growth
is not a score: :func:`sample_candidates` draws positions uniformly by rejection sampling, which
costs O(k) for k positions instead of a permutation of every inactive position.
"""

from __future__ import annotations

import torch

from sparse_rl.sparse.layers import SparseLinear


def magnitude(layer: SparseLinear) -> torch.Tensor:
    """|w|: the drop score of SET (Mocanu et al., 2018) and RigL (Evci et al., 2020)."""
    return layer.weight.detach().abs()


def contribution(layer: SparseLinear) -> torch.Tensor:
    """|w_ij| · rms(x_j): how much a connection moves its output for inputs of their typical size
    (``layer.input_scale``; plain |w| when the layer does not know it). Magnitude alone favours
    inputs of small scale: a feature with values around 5 needs 5× smaller weights than one around
    1 for the same effect, and would be pruned first."""
    magnitude_ = layer.weight.detach().abs()
    scale = getattr(layer, "input_scale", None)
    return magnitude_ if scale is None else magnitude_ * scale.to(magnitude_).unsqueeze(0)


def dense_gradient_magnitude(layer: SparseLinear) -> torch.Tensor:
    """|∂L/∂W| of the dense weight: RigL's grow score (Evci et al., 2020)."""
    if layer.dense_grad is None:
        raise RuntimeError(
            "this layer has no dense gradient: arm it with capture_dense_gradient() and run a backward pass"
        )
    return layer.dense_grad.abs()


def lowest_active(scores: torch.Tensor, active: torch.Tensor, k: int) -> torch.Tensor:
    """Flat indices of the ``k`` active positions with the lowest score (top-k over the active
    entries only).

    :param scores: drop scores of the weight's shape
    :param active: the active positions: a boolean mask of the weight's shape, or their flat
        indices in increasing order (``SparseLinear.active_positions()``, free on a CSR layer)
    :param k: how many to choose
    """
    if active.dtype == torch.bool:
        active = active.reshape(-1).nonzero().squeeze(1)
    chosen = torch.topk(scores.reshape(-1)[active], k, largest=False, sorted=False).indices
    return active[chosen]


def lowest_signed(values: torch.Tensor, positions: torch.Tensor, k: int) -> torch.Tensor:
    """SET's signed drop rule (Mocanu et al., 2018): among active weights ``values`` at flat
    ``positions``, the ``k_pos = round(k · n_pos / n)`` smallest non-negative ones and the
    ``k − k_pos`` largest negative ones (closest to zero), each capped by how many there are.

    :param values: the active weights, one per position
    :param positions: their flat indices
    :param k: how many to choose in all
    """
    values = values.reshape(-1)
    positive = (values >= 0).nonzero().squeeze(1)
    negative = (values < 0).nonzero().squeeze(1)
    k_pos = min(positive.numel(), round(k * positive.numel() / max(values.numel(), 1)))
    k_neg = min(negative.numel(), k - k_pos)
    k_pos = k - k_neg  # when one side has too few, the other makes up the count
    chosen_pos = positive[torch.topk(values[positive], k_pos, largest=False, sorted=False).indices]
    chosen_neg = negative[torch.topk(values[negative], k_neg, largest=True, sorted=False).indices]
    return positions[torch.cat([chosen_pos, chosen_neg])]


def highest_candidates(scores: torch.Tensor, candidates: torch.Tensor, k: int) -> torch.Tensor:
    """Flat indices of the ``k`` candidate positions with the highest score.

    Exact, but fast on large layers: a threshold estimated from a strided sample of the scores
    first narrows the pool to a few times ``k`` positions; when the pool is too small the full
    top-k over all candidates runs instead.
    """
    flat_scores = scores.reshape(-1)
    flat_candidates = candidates.reshape(-1)
    numel = flat_scores.numel()
    if numel >= 1 << 16 and 0 < k <= numel // 64:
        stride = numel // (1 << 14)
        sample = flat_scores[::stride]
        keep = min(sample.numel(), 4 * k * sample.numel() // numel + 8)
        threshold = torch.topk(sample, keep, sorted=False).values.min()
        pool = ((flat_scores >= threshold) & flat_candidates).nonzero().squeeze(1)
        # Every candidate outside the pool scores below the threshold, hence below the pool's k-th best.
        if pool.numel() >= k:
            return pool[torch.topk(flat_scores[pool], k, largest=True, sorted=False).indices]
    pool = flat_candidates.nonzero().squeeze(1)
    chosen = torch.topk(flat_scores[pool], k, largest=True, sorted=False).indices
    return pool[chosen]


def column_mean_magnitude(layer: SparseLinear, scaled: bool = False) -> torch.Tensor:
    """Mean ``|w|`` of each input column's active connections (0 for a column without any): how
    strongly the layer uses each input, independent of how many connections it has; times the
    input's scale with ``scaled`` (see :func:`contribution`)."""
    columns = layer.active_positions() % layer.in_features
    magnitudes = layer.active_values().abs().to(torch.float64)
    scale = getattr(layer, "input_scale", None)
    if scaled and scale is not None:
        magnitudes = magnitudes * scale.to(magnitudes)[columns]
    total = torch.zeros(layer.in_features, dtype=torch.float64, device=magnitudes.device)
    total.index_add_(0, columns, magnitudes)
    count = torch.bincount(columns, minlength=layer.in_features).to(torch.float64)
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))


def sample_proportional(position_weights: torch.Tensor, candidates: torch.Tensor, k: int,
                        generator: torch.Generator) -> torch.Tensor:
    """``k`` distinct flat indices among the ``True`` entries of ``candidates``, drawn without
    replacement with probabilities proportional to ``position_weights`` (> 0, broadcastable to
    ``candidates``' shape): the Gumbel-top-k trick (Kool et al., ICML 2019), one pass.
    """
    flat = candidates.reshape(-1)
    if k > int(flat.count_nonzero()):
        raise ValueError(f"cannot grow {k} connections: only {int(flat.count_nonzero())} positions are free")
    weights = torch.broadcast_to(position_weights, candidates.shape).reshape(-1).to(torch.float64)
    uniform = torch.rand(weights.shape, generator=generator, dtype=torch.float64, device=generator.device)
    keys = weights.log() - (-uniform.clamp(min=1e-300).log()).log()
    keys = torch.where(flat, keys.to(flat.device), torch.full_like(keys, -torch.inf))
    return torch.topk(keys, k, sorted=False).indices


def sample_candidates(candidates: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """``k`` distinct flat indices drawn uniformly at random among the ``True`` entries of
    ``candidates`` (a boolean tensor, not modified).

    Rejection sampling: draw random positions, keep those that are candidates and not yet taken,
    repeat until ``k`` are found. When candidates are rare (under a quarter of the positions) it
    falls back to choosing among the listed candidates, which is then the cheaper route.
    """
    flat = candidates.reshape(-1)
    numel = flat.numel()
    n_candidates = int(flat.count_nonzero().item())
    if k > n_candidates:
        raise ValueError(f"cannot grow {k} connections: only {n_candidates} positions are free")
    if k == 0:
        return torch.empty(0, dtype=torch.long, device=flat.device)
    if n_candidates < numel // 4:
        pool = flat.nonzero().squeeze(1)
        order = torch.randperm(pool.numel(), generator=generator, device=generator.device).to(pool.device)
        return pool[order[:k]]
    free = flat.clone()
    n_free = n_candidates
    chosen: list[torch.Tensor] = []
    needed = k
    while needed > 0:
        draws = int(needed * numel / n_free * 1.25) + 16
        idx = torch.randint(numel, (draws,), generator=generator, device=generator.device).to(flat.device)
        idx = torch.unique(idx[free[idx]])
        if idx.numel() > needed:
            keep = torch.randperm(idx.numel(), generator=generator, device=generator.device)[:needed]
            idx = idx[keep.to(idx.device)]
        free[idx] = False
        chosen.append(idx)
        needed -= idx.numel()
        n_free -= idx.numel()
    return torch.cat(chosen)
