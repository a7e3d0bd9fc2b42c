"""The ``masked`` backend of :class:`~sparse_rl.sparse.layers.base.SparseLinear`: a dense weight and
a boolean mask."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from sparse_rl.sparse.layers.backends import register_backend
from sparse_rl.sparse.layers.base import SparseLinear


@register_backend
class MaskedSparseLinear(SparseLinear):
    """The ``masked`` backend: a dense ``weight`` parameter and a boolean ``mask`` buffer; the
    forward pass uses ``weight ⊙ mask``. Arguments as :class:`SparseLinear`."""

    backend: ClassVar[str] = "masked"

    weight: nn.Parameter

    def _init_storage(self, device: torch.device | str | None, dtype: torch.dtype | None) -> None:
        self.weight = nn.Parameter(
            torch.empty((self.out_features, self.in_features), device=device, dtype=dtype))
        self.register_buffer(
            "mask", torch.ones((self.out_features, self.in_features), dtype=torch.bool, device=device))

    def _init_connections(self, mask: torch.Tensor, weight: torch.Tensor) -> None:
        self.mask.copy_(mask)
        self.weight.copy_(weight)

    def _copy_dense_(self, weight: torch.Tensor) -> None:
        with torch.no_grad():
            self.weight.copy_(weight)

    def _convert_state_dict_(self, state_dict: dict[str, Any], prefix: str) -> bool:
        values, flat_index = prefix + "values", prefix + "flat_index"
        if values not in state_dict or flat_index not in state_dict or prefix + "weight" in state_dict:
            return False
        active, index = state_dict.pop(values), state_dict.pop(flat_index).long()
        size = self.out_features * self.in_features
        weight = active.new_zeros(size).index_copy_(0, index, active)
        mask = torch.zeros(size, dtype=torch.bool, device=index.device).index_fill_(0, index, True)
        state_dict[prefix + "weight"] = weight.view(self.out_features, self.in_features)
        state_dict[prefix + "mask"] = mask.view(self.out_features, self.in_features)
        return True

    @property
    def nnz(self) -> int:
        """Number of active connections."""
        return int(self.mask.count_nonzero().item())

    def active_positions(self) -> torch.Tensor:
        """The flat positions of the active connections, increasing."""
        return self.mask.reshape(-1).nonzero().squeeze(1)

    def active_values(self) -> torch.Tensor:
        """The active weights, in the order of :meth:`active_positions` (detached)."""
        return self.weight.detach()[self.mask]

    def abs_weight_sum(self) -> float:
        """The sum of |w| over the active connections (inactive weights are exactly zero)."""
        return float(self.weight.detach().abs().sum().item())

    def apply_mask_(self) -> None:
        """Set inactive weights to exactly zero, in place."""
        with torch.no_grad():
            self.weight.mul_(self.mask)

    def set_mask_(self, mask: torch.Tensor) -> None:
        """Replace the mask's contents in place (the buffer object stays) and zero inactive weights."""
        if mask.shape != self.mask.shape:
            raise ValueError(f"mask must have shape {tuple(self.mask.shape)}, got {tuple(mask.shape)}")
        self.mask.copy_(mask.to(dtype=torch.bool))
        self.apply_mask_()

    @torch.no_grad()
    def replace_connections(self, dropped: torch.Tensor, grown: torch.Tensor) -> tuple[nn.Parameter, torch.Tensor]:
        """Move connections (see :meth:`SparseLinear.replace_connections`); returns ``weight`` and
        the dropped and grown flat positions."""
        self._check_replacement(dropped, grown)
        mask = self.mask.view(-1)
        if not bool(mask[dropped].all()):
            raise ValueError("dropped positions must be active connections")
        if bool(mask[grown].any()):
            raise ValueError("grown positions must be inactive connections")
        mask[dropped] = False
        mask[grown] = True
        changed = torch.cat([dropped, grown])
        self.weight.view(-1)[changed] = 0
        if self.weight.grad is not None:
            self.weight.grad.view(-1)[changed] = 0
        return self.weight, changed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the masked linear map to ``x`` of shape (..., in_features)."""
        weight = self.weight * self.mask
        if self._capture_armed and weight.requires_grad:
            weight.register_hook(self._store_dense_grad)
        return F.linear(x, weight, self.bias)
