"""The ``csr`` backend of :class:`~sparse_rl.sparse.layers.base.SparseLinear`: only active weights exist.

A :class:`CSRSparseLinear` stores its ``nnz`` active weights in the parameter ``values`` (shape
``(nnz,)``, fixed for the layer's life, so an optimizer's state for it is ``nnz`` long) and the flat
position ``row · in_features + col`` of each in the buffer ``flat_index``. Each index of
``values`` is a *slot*; a topology update gives the slots of dropped connections to the grown ones
(:meth:`CSRSparseLinear.replace_connections`), so no other slot moves and the optimizer's state
stays aligned. The kernels' index orders are derived from ``flat_index`` once per topology
(:class:`~sparse_rl.sparse.kernels.CSRStructure`) and cached.

``weight`` and ``mask`` are read-only dense views built on demand (for analysis, tests and the dense
scores of topology updates): writing into them changes nothing. ``state_dict`` holds ``values``,
``flat_index`` and ``bias``; a fresh layer of the same shape and density has the same keys and
shapes, so ``load_state_dict`` (SB3's ``load`` with ``exact_match=True``, and SB3's target
networks, built fresh and then loaded) restores the connections exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from sparse_rl.sparse.kernels import CSRStructure, csr_linear
from sparse_rl.sparse.layers.backends import register_backend
from sparse_rl.sparse.layers.base import SparseLinear, active_count
from sparse_rl.sparse.shared_input import csr_linear_shared


@register_backend
class CSRSparseLinear(SparseLinear):
    """The ``csr`` backend: active weights in ``values`` (one per slot), their flat positions in
    ``flat_index``, sparse kernels for forward and backward. Arguments as
    :class:`~sparse_rl.sparse.layers.SparseLinear`."""

    backend: ClassVar[str] = "csr"

    values: nn.Parameter
    flat_index: torch.Tensor

    def _init_storage(self, device: torch.device | str | None, dtype: torch.dtype | None) -> None:
        nnz = active_count(self.in_features * self.out_features, self.target_density)
        self.values = nn.Parameter(torch.empty(nnz, device=device, dtype=dtype))
        self.register_buffer("flat_index", torch.arange(nnz, dtype=torch.int64, device=device))
        self._structure_cache: tuple[tuple[Any, ...], CSRStructure] | None = None
        #: the head of the structure that ``structure()`` builds: the inputs of the sparse kernels
        self._kernel_head = self.in_features

    def _init_connections(self, mask: torch.Tensor, weight: torch.Tensor) -> None:
        positions = mask.reshape(-1).nonzero().squeeze(1)
        if positions.numel() != self.values.numel():
            raise ValueError(f"the mask has {positions.numel()} connections, this layer keeps {self.values.numel()}")
        self.flat_index.copy_(positions)
        self.values.copy_(weight.reshape(-1)[positions])
        self._structure_cache = None
        self.order_for_kernels_()

    def _copy_dense_(self, weight: torch.Tensor) -> None:
        with torch.no_grad():
            self.values.copy_(weight.reshape(-1)[self.flat_index])

    def _convert_state_dict_(self, state_dict: dict[str, Any], prefix: str) -> bool:
        weight, mask = prefix + "weight", prefix + "mask"
        if weight not in state_dict or mask not in state_dict or prefix + "values" in state_dict:
            return False
        dense, active = state_dict.pop(weight), state_dict.pop(mask)
        positions = active.reshape(-1).nonzero().squeeze(1)
        state_dict[prefix + "flat_index"] = positions
        state_dict[prefix + "values"] = dense.reshape(-1)[positions]
        return True

    def _after_conversion_(self) -> None:
        self.order_for_kernels_()  # the converted slots are in row-major order

    # -- the structure ---------------------------------------------------------------------------
    def structure(self, head: int | None = None) -> CSRStructure:
        """The kernels' index structure of the current connections, with the sparse kernels taking
        the inputs ``[0, head)`` (default: the head of the last call that gave one, at first all
        inputs; see :class:`~sparse_rl.sparse.kernels.CSRStructure`). Cached; rebuilt after any
        change of ``flat_index`` (including in-place writes by ``load_state_dict``) or of head."""
        if head is not None:
            self._kernel_head = head
        index = self.flat_index
        key = (index._version, index.data_ptr(), index.device, index.numel())
        cached = self._structure_cache
        if cached is None or cached[0] != key or cached[1].head != self._kernel_head:
            cached = (key, CSRStructure.build(index, self.in_features, self.out_features, head=self._kernel_head))
            self._structure_cache = cached
        return cached[1]

    @torch.no_grad()
    def order_for_kernels_(self, optimizers: Sequence[torch.optim.Optimizer] = ()) -> None:
        """Permute the slots into the kernels' order (for the current head), so that forward and
        backward passes read ``values`` and write its gradient in place instead of gathering and
        scattering them (a topology update leaves the grown connections in the dropped ones' slots,
        out of order). Moves everything kept per slot along: ``flat_index``, ``values``, its
        gradient and the per-parameter state of ``optimizers`` (Adam's moments)."""
        structure = self.structure()
        if structure.in_kernel_order:
            return
        order = structure.kernel_order()
        self.flat_index.copy_(self.flat_index[order])
        self.values.copy_(self.values[order])
        if self.values.grad is not None:
            self.values.grad.copy_(self.values.grad[order])
        for optimizer in optimizers:
            for value in optimizer.state.get(self.values, {}).values():
                if isinstance(value, torch.Tensor) and value.shape == self.values.shape:
                    value.copy_(value[order])

    def expect_concat_(self, head: int) -> None:
        """Prepare for calls through :meth:`forward_concat` whose first part has ``head``
        features (a critic's observation): build the structure for that head and order the
        slots for it (before any optimizer has state for ``values``)."""
        self.structure(head)
        self.order_for_kernels_()

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        self._structure_cache = None
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_structure_cache"] = None  # derived data: not copied or pickled
        return state

    # -- dense views ------------------------------------------------------------------------------
    @property
    def weight(self) -> torch.Tensor:  # type: ignore[override]
        """The dense weight (out_features × in_features), zero at inactive positions, built on
        demand. Differentiable with respect to ``values``; writing into it changes nothing."""
        dense = self.values.new_zeros(self.in_features * self.out_features)
        if torch.is_grad_enabled() and self.values.requires_grad:
            dense = dense.index_copy(0, self.flat_index, self.values)
        else:
            dense.index_copy_(0, self.flat_index, self.values.detach())
        return dense.view(self.out_features, self.in_features)

    @property
    def mask(self) -> torch.Tensor:  # type: ignore[override]
        """The boolean mask of active connections (out_features × in_features), built on demand;
        writing into it changes nothing (use :meth:`set_mask_`)."""
        mask = torch.zeros(self.in_features * self.out_features, dtype=torch.bool, device=self.flat_index.device)
        return mask.index_fill_(0, self.flat_index, True).view(self.out_features, self.in_features)

    @property
    def nnz(self) -> int:
        """Number of active connections (the length of ``values``)."""
        return self.values.numel()

    def active_positions(self) -> torch.Tensor:
        """The flat positions of the active connections, increasing."""
        return self.structure().sorted_positions

    def active_values(self) -> torch.Tensor:
        """The active weights, in the order of :meth:`active_positions` (detached)."""
        return self.values.detach()[self.structure().sorted_slots]

    def abs_weight_sum(self) -> float:
        """The sum of |w| over the active connections."""
        return float(self.values.detach().abs().sum().item())

    # -- topology -------------------------------------------------------------------------------
    def _slot_map(self) -> torch.Tensor:
        """A dense int32 map from flat position to the slot holding it, -1 where inactive (a few
        milliseconds at 17,000 × 256: cheaper than a binary search for many positions)."""
        slot_map = torch.full((self.in_features * self.out_features,), -1, dtype=torch.int32,
                              device=self.flat_index.device)
        return slot_map.index_copy_(0, self.flat_index, torch.arange(
            self.nnz, dtype=torch.int32, device=self.flat_index.device))

    @torch.no_grad()
    def replace_connections(self, dropped: torch.Tensor, grown: torch.Tensor) -> tuple[nn.Parameter, torch.Tensor]:
        """Move connections (see :meth:`SparseLinear.replace_connections`): each grown connection
        takes the slot of a dropped one, with value and gradient zero. Returns ``values`` and those
        slots."""
        self._check_replacement(dropped, grown)
        numel = self.in_features * self.out_features
        if grown.numel() and (int(grown.min()) < 0 or int(grown.max()) >= numel):
            raise ValueError(f"grown positions must lie in [0, {numel})")
        slot_map = self._slot_map()
        slots = slot_map[dropped].long()
        if bool((slots < 0).any()):
            raise ValueError("dropped positions must be active connections")
        if bool((slot_map[grown] >= 0).any()):
            raise ValueError("grown positions must be inactive connections")
        self.flat_index[slots] = grown
        self.values[slots] = 0
        if self.values.grad is not None:
            self.values.grad[slots] = 0
        self._structure_cache = None
        return self.values, slots

    @torch.no_grad()
    def set_mask_(self, mask: torch.Tensor) -> None:
        """Make the connections those of ``mask``, which must have exactly :attr:`nnz` entries set;
        kept connections keep their slot and value, new ones take the freed slots at zero."""
        shape = (self.out_features, self.in_features)
        if tuple(mask.shape) != shape:
            raise ValueError(f"mask must have shape {shape}, got {tuple(mask.shape)}")
        wanted = mask.reshape(-1).to(dtype=torch.bool, device=self.flat_index.device, copy=True)
        count = int(wanted.count_nonzero())
        if count != self.nnz:
            raise ValueError(f"a csr layer keeps {self.nnz} connections; the mask has {count}")
        current = self.active_positions()
        dropped = current[~wanted[current]]
        if dropped.numel():
            wanted[current] = False
            self.replace_connections(dropped, wanted.nonzero().squeeze(1))

    @torch.no_grad()
    def follow_topology_(self, leader: SparseLinear) -> None:
        """Take ``leader``'s connections. From another CSR layer, also its slot order: each slot
        gets the leader's position for it, with this layer's weight of that connection when it
        had one, else zero."""
        if (leader.in_features, leader.out_features) != (self.in_features, self.out_features):
            raise ValueError(f"cannot follow a {leader.out_features}×{leader.in_features} layer "
                             f"with a {self.out_features}×{self.in_features} one")
        if not isinstance(leader, CSRSparseLinear) or leader.nnz != self.nnz:
            super().follow_topology_(leader)
            return
        differ = (self.flat_index != leader.flat_index).nonzero().squeeze(1)
        if differ.numel() == 0:
            return
        positions = leader.flat_index[differ]
        slots = self._slot_map()[positions].long()
        carried = self.values[slots.clamp(min=0)].masked_fill_(slots < 0, 0.0)
        self.flat_index[differ] = positions
        self.values[differ] = carried
        if self.values.grad is not None:
            self.values.grad[differ] = 0
        self._structure_cache = None

    # -- computation ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the sparse linear map to ``x`` of shape (..., in_features)."""
        return csr_linear(x, self.values, self.bias, self.structure(self.in_features), self._sink())

    def forward_concat(self, *parts: torch.Tensor) -> torch.Tensor:
        """The layer applied to ``torch.cat(parts, dim=-1)`` without building it: the first part
        goes through the sparse kernels (as the feature-major copy it may already be), the others
        (e.g. a critic's action) through a small dense matrix."""
        if len(parts) < 2:
            return self(*parts)
        head, tail = self._split_parts(parts)
        return csr_linear(head, self.values, self.bias, self.structure(head.shape[-1]), self._sink(), tail)

    def _split_parts(self, parts: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The kernels' head input and the tail (``None`` for one part) of :meth:`forward_concat`'s parts."""
        if len(parts) < 2:
            return parts[0], None
        tail = parts[1] if len(parts) == 2 else torch.cat(parts[1:], dim=-1)
        if parts[0].shape[-1] + tail.shape[-1] != self.in_features:
            raise ValueError(f"the parts have {parts[0].shape[-1] + tail.shape[-1]} features in all, "
                             f"this layer takes {self.in_features}")
        return parts[0], tail

    def _sink(self) -> CSRSparseLinear | None:
        """This layer, when it must record the dense-weight gradient of the next backward pass."""
        armed = self._capture_armed and self.values.requires_grad and torch.is_grad_enabled()
        return self if armed else None


def forward_concat_shared(layers: Sequence[CSRSparseLinear], *parts: torch.Tensor) -> list[torch.Tensor]:
    """``[layer.forward_concat(*parts) for layer in layers]`` (a critic's Q-networks' input layers on
    the same observation and action), bit for bit, in one sweep of the kernels: each tile of the
    first part is loaded once for all the layers, and where only their weights and biases need
    gradients one autograd node serves them all (see :mod:`~sparse_rl.sparse.shared_input`)."""
    if not parts:
        raise ValueError("forward_concat_shared needs at least one input part")
    split = [layer._split_parts(parts) for layer in layers]
    head = split[0][0]
    return csr_linear_shared(head, [layer.structure(head.shape[-1]) for layer in layers],
                             [layer.values for layer in layers], [layer.bias for layer in layers],
                             [layer._sink() for layer in layers], [tail for _, tail in split])


class _ReLUOfFeatureMajor(torch.autograd.Function):
    """``relu(x)`` whose backward pass works in the layout of ``x`` when ``x`` is feature-major (a csr
    layer's output, the transpose of a contiguous matrix) and the incoming gradient is not (the
    next dense layer's input gradient, row-major): torch's ``threshold_backward`` over two layouts
    walks one of them across the grain, ~15× the time of the same operation on one layout (measured
    at 256 × 256). Here the gradient is transposed once (the copy the csr layer's backward pass makes
    anyway, which then finds it contiguous) and the select runs on one layout: the same numbers."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = torch.relu(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (out,) = ctx.saved_tensors
        if _feature_major(out) and not _feature_major(grad):
            return torch.ops.aten.threshold_backward(grad.t().contiguous(), out.t(), 0).t()
        return torch.ops.aten.threshold_backward(grad, out, 0)


def _feature_major(tensor: torch.Tensor) -> bool:
    """Whether a matrix is the transpose of a contiguous one (and not itself contiguous)."""
    return tensor.dim() == 2 and tensor.shape[0] > 1 and tensor.t().is_contiguous() and not tensor.is_contiguous()


class FeatureMajorReLU(nn.ReLU):
    """``nn.ReLU`` for the output of a csr layer (feature-major memory): the same values and gradients,
    without the slow two-layout backward pass (see :class:`_ReLUOfFeatureMajor`). No parameters or
    state: a network with it has the state dict of one with ``nn.ReLU``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(x)``; through :class:`_ReLUOfFeatureMajor` when a gradient will flow back."""
        if self.inplace or not (torch.is_grad_enabled() and x.requires_grad):
            return super().forward(x)
        return _ReLUOfFeatureMajor.apply(x)


def feature_major_activations_(network: nn.Module) -> int:
    """Replace, in every ``nn.Sequential`` of ``network``, each plain ``nn.ReLU`` that follows a
    :class:`CSRSparseLinear` by a :class:`FeatureMajorReLU` (same numbers, a faster backward pass).
    Returns how many were replaced."""
    replaced = 0
    for module in network.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module)
        for index in range(1, len(children)):
            previous, current = children[index - 1], children[index]
            if isinstance(previous, CSRSparseLinear) and type(current) is nn.ReLU and not current.inplace:
                module[index] = FeatureMajorReLU()
                replaced += 1
    return replaced
