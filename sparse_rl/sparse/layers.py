"""``SparseLinear``: a fully-connected layer that keeps only a fixed fraction of its connections.

The layer stores a dense ``weight`` and a boolean ``mask`` buffer of the same shape. Only the
active (masked-in) weights take part in the forward pass, so inactive weights receive exactly zero
gradient; the topology updater keeps them exactly zero, which makes any optimizer (Adam with L2
weight decay, AdamW) leave them at zero too. The mask is edited in place by
:class:`sparse_rl.sparse.topology.TopologyUpdater`; parameters are never replaced, so optimizers
built once keep working.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sparse_rl.sparse.validation import check_density


def active_count(numel: int, density: float) -> int:
    """Number of active connections of a layer with ``numel`` weights at ``density``: at least one."""
    return max(1, min(numel, round(density * numel)))


def random_mask(
    shape: tuple[int, ...],
    density: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A boolean mask of ``shape`` with exactly :func:`active_count` entries set, uniformly at random.

    This is the Erdős–Rényi random graph of SET (Mocanu et al., 2018) for one layer: every
    connection is equally likely. Uses ``generator`` (or torch's global RNG when ``None``).

    :param shape: the weight's shape
    :param density: the fraction of active entries, in (0, 1]
    :param generator: the random generator to draw the positions from
    :param device: where the mask lives
    """
    density = check_density(density)
    numel = math.prod(shape)
    k = active_count(numel, density)
    mask = torch.zeros(numel, dtype=torch.bool, device=device)
    if k == numel:
        mask.fill_(True)
    else:
        draw_on = generator.device if generator is not None else device
        scores = torch.rand(numel, generator=generator, device=draw_on).to(mask.device)
        mask[torch.topk(scores, k, sorted=False).indices] = True
    return mask.view(shape)


class SparseLinear(nn.Module):
    """A linear layer ``y = x (W ⊙ M)ᵀ + b`` whose boolean mask ``M`` keeps a fixed number of
    connections active.

    **Initialisation.** The mask is drawn uniformly at random with exactly
    ``round(density · in_features · out_features)`` active entries. Active weights (and the bias)
    are drawn from U(-1/√f, 1/√f) where ``f`` is the *active* fan-in, the mean number of active
    inputs per output unit (``density · in_features``), not the dense fan-in. This is PyTorch's
    default ``nn.Linear`` initialisation applied to the connections that exist: with the dense
    fan-in the pre-activations of a 5%-dense layer would have √20 times too small a spread, and the
    sparse network would start in a different regime than its dense control. At density 1.0 the
    layer is initialised exactly like ``nn.Linear``. Inactive weights are exactly zero.

    **Training.** Inactive weights get zero gradient (the forward pass multiplies by the mask).
    :meth:`capture_dense_gradient` arms the layer to record the gradient with respect to the
    *dense* weight, ``∂L/∂(W ⊙ M)``, on the next backward pass, for RigL's grow criterion.

    :param in_features: size of each input sample
    :param out_features: size of each output sample
    :param density: fraction of active connections, in (0, 1]
    :param bias: whether the layer learns an additive bias (the bias is always dense)
    :param device: where the parameters live
    :param dtype: the parameters' dtype
    :param generator: random generator for the mask (torch's global RNG when ``None``)
    """

    mask: torch.Tensor

    def __init__(
        self,
        in_features: int,
        out_features: int,
        density: float = 1.0,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.target_density = check_density(density)
        self.weight = nn.Parameter(torch.empty((out_features, in_features), device=device, dtype=dtype))
        if bias:
            self.bias: nn.Parameter | None = nn.Parameter(torch.empty(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.register_buffer("mask", torch.ones((out_features, in_features), dtype=torch.bool, device=device))
        self.dense_grad: torch.Tensor | None = None
        self._capture_armed = False
        self.reset_parameters(generator)

    @classmethod
    def from_linear(
        cls, linear: nn.Linear, density: float, generator: torch.Generator | None = None
    ) -> SparseLinear:
        """A sparse layer of ``linear``'s shape, device and dtype, freshly initialised at ``density``.

        At density 1.0 the dense weights and bias are copied unchanged, so that replacing a layer
        of a dense network changes nothing.
        """
        layer = cls(
            linear.in_features,
            linear.out_features,
            density=density,
            bias=linear.bias is not None,
            device=linear.weight.device,
            dtype=linear.weight.dtype,
            generator=generator,
        )
        if layer.target_density == 1.0:
            with torch.no_grad():
                layer.weight.copy_(linear.weight)
                if linear.bias is not None and layer.bias is not None:
                    layer.bias.copy_(linear.bias)
        return layer

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw a new random mask at the target density and initialise the active weights and bias
        from U(-1/√f, 1/√f), ``f`` the active fan-in (see the class docstring)."""
        with torch.no_grad():
            if self.target_density == 1.0:
                self.mask.fill_(True)
                # Exactly nn.Linear's initialisation, so density 1.0 reproduces a dense layer.
                nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
                fan_in = self.in_features
            else:
                self.mask.copy_(random_mask(tuple(self.weight.shape), self.target_density, generator, self.mask.device))
                fan_in = max(1.0, self.nnz / self.out_features)
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(self.weight, -bound, bound, generator=generator)
                self.weight.mul_(self.mask)
            if self.bias is not None:
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(self.bias, -bound, bound, generator=generator)

    @property
    def nnz(self) -> int:
        """Number of active connections."""
        return int(self.mask.count_nonzero().item())

    @property
    def density(self) -> float:
        """Current fraction of active connections (constant under topology updates)."""
        return self.nnz / self.mask.numel()

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

    def capture_dense_gradient(self) -> None:
        """Record ``∂L/∂(W ⊙ M)`` (the dense-weight gradient) on the next backward pass through this
        layer into :attr:`dense_grad`; later backward passes are ignored until armed again."""
        self._capture_armed = True
        self.dense_grad = None

    @property
    def capture_armed(self) -> bool:
        """Whether the layer waits for a backward pass to record the dense gradient."""
        return self._capture_armed

    def _store_dense_grad(self, grad: torch.Tensor) -> None:
        if self._capture_armed:
            self.dense_grad = grad.detach().clone()
            self._capture_armed = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the masked linear map to ``x`` of shape (..., in_features)."""
        weight = self.weight * self.mask
        if self._capture_armed and weight.requires_grad:
            weight.register_hook(self._store_dense_grad)
        return F.linear(x, weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"density={self.target_density:g}, bias={self.bias is not None}"
        )
