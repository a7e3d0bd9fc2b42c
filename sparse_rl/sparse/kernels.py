"""Sparse kernels of the ``csr`` backend: the cached index structure and the autograd Function.

A CSR layer stores its ``nnz`` active weights in *slots*: ``values[s]`` is the weight of the
connection at flat position ``flat_index[s]`` (``row · in_features + col``). Topology updates
rewrite single slots, so the slot order is arbitrary; :class:`CSRStructure` keeps the orders the
kernels need (built once per topology, reused by every forward and backward pass):

- row-major, split into column blocks, for the forward ``yᵀ = W xᵀ`` (``torch.sparse`` CSR × dense
  through MKL, one call per block of ``block_columns`` inputs so that the block of ``xᵀ`` it reads
  stays in cache);
- column-major (the CSR form of ``Wᵀ``), for ``∂L/∂xᵀ = Wᵀ (∂L/∂y)ᵀ`` and for the weight gradient,
  a sampled product ``∂L/∂W[r, c] = ⟨xᵀ[c], (∂L/∂y)ᵀ[r]⟩`` computed only at the active positions by
  ``torch.sparse.sampled_addmm``, which then walks ``xᵀ`` once, row by row.

Each product runs on the native kernels of :mod:`~sparse_rl.sparse.native` (compiled C, several
times faster) where they are available and the tensors are float32 on the CPU, else on torch's.

Activations are handled *feature-major* (``xᵀ``, in_features × batch): a gathered input row is
then a contiguous run of ``batch`` numbers. The Function returns ``yᵀ`` viewed as ``y`` (a
transposed view), so the next CSR layer reads its ``xᵀ`` without a copy.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch.autograd.function import once_differentiable

from sparse_rl.sparse.native import native_kernels, supports

# torch warns once per process (a C++ warn-once) that CSR tensors are "in beta"; the few operations
# used here (construction, addmm into a dense result, sampled_addmm) are stable and tested. Spend
# that one warning here, silently.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torch.sparse_csr_tensor(torch.zeros(2, dtype=torch.int64), torch.zeros(0, dtype=torch.int64), torch.zeros(0),
                            (1, 1))

#: inputs per column block of the forward kernel (one block when a layer has at most twice as many)
BLOCK_COLUMNS = 256


class DenseGradientSink(Protocol):
    """Something that takes the dense-weight gradient ``∂L/∂W`` (out_features × in_features)."""

    def _store_dense_grad(self, grad: torch.Tensor) -> None: ...


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


@dataclass(frozen=True)
class CSRBlock:
    """One column block of the row-major structure: inputs ``[col_start, col_stop)``, whose
    connections occupy ``[start, stop)`` of the blocked order."""

    col_start: int
    col_stop: int
    start: int
    stop: int
    crow: torch.Tensor
    col: torch.Tensor


@dataclass(frozen=True)
class CSRStructure:
    """The index structure of a CSR layer for one topology (see the module docstring).

    :param in_features: the layer's inputs
    :param out_features: the layer's outputs
    :param sorted_positions: the active flat positions in increasing (row-major) order
    :param sorted_slots: the slot holding each of ``sorted_positions``
    :param block_slots: slots in blocked row-major order (column block, then row, then column)
    :param blocks: the column blocks of the forward kernel
    :param t_slots: slots in column-major order (the CSR order of ``Wᵀ``)
    :param t_inverse: for each slot, its index in ``t_slots``
    :param t_crow: row pointers of ``Wᵀ`` (in_features + 1)
    :param t_col: column (= output unit) of each connection of ``Wᵀ``
    """

    in_features: int
    out_features: int
    sorted_positions: torch.Tensor
    sorted_slots: torch.Tensor
    block_slots: torch.Tensor
    blocks: tuple[CSRBlock, ...]
    t_slots: torch.Tensor
    t_inverse: torch.Tensor
    t_crow: torch.Tensor
    t_col: torch.Tensor

    @property
    def nnz(self) -> int:
        """Number of connections."""
        return self.sorted_positions.numel()

    @classmethod
    def build(
        cls, flat_index: torch.Tensor, in_features: int, out_features: int, block_columns: int = BLOCK_COLUMNS
    ) -> CSRStructure:
        """The structure of the connections at ``flat_index`` (one flat position per slot, all
        distinct; ``ValueError`` otherwise).

        :param flat_index: (nnz,) int64 flat positions ``row · in_features + col``
        :param in_features: the layer's inputs
        :param out_features: the layer's outputs
        :param block_columns: inputs per column block of the forward kernel
        """
        numel = in_features * out_features
        # int32 sort keys where they fit: sorting is the main cost of a rebuild, and faster on int32.
        key_dtype = torch.int32 if numel < 2**31 else torch.int64
        if flat_index.numel():
            lowest, highest = torch.aminmax(flat_index)
            if int(lowest) < 0 or int(highest) >= numel:
                raise ValueError(f"connection positions must lie in [0, {numel})")
        sorted_keys, sorted_slots = torch.sort(flat_index.detach().to(key_dtype))
        if sorted_keys.numel() > 1 and bool((sorted_keys[1:] == sorted_keys[:-1]).any()):
            raise ValueError("two slots of a CSR layer hold the same connection")
        sorted_positions = sorted_keys.long()
        nnz = sorted_positions.numel()
        device = flat_index.device
        n_blocks = 1 if in_features <= 2 * block_columns else -(-in_features // block_columns)
        width = -(-in_features // n_blocks)
        rows = sorted_positions // in_features
        cols = sorted_positions - rows * in_features
        if n_blocks == 1:
            block_slots, b_rows, b_cols = sorted_slots, rows, cols
            block_of = torch.zeros_like(cols)
        else:  # row-major within each block: a stable sort of the row-major order by block
            block_order = torch.sort((cols // width).to(torch.int32), stable=True).indices
            block_slots, b_rows, b_cols = sorted_slots[block_order], rows[block_order], cols[block_order]
            block_of = b_cols // width
        # Row pointers of every block at once: counts per (block, row) do not depend on the order.
        crows = torch.zeros(n_blocks, out_features + 1, dtype=torch.int64, device=device)
        per_row = torch.bincount(block_of * out_features + b_rows, minlength=n_blocks * out_features)
        torch.cumsum(per_row.view(n_blocks, out_features), 1, out=crows[:, 1:])
        local_cols = b_cols - block_of * width
        ends = torch.cumsum(crows[:, -1], 0).tolist()
        blocks = []
        for b, stop in enumerate(ends):
            start = 0 if b == 0 else ends[b - 1]
            if stop > start:
                blocks.append(CSRBlock(b * width, min(in_features, (b + 1) * width), start, stop, crows[b],
                                       local_cols[start:stop]))
        t_order = torch.sort((cols * out_features + rows).to(key_dtype)).indices
        t_slots = sorted_slots[t_order]
        t_inverse = torch.empty_like(t_slots)
        t_inverse[t_slots] = torch.arange(nnz, device=device)
        t_crow = torch.zeros(in_features + 1, dtype=torch.int64, device=device)
        torch.cumsum(torch.bincount(cols, minlength=in_features), 0, out=t_crow[1:])
        return cls(in_features, out_features, sorted_positions, sorted_slots, block_slots, tuple(blocks),
                   t_slots, t_inverse, t_crow, rows[t_order])

    def matmul(self, values: torch.Tensor, x_t: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``yᵀ = W xᵀ (+ b)``, (out_features × batch), from feature-major ``x_t`` (in_features ×
        batch, contiguous)."""
        batch = x_t.shape[1]
        if bias is not None:
            # A fresh tensor: at batch 1, ``expand(...).contiguous()`` would be a view of the bias itself,
            # and the products below accumulate into ``y_t`` in place.
            y_t = x_t.new_empty(self.out_features, batch).copy_(bias.detach().unsqueeze(1))
        else:
            # A zero-filled result: MKL with beta = 0 on uninitialised memory can be slow.
            y_t = x_t.new_zeros(self.out_features, batch)
        if batch == 0:
            return y_t
        blocked = values.detach().index_select(0, self.block_slots)
        if supports(blocked, x_t):
            native = native_kernels()
            for block in self.blocks:
                native.spmm_acc(block.crow, block.col, blocked[block.start:block.stop],
                                 x_t[block.col_start:block.col_stop], y_t)
            return y_t
        for block in self.blocks:
            weights = _csr(block.crow, block.col, blocked[block.start:block.stop],
                           (self.out_features, block.col_stop - block.col_start))
            y_t.addmm_(weights, x_t[block.col_start:block.col_stop])
        return y_t

    def matmul_transposed(self, values: torch.Tensor, grad_t: torch.Tensor) -> torch.Tensor:
        """``Wᵀ gᵀ``, (in_features × batch), from ``grad_t`` (out_features × batch, contiguous)."""
        out = grad_t.new_zeros(self.in_features, grad_t.shape[1])
        if grad_t.shape[1] == 0 or self.nnz == 0:
            return out
        values_t = values.detach().index_select(0, self.t_slots)
        if supports(values_t, grad_t):
            native_kernels().spmm_acc(self.t_crow, self.t_col, values_t, grad_t, out)
            return out
        weights_t = _csr(self.t_crow, self.t_col, values_t, (self.in_features, self.out_features))
        return out.addmm_(weights_t, grad_t)

    def sampled_grad(self, x_t: torch.Tensor, grad_t: torch.Tensor) -> torch.Tensor:
        """``∂L/∂values`` in slot order: ``(gᵀ x)[r, c]`` at each active position only, from
        ``x_t`` (in_features × batch) and ``grad_t`` (out_features × batch), both contiguous."""
        if self.nnz == 0 or x_t.shape[1] == 0:
            return x_t.new_zeros(self.nnz)
        if supports(x_t, grad_t):
            return native_kernels().sampled_dot(self.t_crow, self.t_col, x_t, grad_t).index_select(0, self.t_inverse)
        pattern = _csr(self.t_crow, self.t_col, x_t.new_zeros(self.nnz), (self.in_features, self.out_features))
        sampled = torch.sparse.sampled_addmm(pattern, x_t, grad_t.t(), beta=0.0)
        return sampled.values().index_select(0, self.t_inverse)


