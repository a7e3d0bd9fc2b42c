"""The storage backends of :class:`~sparse_rl.sparse.layers.base.SparseLinear`: their names, the
``auto`` rule (:func:`resolve_backend`) and the class of each, registered by the class's own module
with :func:`register_backend` (so that the base class picks a backend without importing it)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TypeVar

import torch

from sparse_rl._util.validation import check_choice

#: the storage backends, and ``auto`` (chosen per layer by :func:`resolve_backend`)
BACKENDS = ("auto", "masked", "csr")
#: ``auto`` uses ``csr`` for layers with at least this many inputs…
AUTO_MIN_INPUTS = 256
#: …and at most this density (see :func:`resolve_backend` for the measurements behind the rule)
AUTO_MAX_DENSITY = 0.3

_CLASSES: dict[str, type] = {}
#: the device the layers being built will train on (see :func:`layers_built_for`)
_BUILT_FOR: contextvars.ContextVar[torch.device | None] = contextvars.ContextVar("sparse_rl_built_for", default=None)
_T = TypeVar("_T", bound=type)


def register_backend(cls: _T) -> _T:
    """Class decorator: ``cls`` stores the backend named by its ``backend`` class attribute."""
    _CLASSES[cls.backend] = cls  # type: ignore[attr-defined]
    return cls


def backend_class(name: str) -> type:
    """The class of the backend ``name`` (``masked`` or ``csr``; not ``auto``)."""
    check_choice(name, _CLASSES, "sparse layer backend class")
    return _CLASSES[name]


@contextlib.contextmanager
def layers_built_for(device: torch.device | str | None) -> Iterator[None]:
    """Within this context, ``auto`` resolves backends for ``device``: the device the layers will
    train on, where they are built elsewhere first (SB3 builds a policy on the CPU, then moves it;
    SparseSAC and SparseTD3 build their policies inside this context with their own device).

    :param device: the training device (``None``: the device each layer is built on)
    """
    token = _BUILT_FOR.set(None if device is None else torch.device(device))
    try:
        yield
    finally:
        _BUILT_FOR.reset(token)


def resolve_backend(backend: str, in_features: int, out_features: int, density: float,
                    device: torch.device | str | None = None) -> str:
    """The storage backend (``masked`` or ``csr``) a layer of this shape and density uses.

    On any device but the CPU (the device of :func:`layers_built_for` if set, else ``device``),
    ``auto`` chooses ``masked``: the csr backend's fast kernels are the native CPU ones, and on a
    GPU it would run torch's sparse kernels, which lose to the dense product under a mask there
    (``scripts/bench_speed.py --device cuda``, ``docs/performance.md``). On the CPU ``auto``
    chooses ``csr`` when the layer has at least :data:`AUTO_MIN_INPUTS` (256) inputs and
    a density of at most :data:`AUTO_MAX_DENSITY` (0.3), else ``masked``. The rule picks the faster
    of the two, measured with ``scripts/bench_layer.py`` (``docs/bench_layer.json``: one torch
    thread on a 2-core CPU, batch 256, 256 outputs, forward + backward + Adam step, as a multiple of
    a dense ``nn.Linear`` timed in the same rounds, with the native kernels of
    :mod:`~sparse_rl.sparse.native`):

    - ``masked`` costs about 1.0–1.5× dense at every size and density below 1 (the mask multiply, and
      Adam's step over the dense weight);
    - ``csr`` costs 1.3–1.6× at 17 inputs (per-call overhead of a tiny product); at 256 inputs
      ≈1.0–1.2× at densities 0.2–0.3 and 0.7–0.9× at 0.1 and below; from 1,700 inputs 0.9–1.1× at
      0.3, 0.6–0.8× at 0.2, 0.5–0.6× at 0.1, 0.33–0.43× at 0.05 and 0.25–0.36× at 0.02; dense
      (density 1) it loses (2–2.7×).

    An unknown name raises ``ValueError`` listing the known ones.

    :param backend: ``auto``, ``masked`` or ``csr``
    :param in_features: the layer's inputs
    :param out_features: the layer's outputs (not used by the rule today)
    :param density: the layer's density
    :param device: the device the layer is built on (``None``: the CPU)
    """
    check_choice(backend, BACKENDS, "sparse layer backend")
    if backend != "auto":
        return backend
    target = _BUILT_FOR.get() or (torch.device(device) if device is not None else torch.device("cpu"))
    if target.type != "cpu":
        return "masked"
    return "csr" if in_features >= AUTO_MIN_INPUTS and density <= AUTO_MAX_DENSITY else "masked"
