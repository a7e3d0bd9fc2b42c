"""The base of every storage backend: :class:`SparseLinear` (its interface, initialisation and
topology operations), :data:`INITS`, :func:`active_count`, :func:`random_mask`.

``SparseLinear(...)`` builds the subclass of the chosen backend, looked up by name in
:mod:`~sparse_rl.sparse.layers.backends` (where each backend class registers itself): this module
imports no backend, so there is no import cycle."""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from sparse_rl._util.validation import check_choice, check_density, check_layer_size
from sparse_rl.sparse.layers.backends import backend_class, resolve_backend

#: weight initialisations of a sparse layer (see :class:`SparseLinear`)
INITS = ("active_fan_in", "dense_fan_in", "xavier_uniform")


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


def _check_sizes(in_features: int, out_features: int) -> tuple[int, int]:
    """The layer's sizes, checked (integers >= 1) before torch sees them."""
    return check_layer_size(in_features, "in_features"), check_layer_size(out_features, "out_features")


class SparseLinear(nn.Module):
    """A linear layer ``y = x (W ⊙ M)ᵀ + b`` that keeps a fixed number of connections active.

    ``SparseLinear(...)`` builds the subclass of the chosen ``backend``:
    :class:`~sparse_rl.sparse.layers.masked.MaskedSparseLinear` or
    :class:`~sparse_rl.sparse.layers.csr.CSRSparseLinear` (registered in
    :mod:`~sparse_rl.sparse.layers.backends`; this module imports neither). Both have the
    same interface; ``isinstance(layer, SparseLinear)`` holds for both.

    **Initialisation** (identical on both backends, draw for draw, so that the same seed gives the
    same layer). The mask is drawn uniformly at random with exactly
    ``round(density · in_features · out_features)`` active entries. Active weights (and the bias)
    are drawn from U(-1/√f, 1/√f) where ``f`` is the *active* fan-in, the mean number of active
    inputs per output unit (``density · in_features``), not the dense fan-in. This is PyTorch's
    default ``nn.Linear`` initialisation applied to the connections that exist: with the dense
    fan-in the pre-activations of a 5%-dense layer would have √20 times too small a spread, and the
    sparse network would start in a different regime than its dense control. At density 1.0 the
    layer is initialised exactly like ``nn.Linear``. Inactive weights are exactly zero.
    ``init="dense_fan_in"`` is the references' rule instead (SET's, ANF's and DS-TD3's code:
    ``nn.Linear``'s U(-1/√in, 1/√in) over the dense fan-in, then masked); the papers' presets use
    it (``docs/fidelity.md``). ``init="xavier_uniform"`` is ANF-SAC's (Grooten et al.'s SAC code):
    Glorot & Bengio's U(±√(6 / (in + out))) over the dense shape, then masked, with zero biases.

    **Training.** Inactive weights get no gradient. :meth:`capture_dense_gradient` arms the layer
    to record the gradient with respect to the *dense* weight, ``∂L/∂(W ⊙ M)``, on the next
    backward pass, for RigL's grow criterion.

    :param in_features: size of each input sample
    :param out_features: size of each output sample
    :param density: fraction of active connections, in (0, 1]
    :param bias: whether the layer learns an additive bias (the bias is always dense)
    :param backend: ``masked``, ``csr`` or ``auto`` (see
        :func:`~sparse_rl.sparse.layers.backends.resolve_backend`); ``None`` means the class's own
        backend (``masked`` for ``SparseLinear`` itself)
    :param device: where the parameters live
    :param dtype: the parameters' dtype
    :param generator: random generator for the mask and weights (torch's global RNG when ``None``)
    :param init: ``active_fan_in`` (the default: bounds from the active fan-in), ``dense_fan_in``
        (the references': bounds from ``in_features``) or ``xavier_uniform`` (ANF-SAC's: Xavier
        bounds from the dense shape, zero bias)
    """

    #: the storage backend of this class's instances
    backend: ClassVar[str] = "masked"

    weight: torch.Tensor
    mask: torch.Tensor
    bias: nn.Parameter | None

    def __new__(cls, *args: Any, **kwargs: Any) -> SparseLinear:
        if cls is SparseLinear:
            bound = inspect.signature(SparseLinear.__init__).bind(None, *args, **kwargs).arguments
            _check_sizes(bound["in_features"], bound["out_features"])
            density = check_density(bound.get("density", 1.0))
            backend = bound.get("backend") or SparseLinear.backend
            cls = backend_class(resolve_backend(backend, bound["in_features"], bound["out_features"], density,
                                                bound.get("device")))
        return super().__new__(cls)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        density: float = 1.0,
        bias: bool = True,
        backend: str | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
        init: str = "active_fan_in",
    ) -> None:
        super().__init__()
        in_features, out_features = _check_sizes(in_features, out_features)
        check_choice(init, INITS, "init")
        self.init = init
        self.in_features = in_features
        self.out_features = out_features
        self.target_density = check_density(density)
        resolved = resolve_backend(backend or type(self).backend, in_features, out_features, self.target_density,
                                   device)
        if resolved != type(self).backend:
            raise ValueError(f"{type(self).__name__} stores the {type(self).backend!r} backend, not {resolved!r}; "
                             f"build SparseLinear(..., backend={resolved!r}) instead")
        self._init_storage(device, dtype)
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.dense_grad: torch.Tensor | None = None
        #: the root mean square of each input (``in_features``), set by whoever knows the data
        #: before a topology update of an algorithm whose scores weigh inputs by their scale
        #: (``None``: unknown, every input counts as 1); not saved
        self.input_scale: torch.Tensor | None = None
        self._capture_armed = False
        self.reset_parameters(generator)

    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        density: float,
        generator: torch.Generator | None = None,
        backend: str | None = None,
        init: str = "active_fan_in",
    ) -> SparseLinear:
        """A sparse layer of ``linear``'s shape, device and dtype, freshly initialised at ``density``.

        At density 1.0 the dense weights and bias are copied unchanged, so that replacing a layer
        of a dense network changes nothing.

        :param linear: the dense layer to replace
        :param density: the new layer's density
        :param generator: random generator for the mask and weights
        :param backend: ``masked``, ``csr`` or ``auto`` (``None``: the class's own)
        :param init: ``active_fan_in``, ``dense_fan_in`` or ``xavier_uniform`` (see the class docstring)
        """
        layer = cls(
            linear.in_features,
            linear.out_features,
            density=density,
            bias=linear.bias is not None,
            backend=backend,
            device=linear.weight.device,
            dtype=linear.weight.dtype,
            generator=generator,
            init=init,
        )
        if layer.target_density == 1.0:
            layer._copy_dense_(linear.weight.detach())
            if linear.bias is not None and layer.bias is not None:
                with torch.no_grad():
                    layer.bias.copy_(linear.bias)
        return layer

    # -- storage: implemented by each backend ----------------------------------------------------
    def _init_storage(self, device: torch.device | str | None, dtype: torch.dtype | None) -> None:
        raise NotImplementedError

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        """Load a state dict of either backend: the other backend's entries (``weight`` and
        ``mask`` of ``masked``, ``values`` and ``flat_index`` of ``csr``) are converted to this
        one's first, so that a model trained with one backend loads into the other."""
        converted = self._convert_state_dict_(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args)
        if converted:
            self._after_conversion_()

    def _convert_state_dict_(self, state_dict: dict[str, Any], prefix: str) -> bool:
        """Rewrite, in place, another backend's entries of ``state_dict`` as this backend's;
        whether there were any."""
        return False

    def _after_conversion_(self) -> None:
        """Called after a converted state dict was loaded."""

    def _init_connections(self, mask: torch.Tensor, weight: torch.Tensor) -> None:
        """Store the connections of ``mask`` with the weights of ``weight`` (dense, zero outside)."""
        raise NotImplementedError

    def _copy_dense_(self, weight: torch.Tensor) -> None:
        """Copy a dense weight into a fully dense layer (density 1.0)."""
        raise NotImplementedError

    @property
    def nnz(self) -> int:
        """Number of active connections."""
        raise NotImplementedError

    def active_positions(self) -> torch.Tensor:
        """The flat positions (``row · in_features + col``) of the active connections, increasing."""
        raise NotImplementedError

    def active_values(self) -> torch.Tensor:
        """The weights of the active connections, in the order of :meth:`active_positions` (detached)."""
        raise NotImplementedError

    def replace_connections(self, dropped: torch.Tensor, grown: torch.Tensor) -> tuple[nn.Parameter, torch.Tensor]:
        """Deactivate the connections at flat positions ``dropped`` and activate as many at
        ``grown`` (inactive now), with weight (and gradient) zero. The number of connections stays.

        :param dropped: flat positions of active connections, distinct
        :param grown: as many flat positions of inactive connections, distinct
        :return: the parameter that holds the weights and the flat indices into it whose optimizer
            state (Adam's moments…) must be reset: for ``masked`` the ``weight`` and every dropped
            and grown position; for ``csr`` the ``values`` and the slots that now hold the grown
            connections (taken over from the dropped ones)
        """
        raise NotImplementedError

    def set_mask_(self, mask: torch.Tensor) -> None:
        """Make the connections exactly those of ``mask`` (boolean, the weight's shape); weights of
        connections that stay keep their value, new ones start at zero."""
        raise NotImplementedError

    def follow_topology_(self, leader: SparseLinear) -> None:
        """Take ``leader``'s connections (a target network following its online network): weights
        of connections both have are kept, the others are zero. Two CSR layers end with the same
        slot order too, so that Polyak averaging of their ``values`` pairs the same connections."""
        self.set_mask_(leader.mask)

    def apply_mask_(self) -> None:
        """Set inactive weights to exactly zero, in place (nothing to do where they are not stored)."""

    # -- shared ---------------------------------------------------------------------------------
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw a new random mask at the target density and initialise the active weights and bias
        by :attr:`init`: U(-1/√f, 1/√f) with ``f`` the active fan-in (``active_fan_in``) or
        ``in_features`` (``dense_fan_in``), or Xavier-uniform weights over the dense shape with a
        zero bias (``xavier_uniform``); see the class docstring."""
        shape = (self.out_features, self.in_features)
        storage = next(self.parameters())  # the weights' parameter, registered first
        device, dtype = storage.device, storage.dtype
        with torch.no_grad():
            weight = torch.empty(shape, device=device, dtype=dtype)
            dense = self.target_density == 1.0
            mask = (torch.ones(shape, dtype=torch.bool, device=device) if dense
                    else random_mask(shape, self.target_density, generator, device))
            if self.init == "xavier_uniform":
                nn.init.xavier_uniform_(weight, gain=1.0, generator=generator)
                bias_bound = 0.0
            elif dense:
                # Exactly nn.Linear's initialisation, so density 1.0 reproduces a dense layer.
                nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
                bias_bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            else:
                if self.init == "dense_fan_in":
                    fan_in = float(self.in_features)
                else:
                    fan_in = max(1.0, int(mask.count_nonzero()) / self.out_features)
                bias_bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(weight, -bias_bound, bias_bound, generator=generator)
            if not dense:
                weight.mul_(mask)
            self._init_connections(mask, weight)
            if self.bias is not None:
                if bias_bound > 0:
                    nn.init.uniform_(self.bias, -bias_bound, bias_bound, generator=generator)
                else:
                    self.bias.zero_()

    @property
    def density(self) -> float:
        """Current fraction of active connections (constant under topology updates)."""
        return self.nnz / (self.in_features * self.out_features)

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

    def _check_replacement(self, dropped: torch.Tensor, grown: torch.Tensor) -> None:
        if dropped.numel() != grown.numel():
            raise ValueError(f"replace_connections needs as many grown as dropped connections, "
                             f"got {grown.numel()} and {dropped.numel()}")
        for name, positions in (("dropped", dropped), ("grown", grown)):
            if positions.numel() > 1 and torch.unique(positions).numel() != positions.numel():
                raise ValueError(f"{name} positions must be distinct")

    def abs_weight_sum(self) -> float:
        """The sum of |w| over the active connections."""
        raise NotImplementedError

    def order_for_kernels_(self, optimizers: Sequence[torch.optim.Optimizer] = ()) -> None:
        """Put the storage in the order the backend's kernels read (the ``csr`` backend's slots,
        with the optimizers' state for them); nothing to do for the masked backend."""

    def expect_concat_(self, head: int) -> None:
        """Prepare for calls through :meth:`forward_concat` whose first part has ``head`` features
        (the ``csr`` backend builds and orders its structure for it; nothing to do here)."""

    def forward_concat(self, *parts: torch.Tensor) -> torch.Tensor:
        """The layer applied to ``torch.cat(parts, dim=-1)`` (e.g. a critic's observation and
        action). The ``csr`` backend does not build the concatenation: the first part goes
        through its sparse kernels, the others through a small dense matrix."""
        return self(torch.cat(parts, dim=-1))

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"density={self.target_density:g}, bias={self.bias is not None}, backend={self.backend!r}"
        )


