"""Sparse kernels of the ``csr`` backend: the cached index structure and the autograd Function.

A CSR layer stores its ``nnz`` active weights in *slots*: ``values[s]`` is the weight of the
connection at flat position ``flat_index[s]`` (``row · in_features + col``). Topology updates
rewrite single slots, so the slot order is arbitrary; :class:`CSRStructure` keeps the orders the
kernels need (built once per topology, reused by every forward and backward pass):

- *blocked*: the inputs split into column blocks of ``BLOCK_COLUMNS``, row-major within each
  block, for the forward ``yᵀ = W xᵀ`` and for the weight gradient, a product sampled at the active
  positions only, ``∂L/∂W[r, c] = ⟨(∂L/∂y)ᵀ[r], xᵀ[c]⟩``; the kernels sweep one block and one tile
  of the batch at a time, so that what they read of ``xᵀ`` stays in cache;
- column-major (the CSR form of ``Wᵀ``), for the input gradient ``∂L/∂xᵀ = Wᵀ (∂L/∂y)ᵀ``.

A structure can also split the inputs into a *head* (the sparse kernels' inputs) and a small
*tail* applied as a dense matrix: a critic's input layer takes ``concat(observation, action)``
as the observation (whose feature-major copy the replay batch already is) plus the action,
without building the concatenation, and the actor's loss gets the action's gradient alone.

Each product runs on the native kernels of :mod:`~sparse_rl.sparse.native` (compiled C, several
times faster) where they are available and the tensors are float32 on the CPU, else on torch's.

Activations are handled *feature-major* (``xᵀ``, in_features × batch): a gathered input row is
then a contiguous run of ``batch`` numbers. The Function returns ``yᵀ`` viewed as ``y`` (a
transposed view), so the next CSR layer reads its ``xᵀ`` without a copy.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch.autograd.function import once_differentiable

from sparse_rl.sparse.native import MAX_PARTS, native_kernels, supports

# torch warns once per process (a C++ warn-once) that CSR tensors are "in beta"; the few operations
# used here (construction, addmm into a dense result, sampled_addmm) are stable and tested. Spend
# that one warning here, silently.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torch.sparse_csr_tensor(torch.zeros(2, dtype=torch.int64), torch.zeros(0, dtype=torch.int64), torch.zeros(0),
                            (1, 1))

#: inputs per column block of the blocked kernels: a block's tile of 64 batch columns (32 KiB)
#: stays in the L1 cache while the block's rows sweep it
BLOCK_COLUMNS = 128


class DenseGradientSink(Protocol):
    """Something that takes the dense-weight gradient ``∂L/∂W`` (out_features × in_features)."""

    def _store_dense_grad(self, grad: torch.Tensor) -> None: ...


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


@dataclass(frozen=True)
class CSRStructure:
    """The index structure of a CSR layer for one topology (see the module docstring).

    The inputs ``[0, head)`` go through the sparse kernels; the inputs ``[head, in_features)``, if
    any, form a *tail*: a few extra columns (a critic's actions) applied as a small dense matrix,
    so that the layer can take ``concat(x_head, x_tail)`` without building the concatenation.

    :param in_features: the layer's inputs
    :param out_features: the layer's outputs
    :param head: the inputs handled by the sparse kernels, ``[0, head)``
    :param width: inputs per column block of the blocked order
    :param sorted_positions: the active flat positions in increasing (row-major) order
    :param sorted_slots: the slot holding each of ``sorted_positions``
    :param block_slots: the slots of the head's connections in blocked order (column block, then
        row, then column)
    :param block_crow: row pointers of every block, one after the other (blocks · out_features + 1)
    :param block_col: column of each connection within its block (int32), blocked order
    :param t_slots: slots in column-major order (the CSR order of ``Wᵀ``)
    :param t_crow: row pointers of ``Wᵀ`` (in_features + 1)
    :param t_col: column (= output unit) of each connection of ``Wᵀ`` (int32)
    :param tail_slots: slots of the tail's connections
    :param tail_rows: their output units
    :param tail_cols: their inputs, counted from ``head``
    :param tail_flat: their flat positions in the tail's dense (out_features × tail) matrix,
        ``tail_rows · tail + tail_cols``
    :param in_kernel_order: whether the slots already are the kernels' order (blocked head, then
        tail; see :meth:`~sparse_rl.sparse.layers.csr.CSRSparseLinear.order_for_kernels_`): the kernels
        then read and write ``values`` and its gradient without gathering them
    """

    in_features: int
    out_features: int
    head: int
    width: int
    sorted_positions: torch.Tensor
    sorted_slots: torch.Tensor
    block_slots: torch.Tensor
    block_crow: torch.Tensor
    block_col: torch.Tensor
    t_slots: torch.Tensor
    t_crow: torch.Tensor
    t_col: torch.Tensor
    tail_slots: torch.Tensor
    tail_rows: torch.Tensor
    tail_cols: torch.Tensor
    tail_flat: torch.Tensor
    in_kernel_order: bool

    @property
    def nnz(self) -> int:
        """Number of connections."""
        return self.sorted_positions.numel()

    @property
    def tail(self) -> int:
        """Number of tail inputs (``in_features - head``)."""
        return self.in_features - self.head

    @classmethod
    def build(
        cls, flat_index: torch.Tensor, in_features: int, out_features: int, block_columns: int = BLOCK_COLUMNS,
        head: int | None = None,
    ) -> CSRStructure:
        """The structure of the connections at ``flat_index`` (one flat position per slot, all
        distinct; ``ValueError`` otherwise).

        :param flat_index: (nnz,) int64 flat positions ``row · in_features + col``
        :param in_features: the layer's inputs
        :param out_features: the layer's outputs
        :param block_columns: inputs per column block of the blocked kernels
        :param head: inputs handled by the sparse kernels (default: all); the rest are the tail
        """
        head = in_features if head is None else head
        if not 0 <= head <= in_features:
            raise ValueError(f"head must lie in [0, {in_features}], got {head}")
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
        device = flat_index.device
        rows = sorted_positions // in_features
        cols = sorted_positions - rows * in_features
        in_head = cols < head
        width = max(1, min(block_columns, head))
        n_blocks = -(-head // width)
        # Row-major within each block: a stable sort of the (row-major) head connections by block.
        h_slots, h_rows, h_cols = sorted_slots[in_head], rows[in_head], cols[in_head]
        block_of = h_cols // width
        block_order = torch.sort(block_of.to(torch.int32), stable=True).indices
        block_of = block_of[block_order]
        block_crow = torch.zeros(n_blocks * out_features + 1, dtype=torch.int64, device=device)
        per_row = torch.bincount(block_of * out_features + h_rows[block_order], minlength=n_blocks * out_features)
        torch.cumsum(per_row, 0, out=block_crow[1:])
        t_order = torch.sort((cols * out_features + rows).to(key_dtype)).indices
        t_crow = torch.zeros(in_features + 1, dtype=torch.int64, device=device)
        torch.cumsum(torch.bincount(cols, minlength=in_features), 0, out=t_crow[1:])
        in_tail = ~in_head
        block_slots, tail_slots = h_slots[block_order], sorted_slots[in_tail]
        kernel_order = torch.cat([block_slots, tail_slots])
        in_kernel_order = bool(torch.equal(kernel_order, torch.arange(kernel_order.numel(), device=device)))
        return cls(in_features, out_features, head, width, sorted_positions, sorted_slots,
                   block_slots, block_crow, (h_cols[block_order] - block_of * width).to(torch.int32),
                   sorted_slots[t_order], t_crow, rows[t_order].to(torch.int32),
                   tail_slots, rows[in_tail], cols[in_tail] - head,
                   rows[in_tail] * (in_features - head) + cols[in_tail] - head, in_kernel_order)

    def kernel_order(self) -> torch.Tensor:
        """The slots in the kernels' order: the head's in blocked order, then the tail's."""
        return torch.cat([self.block_slots, self.tail_slots])

    def tail_weight(self, values: torch.Tensor) -> torch.Tensor:
        """The tail's weights as a dense (out_features × tail) matrix (detached)."""
        weight = values.new_zeros(self.out_features * self.tail)
        return weight.index_copy_(0, self.tail_flat, self._tail_values(values)).view(self.out_features, self.tail)

    def _tail_values(self, values: torch.Tensor) -> torch.Tensor:
        """The tail's weights in the order of :attr:`tail_slots` (detached; a view in kernel order,
        where the tail's slots are the last ones, in that order)."""
        if self.in_kernel_order:
            return values.detach()[self.block_slots.numel():]
        return values.detach().index_select(0, self.tail_slots)

    def _blocks(self) -> list[tuple[int, int, int, int]]:
        """``(first input, inputs, start, stop)`` of each non-empty block (for the torch path)."""
        pointers = self.block_crow[:: self.out_features].tolist()
        return [(b * self.width, min(self.width, self.head - b * self.width), start, stop)
                for b, (start, stop) in enumerate(zip(pointers[:-1], pointers[1:])) if stop > start]

    def matmul(self, values: torch.Tensor, x_t: torch.Tensor, bias: torch.Tensor | None = None,
               x_tail: torch.Tensor | None = None) -> torch.Tensor:
        """``yᵀ = W xᵀ (+ b)``, (out_features × batch), from the head's feature-major inputs ``x_t``
        (head × batch, rows contiguous, any row stride: see :func:`feature_major`) and the tail's
        ``x_tail`` (batch × tail; needed when the structure has a tail)."""
        y_t = self._output_start(values, x_t, bias, x_tail)
        if x_t.shape[1] and self.block_slots.numel():
            self._add_head_product(self._head_values(values), x_t, y_t)
        return y_t

    def _output_start(self, values: torch.Tensor, x_t: torch.Tensor, bias: torch.Tensor | None,
                      x_tail: torch.Tensor | None) -> torch.Tensor:
        """``yᵀ`` before the head's sparse product: the bias (or zeros), plus the tail's product."""
        batch = x_t.shape[1]
        if bias is not None:
            # A fresh tensor: at batch 1, ``expand(...).contiguous()`` would be a view of the bias itself,
            # and the products below accumulate into ``y_t`` in place.
            y_t = x_t.new_empty(self.out_features, batch).copy_(bias.detach().unsqueeze(1))
        else:
            # A zero-filled result: MKL with beta = 0 on uninitialised memory can be slow.
            y_t = x_t.new_zeros(self.out_features, batch)
        if batch and self.tail:
            if x_tail is None or x_tail.shape != (batch, self.tail):
                raise ValueError(f"this structure needs tail inputs of shape {(batch, self.tail)}")
            y_t.addmm_(self.tail_weight(values), x_tail.t())
        return y_t

    def _head_values(self, values: torch.Tensor) -> torch.Tensor:
        """The head's weights in blocked order (detached; a view where the slots are in kernel order)."""
        if self.in_kernel_order:
            return values.detach()[: self.block_slots.numel()]
        return values.detach().index_select(0, self.block_slots)

    def _add_head_product(self, blocked: torch.Tensor, x_t: torch.Tensor, y_t: torch.Tensor) -> None:
        """``y_t += W_head x_t`` from the head's weights in blocked order."""
        if supports(blocked, x_t):
            native_kernels().spmm_blocked(self.block_crow, self.block_col, blocked, self.width, x_t, y_t)
            return
        for first, inputs, start, stop in self._blocks():
            crow = self.block_crow[(first // self.width) * self.out_features:][: self.out_features + 1] - start
            weights = _csr(crow, self.block_col[start:stop].long(), blocked[start:stop], (self.out_features, inputs))
            y_t.addmm_(weights, x_t[first:first + inputs])

    def matmul_transposed(self, values: torch.Tensor, grad_t: torch.Tensor) -> torch.Tensor:
        """``Wᵀ gᵀ`` for the head's inputs, (head × batch), from ``grad_t`` (out_features × batch,
        contiguous)."""
        out = grad_t.new_zeros(self.head, grad_t.shape[1])
        crow = self.t_crow[: self.head + 1]
        count = int(crow[-1])
        if grad_t.shape[1] == 0 or count == 0:
            return out
        values_t = values.detach().index_select(0, self.t_slots[:count])
        if supports(values_t, grad_t):
            # Wᵀ as one block of out_features columns
            native_kernels().spmm_blocked(crow, self.t_col, values_t, self.out_features, grad_t, out)
            return out
        weights_t = _csr(crow, self.t_col[:count].long(), values_t, (self.head, self.out_features))
        return out.addmm_(weights_t, grad_t)

    def tail_input_grad(self, values: torch.Tensor, grad_t: torch.Tensor) -> torch.Tensor:
        """``∂L/∂x_tail`` (batch × tail) from ``grad_t`` (out_features × batch)."""
        return grad_t.t() @ self.tail_weight(values)

    def sampled_grad(self, x_t: torch.Tensor, grad_t: torch.Tensor, x_tail: torch.Tensor | None = None) -> torch.Tensor:
        """``∂L/∂values`` in slot order: ``(gᵀ x)[r, c]`` at each active position only, from the
        head's ``x_t`` (head × batch, rows contiguous), ``grad_t`` (out_features × batch,
        contiguous) and the tail's ``x_tail`` (batch × tail)."""
        grad = self._sampled_start(x_t, grad_t, x_tail)
        if self._has_sampled_head(x_t):
            if supports(x_t, grad_t):
                out = self._head_grad_out(grad)
                native_kernels().sddmm_blocked(self.block_crow, self.block_col, self.width, x_t, grad_t, out=out)
                self._finish_head_grad(grad, out)
            else:
                self._torch_sampled_head(grad, x_t, grad_t)
        return grad

    def _sampled_start(self, x_t: torch.Tensor, grad_t: torch.Tensor, x_tail: torch.Tensor | None) -> torch.Tensor:
        """The gradient in slot order with the tail's entries filled in and the head's zero."""
        grad = x_t.new_zeros(self.nnz)
        if self.nnz and x_t.shape[1] and self.tail_slots.numel():
            assert x_tail is not None
            tail_grad = (grad_t @ x_tail).view(-1).index_select(0, self.tail_flat)
            if self.in_kernel_order:  # the tail's slots are the last ones
                grad[self.block_slots.numel():] = tail_grad
            else:
                grad.index_copy_(0, self.tail_slots, tail_grad)
        return grad

    def _has_sampled_head(self, x_t: torch.Tensor) -> bool:
        """Whether the head's part of a sampled gradient has anything to compute."""
        return bool(self.block_slots.numel()) and x_t.shape[1] > 0

    def _head_grad_out(self, grad: torch.Tensor) -> torch.Tensor:
        """Where the native kernel writes the head's sampled gradient (zeros, blocked order): straight
        into the head's slots of ``grad`` in kernel order, else a scratch tensor."""
        head_nnz = self.block_slots.numel()
        return grad[:head_nnz] if self.in_kernel_order else grad.new_zeros(head_nnz)

    def _finish_head_grad(self, grad: torch.Tensor, out: torch.Tensor) -> None:
        """Move the head's sampled gradient from :meth:`_head_grad_out`'s tensor into its slots."""
        if not self.in_kernel_order:
            grad.index_copy_(0, self.block_slots, out)

    def _torch_sampled_head(self, grad: torch.Tensor, x_t: torch.Tensor, grad_t: torch.Tensor) -> None:
        """The head's sampled gradient on torch's kernels, into its slots of ``grad``."""
        count = int(self.t_crow[self.head])
        pattern = _csr(self.t_crow[: self.head + 1], self.t_col[:count].long(), x_t.new_zeros(count),
                       (self.head, self.out_features))
        sampled = torch.sparse.sampled_addmm(pattern, x_t, grad_t.t(), beta=0.0).values()
        grad.index_copy_(0, self.t_slots[:count], sampled)

    def shares_blocks_with(self, other: CSRStructure) -> bool:
        """Whether the shared-input kernels can take both structures in one call: the same head,
        outputs and column blocks (their connections may differ)."""
        return (self.head, self.out_features, self.width, self.block_crow.numel()) == (
            other.head, other.out_features, other.width, other.block_crow.numel())


def matmul_shared(structures: Sequence[CSRStructure], values: Sequence[torch.Tensor], x_t: torch.Tensor,
                  biases: Sequence[torch.Tensor | None], x_tails: Sequence[torch.Tensor | None]) -> list[torch.Tensor]:
    """:meth:`CSRStructure.matmul` of several layers that read the same ``x_t`` (e.g. a critic's
    Q-networks' input layers), each with its own structure, values, bias and tail input: the native
    kernels sweep each tile of ``x_t`` for all of them at once (where the structures
    :meth:`~CSRStructure.shares_blocks_with` each other). Each result is bit-identical to the
    layer's own :meth:`~CSRStructure.matmul`."""
    ys = [structure._output_start(v, x_t, bias, tail)
          for structure, v, bias, tail in zip(structures, values, biases, x_tails, strict=True)]
    if x_t.shape[1] == 0:
        return ys
    todo = [i for i, structure in enumerate(structures) if structure.block_slots.numel()]
    heads = [structures[i]._head_values(values[i]) for i in todo]
    if _shared_call(x_t, [structures[i] for i in todo], heads):
        first = structures[todo[0]]
        native_kernels().spmm_blocked_shared([structures[i].block_crow for i in todo],
                                             [structures[i].block_col for i in todo], heads, first.width, x_t,
                                             [ys[i] for i in todo])
        return ys
    for i, head in zip(todo, heads, strict=True):
        structures[i]._add_head_product(head, x_t, ys[i])
    return ys


def sampled_grad_shared(structures: Sequence[CSRStructure], x_t: torch.Tensor, grad_ts: Sequence[torch.Tensor],
                        x_tails: Sequence[torch.Tensor | None]) -> list[torch.Tensor]:
    """:meth:`CSRStructure.sampled_grad` of several layers that read the same ``x_t``, each with its
    own structure, output gradient ``grad_ts[i]`` and tail input: the native kernels sweep each tile
    of ``x_t`` for all of them at once (where they can). Each result is bit-identical to the layer's
    own :meth:`~CSRStructure.sampled_grad`."""
    grads = [structure._sampled_start(x_t, grad_t, tail)
             for structure, grad_t, tail in zip(structures, grad_ts, x_tails, strict=True)]
    todo = [i for i, structure in enumerate(structures) if structure._has_sampled_head(x_t)]
    if not _shared_call(x_t, [structures[i] for i in todo], [grad_ts[i] for i in todo]):
        for i in todo:
            if supports(x_t, grad_ts[i]):
                out = structures[i]._head_grad_out(grads[i])
                native_kernels().sddmm_blocked(structures[i].block_crow, structures[i].block_col, structures[i].width,
                                               x_t, grad_ts[i], out=out)
                structures[i]._finish_head_grad(grads[i], out)
            else:
                structures[i]._torch_sampled_head(grads[i], x_t, grad_ts[i])
        return grads
    outs = [structures[i]._head_grad_out(grads[i]) for i in todo]
    native_kernels().sddmm_blocked_shared([structures[i].block_crow for i in todo],
                                          [structures[i].block_col for i in todo], structures[todo[0]].width, x_t,
                                          [grad_ts[i] for i in todo], outs)
    for i, out in zip(todo, outs, strict=True):
        structures[i]._finish_head_grad(grads[i], out)
    return grads


def _shared_call(x_t: torch.Tensor, structures: Sequence[CSRStructure], tensors: Sequence[torch.Tensor]) -> bool:
    """Whether one call of the shared-input native kernels can take these structures (two or more,
    with the same blocks; float32 CPU tensors)."""
    return (1 < len(structures) <= MAX_PARTS and supports(x_t, *tensors)
            and all(structures[0].shares_blocks_with(other) for other in structures[1:]))


def feature_major(x: torch.Tensor) -> torch.Tensor:
    """``xᵀ`` (features × batch) with contiguous rows, the kernels' layout: a view, free, when ``x``
    is already the transpose of such a matrix (another CSR layer's output, a replay batch of
    :class:`~sparse_rl.agents.buffers.NoiseFreeReplayBuffer`), else a copy."""
    x_t = x.t()
    if x_t.shape[1] <= 1 or (x_t.stride(1) == 1 and x_t.stride(0) >= x_t.shape[1]):
        return x_t
    return x_t.contiguous()


class CSRLinearFunction(torch.autograd.Function):
    """``y = concat(x, x_tail) Wᵀ + b`` for a CSR weight, with feature-major kernels (see the module
    docstring).

    Inputs: ``x`` (batch × head), ``x_tail`` (batch × tail) or ``None``, ``values`` (nnz,),
    ``bias`` (out_features,) or ``None``, the :class:`CSRStructure`, an optional sink that
    receives the dense-weight gradient ``gᵀ x`` on the backward pass (RigL's grow score), and
    optionally the output ``yᵀ`` already computed from these inputs (a :class:`GivenOutput`: the
    layers of :func:`~sparse_rl.sparse.shared_input.csr_linear_shared` compute theirs in one
    call). Only the gradients that autograd asks for are computed: an input layer's ``x`` needs
    none, and when only the tail needs one (an actor's loss through a frozen critic) the head's is
    skipped.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        x_tail: torch.Tensor | None,
        values: torch.Tensor,
        bias: torch.Tensor | None,
        structure: CSRStructure,
        sink: DenseGradientSink | None,
        given: GivenOutput | None = None,
    ) -> torch.Tensor:
        x_t = feature_major(x)
        y_t = structure.matmul(values, x_t, bias, x_tail) if given is None else given.y_t
        # Keep only what the backward pass will use.
        weight_grad = ctx.needs_input_grad[2] or sink is not None
        ctx.save_for_backward(x_t if weight_grad else None, x_tail if weight_grad else None,
                              values if ctx.needs_input_grad[0] or ctx.needs_input_grad[1] else None)
        ctx.structure = structure
        ctx.sink = sink
        ctx.has_bias = bias is not None
        return y_t.t()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_y: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x_t, x_tail, values = ctx.saved_tensors
        structure: CSRStructure = ctx.structure
        grad_t = grad_y.t().contiguous()
        grad_x = grad_tail = grad_values = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = structure.matmul_transposed(values, grad_t).t()
        if ctx.needs_input_grad[1]:
            grad_tail = structure.tail_input_grad(values, grad_t)
        if ctx.needs_input_grad[2]:
            grad_values = structure.sampled_grad(x_t, grad_t, x_tail)
        if ctx.has_bias and ctx.needs_input_grad[3]:
            grad_bias = grad_t.sum(1)
        if ctx.sink is not None:
            dense = grad_t @ x_t.t()
            if x_tail is not None:
                dense = torch.cat([dense, grad_t @ x_tail], dim=1)
            ctx.sink._store_dense_grad(dense)
        return grad_x, grad_tail, grad_values, grad_bias, None, None, None


@dataclass(frozen=True)
class GivenOutput:
    """An output ``yᵀ`` (out_features × batch) that :class:`CSRLinearFunction` returns instead of
    computing it (wrapped: a tensor argument would be an input of the autograd node)."""

    y_t: torch.Tensor


def csr_linear(
    x: torch.Tensor,
    values: torch.Tensor,
    bias: torch.Tensor | None,
    structure: CSRStructure,
    sink: DenseGradientSink | None = None,
    x_tail: torch.Tensor | None = None,
) -> torch.Tensor:
    """Apply a CSR linear map to ``concat(x, x_tail)`` (or ``x`` alone) of shape (..., in_features);
    differentiable in ``x``, ``x_tail``, ``values`` and ``bias``.

    :param x: the head's input, (..., structure.head)
    :param values: the active weights in slot order, (nnz,)
    :param bias: the bias (out_features,) or ``None``
    :param structure: the layer's current :class:`CSRStructure` (built for this head)
    :param sink: receives the dense-weight gradient on the backward pass (or ``None``)
    :param x_tail: the tail's input, (..., structure.tail), when the structure has a tail
    """
    if x.shape[-1] != structure.head:
        raise ValueError(f"expected {structure.head} input features, got {x.shape[-1]}")
    if x.dim() == 2:
        return CSRLinearFunction.apply(x, x_tail, values, bias, structure, sink)
    flat_tail = None if x_tail is None else x_tail.reshape(-1, structure.tail)
    y = CSRLinearFunction.apply(x.reshape(-1, structure.head), flat_tail, values, bias, structure, sink)
    return y.reshape(*x.shape[:-1], structure.out_features)
