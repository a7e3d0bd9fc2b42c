"""Several CSR layers applied to the same input in one call: a critic's Q-networks' input layers.

SAC's and TD3's critics hold two Q-networks whose input layers read the same observations (and the
same action). :func:`csr_linear_shared` applies such layers together: the native kernels sweep each
tile of the feature-major input for every layer at once (:func:`~sparse_rl.sparse.kernels.matmul_shared`),
so the tile is loaded once, and where only the layers' own weights and biases need gradients (the
critic's loss) one autograd node serves all of them, whose backward pass also samples every weight
gradient in one sweep (:func:`~sparse_rl.sparse.kernels.sampled_grad_shared`).

Every number is the one of the layers' own calls (:func:`~sparse_rl.sparse.kernels.csr_linear`),
bit for bit: each output and gradient gets the same operations in the same order. Where the input
or a tail needs a gradient (the actor's loss, whose action carries one), each layer keeps an
autograd node of its own over the shared forward product, so that autograd adds the gradients
reaching the input from each layer exactly as it does for separate calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from sparse_rl.sparse.kernels import (
    CSRLinearFunction,
    CSRStructure,
    DenseGradientSink,
    GivenOutput,
    feature_major,
    matmul_shared,
    sampled_grad_shared,
)


class CSRSharedInputFunction(torch.autograd.Function):
    """``y_i = concat(x, x_tails[i]) W_iᵀ + b_i`` for several CSR layers ``i``, one autograd node
    for all: gradients for each layer's ``values`` and ``bias`` (and its sink's dense gradient), none
    for ``x`` or the tails (:func:`csr_linear_shared` uses it only where they need none).

    Inputs: ``x`` (batch × head), the layers' :class:`~sparse_rl.sparse.kernels.CSRStructure` and
    sinks (tuples), then ``(x_tail, values, bias)`` of each layer, flattened. Returns one ``y_i``
    per layer (a transposed view, as :class:`~sparse_rl.sparse.kernels.CSRLinearFunction`'s). A
    layer whose output gets no gradient gets none either (its ``.grad`` stays as it was).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        structures: tuple[CSRStructure, ...],
        sinks: tuple[DenseGradientSink | None, ...],
        *per_layer: torch.Tensor | None,
    ) -> tuple[torch.Tensor, ...]:
        x_tails, values, biases = per_layer[0::3], per_layer[1::3], per_layer[2::3]
        x_t = feature_major(x)
        ys = matmul_shared(structures, values, x_t, biases, x_tails)  # type: ignore[arg-type]
        weight_grads = tuple(ctx.needs_input_grad[4 + 3 * i] or sinks[i] is not None for i in range(len(structures)))
        ctx.save_for_backward(x_t if any(weight_grads) else None,
                              *(tail if wanted else None for tail, wanted in zip(x_tails, weight_grads, strict=True)))
        ctx.structures, ctx.sinks, ctx.weight_grads = structures, sinks, weight_grads
        ctx.has_bias = tuple(bias is not None for bias in biases)
        ctx.set_materialize_grads(False)
        return tuple(y_t.t() for y_t in ys)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, *grad_ys: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x_t, *x_tails = ctx.saved_tensors
        structures: tuple[CSRStructure, ...] = ctx.structures
        grad_ts = [None if grad_y is None else grad_y.t().contiguous() for grad_y in grad_ys]
        grads: list[torch.Tensor | None] = [None] * (3 * len(structures))
        sampled = [i for i, grad_t in enumerate(grad_ts) if grad_t is not None and ctx.needs_input_grad[4 + 3 * i]]
        if sampled:
            values_grads = sampled_grad_shared([structures[i] for i in sampled], x_t,
                                               [grad_ts[i] for i in sampled], [x_tails[i] for i in sampled])
            for i, grad in zip(sampled, values_grads, strict=True):
                grads[3 * i + 1] = grad
        for i, grad_t in enumerate(grad_ts):
            if grad_t is None:
                continue
            if ctx.has_bias[i] and ctx.needs_input_grad[5 + 3 * i]:
                grads[3 * i + 2] = grad_t.sum(1)
            sink = ctx.sinks[i]
            if sink is not None:
                dense = grad_t @ x_t.t()
                if x_tails[i] is not None:
                    dense = torch.cat([dense, grad_t @ x_tails[i]], dim=1)
                sink._store_dense_grad(dense)
        return None, None, None, *grads


def csr_linear_shared(
    x: torch.Tensor,
    structures: Sequence[CSRStructure],
    values: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor | None],
    sinks: Sequence[DenseGradientSink | None],
    x_tails: Sequence[torch.Tensor | None],
) -> list[torch.Tensor]:
    """Apply several CSR linear maps to the same ``x`` (each to ``concat(x, x_tails[i])``), with the
    results and gradients of :func:`~sparse_rl.sparse.kernels.csr_linear` per layer, bit for bit, in
    one sweep of the kernels (see the module docstring).

    :param x: the shared head input, (..., head), the same head for every structure
    :param structures: each layer's current structure (built for this head)
    :param values: each layer's active weights in slot order
    :param biases: each layer's bias or ``None``
    :param sinks: each layer's dense-gradient sink or ``None``
    :param x_tails: each layer's tail input (..., tail) or ``None``
    """
    count = len(structures)
    if not len(values) == len(biases) == len(sinks) == len(x_tails) == count:
        raise ValueError("give one structure, values, bias, sink and tail per layer")
    for structure in structures:
        if x.shape[-1] != structure.head:
            raise ValueError(f"expected {structure.head} input features, got {x.shape[-1]}")
    if x.dim() == 2:  # as csr_linear: no reshape (a view would add an autograd node)
        flat, tails = x, list(x_tails)
    else:
        flat = x.reshape(-1, x.shape[-1])
        tails = [None if tail is None else tail.reshape(-1, structure.tail) for tail, structure in
                 zip(x_tails, structures, strict=True)]
    grad_mode = torch.is_grad_enabled()
    if grad_mode and (flat.requires_grad or any(tail is not None and tail.requires_grad for tail in tails)):
        # One node per layer, as separate calls have, over the product computed in one sweep.
        x_t = feature_major(flat)
        with torch.no_grad():
            ys = matmul_shared(structures, [v.detach() for v in values], x_t, biases, tails)
        # Without a gradient for x, its feature-major copy is the nodes' input: no copy per node.
        x_in = flat if flat.requires_grad else x_t.t()
        outputs = [CSRLinearFunction.apply(x_in, tail, v, bias, structure, sink, GivenOutput(y_t))
                   for tail, v, bias, structure, sink, y_t in zip(tails, values, biases, structures, sinks, ys,
                                                                   strict=True)]
    else:
        per_layer = [item for layer in zip(tails, values, biases, strict=True) for item in layer]
        outputs = list(CSRSharedInputFunction.apply(flat, tuple(structures), tuple(sinks), *per_layer))
    if x.dim() == 2:
        return outputs
    return [y.reshape(*x.shape[:-1], structure.out_features) for y, structure in zip(outputs, structures, strict=True)]