class CSRLinearFunction(torch.autograd.Function):
    """``y = x Wᵀ + b`` for a CSR weight, with feature-major kernels (see the module docstring).

    Inputs: ``x`` (batch × in_features), ``values`` (nnz,), ``bias`` (out_features,) or ``None``,
    the :class:`CSRStructure`, and an optional sink that receives the dense-weight gradient
    ``gᵀ x`` on the backward pass (RigL's grow score).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        values: torch.Tensor,
        bias: torch.Tensor | None,
        structure: CSRStructure,
        sink: DenseGradientSink | None,
    ) -> torch.Tensor:
        x_t = x.t().contiguous()  # free when x is the transposed view another CSR layer returned
        y_t = structure.matmul(values, x_t, bias)
        # Keep only what the backward pass will use.
        ctx.save_for_backward(x_t if ctx.needs_input_grad[1] or sink is not None else None,
                              values if ctx.needs_input_grad[0] else None)
        ctx.structure = structure
        ctx.sink = sink
        ctx.has_bias = bias is not None
        return y_t.t()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_y: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x_t, values = ctx.saved_tensors
        structure: CSRStructure = ctx.structure
        grad_t = grad_y.t().contiguous()
        grad_x = grad_values = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = structure.matmul_transposed(values, grad_t).t()
        if ctx.needs_input_grad[1]:
            grad_values = structure.sampled_grad(x_t, grad_t)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_t.sum(1)
        if ctx.sink is not None:
            ctx.sink._store_dense_grad(grad_t @ x_t.t())
        return grad_x, grad_values, grad_bias, None, None


def csr_linear(
    x: torch.Tensor,
    values: torch.Tensor,
    bias: torch.Tensor | None,
    structure: CSRStructure,
    sink: DenseGradientSink | None = None,
) -> torch.Tensor:
    """Apply a CSR linear map to ``x`` of shape (..., in_features); differentiable in ``x``,
    ``values`` and ``bias``.

    :param x: the input, (..., in_features)
    :param values: the active weights in slot order, (nnz,)
    :param bias: the bias (out_features,) or ``None``
    :param structure: the layer's current :class:`CSRStructure`
    :param sink: receives the dense-weight gradient on the backward pass (or ``None``)
    """
    if x.dim() == 2:
        return CSRLinearFunction.apply(x, values, bias, structure, sink)
    y = CSRLinearFunction.apply(x.reshape(-1, structure.in_features), values, bias, structure, sink)
    return y.reshape(*x.shape[:-1], structure.out_features)
