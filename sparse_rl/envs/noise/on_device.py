"""The counter-based noise of :mod:`sparse_rl.envs.noise.counter` made with torch operations on any
device: the same bits as the native kernel and the numpy version, so that a replay buffer on a GPU
regenerates its noise there from the stored indices and never copies noise across the bus.

How the bits stay the same (checked against ``noise_kernels.c`` and the numpy version, constant by
constant, and tested: every one of the 2^24 inputs of ``ln`` and of ``cos``/``sin``, and whole
batches on the CPU; on CUDA where one is present):

- 64-bit words in ``int64`` tensors: addition and multiplication wrap, giving the low 64 bits of
  the unsigned results; right shifts of ``int64`` are arithmetic, so every shift is masked to the
  bits a logical shift keeps. Keys and indices in ``[2^63, 2^64)`` enter as their two's complement.
- the float32 polynomials one torch operation per C operation, in the C file's order: each
  elementwise operation is its own kernel and rounds its result, so nothing is fused into a
  multiply-add (never run this under ``torch.compile``, which would fuse them). An add or subtract
  with torch's implicit ``alpha = ±1`` is one rounding even where a kernel computes it as
  ``fma(b, alpha, a)``. Constants are float32 values (a Python float holding one converts exactly).
- ``sqrt`` is taken in float64 and rounded to float32: the correctly rounded float32 square root
  (53 ≥ 2·24 + 2 bits, so the double rounding is innocuous), whatever the device's float32
  ``sqrt`` does (MPS, which has no float64, uses its float32 ``sqrt``: unchecked there, and the
  replay buffer makes its noise on CUDA devices only).
- no intermediate is subnormal (the smallest, ``ln``'s ``(y t) z``, is ≈ 2^-76), so a device
  that flushes subnormals to zero computes the same numbers.

:func:`counter_noise_torch` gives the standard variates, row-major (``len(indices)`` × ``size``)
or feature-major (``size`` × ``len(indices)``); :func:`stream_noise_torch` those of a
:class:`~sparse_rl.envs.noise.CounterNoise` stream mapped to its distribution, exactly as
:meth:`~sparse_rl.envs.noise.CounterNoise.many` maps them, for the distributions that
:func:`supports_torch_noise` accepts (``normal`` and ``uniform``; another kind gets a torch map in
:data:`TORCH_FROM_STANDARD`, or its buffer keeps regenerating on the CPU).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from sparse_rl.envs.noise.counter import (
    _COS_POLY,
    _GOLDEN,
    _LN2_HIGH,
    _LN2_LOW,
    _LOG_POLY,
    _MIX_MULTIPLIERS,
    _SIN_POLY,
    _SQRT_HALF,
    _TURN_TO_RADIANS,
    _TWO_POW_M24,
    KINDS,
)
from sparse_rl.envs.noise.distributions import NoiseDistribution, NormalNoise, UniformNoise
from sparse_rl.envs.noise.streams import CounterNoise, NoiseStream

__all__ = ["TORCH_FROM_STANDARD", "counter_noise_torch", "indices_tensor", "stream_noise_torch",
           "supports_torch_noise"]


def _signed(value: int | np.unsigned_integer) -> int:
    """The int64 whose two's complement bits are those of the 64-bit unsigned ``value``."""
    value = int(value) % 2**64
    return value - 2**64 if value >= 2**63 else value


_GOLDEN_I64 = _signed(_GOLDEN)
_MIX_I64 = tuple(_signed(m) for m in _MIX_MULTIPLIERS)
_LOG_P = tuple(float(c) for c in _LOG_POLY)
_SIN_P = tuple(float(c) for c in _SIN_POLY)
_COS_P = tuple(float(c) for c in _COS_POLY)


def _shift_right(z: torch.Tensor, bits: int) -> torch.Tensor:
    """The logical right shift of 64-bit words held in int64 (``>>`` on int64 is arithmetic)."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def _mix64(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64's output function on int64 words (``mix64`` in the C file); ``z`` is overwritten."""
    z ^= _shift_right(z, 30)
    z *= _MIX_I64[0]
    z ^= _shift_right(z, 27)
    z *= _MIX_I64[1]
    z ^= _shift_right(z, 31)
    return z


def _log_unit(a: torch.Tensor) -> torch.Tensor:
    """``ln((a + 1) / 2^24)`` in float32 for integers ``a`` in ``[0, 2^24)``, operation for operation
    as ``log_unit`` in the C file."""
    x = (a + 1).to(torch.float32)  # exact: at most 2^24
    bits = x.view(torch.int32)
    e = ((bits >> 23) - (126 + 24)).to(torch.float32)  # bits > 0: the arithmetic shift is logical
    f = ((bits & 0x007FFFFF) | 0x3F000000).view(torch.float32)
    small = f < float(_SQRT_HALF)
    e = torch.where(small, e - 1.0, e)
    t = torch.where(small, (f + f) - 1.0, f - 1.0)
    z = t * t
    y = t * _LOG_P[0]
    for coefficient in _LOG_P[1:-1]:
        y += coefficient
        y *= t
    y += _LOG_P[-1]
    y = ((y * t) * z) + (e * float(_LN2_LOW))
    y = y + (z * -0.5)
    return (t + y) + (e * float(_LN2_HIGH))


def _cos_sin_turn(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)`` of ``2π b / 2^24`` in float32 for integers ``b`` in ``[0, 2^24)``, as
    ``cos_sin_turn`` in the C file."""
    shifted = (b + (1 << 21)) & 0xFFFFFF
    quadrant = shifted >> 22
    a = ((shifted & 0x3FFFFF) - (1 << 21)).to(torch.float32) * float(_TURN_TO_RADIANS)
    z = a * a
    s = z * _SIN_P[0]
    s += _SIN_P[1]
    s *= z
    s += _SIN_P[2]
    s = ((s * z) * a) + a
    c = z * _COS_P[0]
    c += _COS_P[1]
    c *= z
    c += _COS_P[2]
    c = (((c * z) * z) + (z * -0.5)) + 1.0
    # quadrant q: (cos, sin) = (c, s), (-s, c), (-c, -s), (s, -c)
    odd = (quadrant & 1).bool()
    swapped_c, swapped_s = torch.where(odd, s, c), torch.where(odd, c, s)
    cos = torch.where(((quadrant + 1) & 2).bool(), -swapped_c, swapped_c)
    sin = torch.where((quadrant & 2).bool(), -swapped_s, swapped_s)
    return cos, sin


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    """The correctly rounded float32 square root (through float64; see the module docstring)."""
    if x.device.type == "mps":
        return torch.sqrt(x)
    return torch.sqrt(x.to(torch.float64)).to(torch.float32)


#: observation indices as :func:`indices_tensor` takes them
Indices = np.ndarray | torch.Tensor | Sequence[int]


def indices_tensor(indices: Indices, device: torch.device | str | None = None) -> torch.Tensor:
    """Observation indices in ``[0, 2^64)`` as the int64 tensor (two's complement) that
    :func:`counter_noise_torch` takes, on ``device``: a numpy array of any integer type, or a tensor
    (int64, or uint64 from torch ≥ 2.3), which is reinterpreted, not converted; a sequence of Python
    integers. May share memory with ``indices``."""
    if isinstance(indices, torch.Tensor):
        if indices.dtype is not torch.int64:
            if indices.dtype is getattr(torch, "uint64", None):
                indices = indices.view(torch.int64)
            elif indices.dtype.is_floating_point or indices.dtype is torch.bool:
                raise TypeError(f"indices must be integers, got {indices.dtype}")
            else:
                indices = indices.to(torch.int64)
        return indices.reshape(-1).to(device)
    array = indices if isinstance(indices, np.ndarray) else np.asarray(indices, dtype=np.uint64)
    if array.size and array.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers, got {array.dtype}")
    array = np.ascontiguousarray(array.astype(np.uint64, copy=False).reshape(-1))
    return torch.from_numpy(array.view(np.int64)).to(device)


def counter_noise_torch(key: int, indices: Indices, size: int, kind: str,
                        out: torch.Tensor | None = None, feature_major: bool = False,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """:func:`~sparse_rl.envs.noise.counter.counter_noise` (the same bits) computed with torch
    operations on the device of ``out``, else ``device``, else that of ``indices`` (a tensor; a
    numpy array is on the CPU).

    :param key: the 64-bit stream key, an integer in ``[0, 2^64)``
    :param indices: observation indices in ``[0, 2^64)``: a numpy integer array or an int64 tensor
        holding them in two's complement (see :func:`indices_tensor`)
    :param size: features per observation
    :param kind: a key of :data:`~sparse_rl.envs.noise.counter.KINDS`
    :param out: where to write (float32, any strides): ``len(indices)`` × ``size``, or ``size`` ×
        ``len(indices)`` with ``feature_major``
    :param feature_major: ``out[j, i]`` is feature ``j`` of ``indices[i]``
    :param device: where to compute when there is no ``out``
    :return: ``out``, or a new float32 tensor of that shape
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    if out is not None:
        device = out.device
    elif device is None and isinstance(indices, torch.Tensor):
        device = indices.device
    index = indices_tensor(indices, device)
    n = index.numel()
    shape = (size, n) if feature_major else (n, size)
    if out is None:
        out = torch.empty(shape, dtype=torch.float32, device=index.device)
    elif tuple(out.shape) != shape or out.dtype is not torch.float32:
        raise ValueError(f"out must be a float32 tensor of shape {shape}, got {out.dtype} {tuple(out.shape)}")
    if n == 0 or size == 0:
        return out
    pairs = (size + 1) // 2
    streams = _mix64((index + 1) * _GOLDEN_I64 + _signed(key))
    steps = torch.arange(1, pairs + 1, dtype=torch.int64, device=streams.device) * _GOLDEN_I64
    words = _mix64(steps[:, None] + streams[None, :] if feature_major else streams[:, None] + steps[None, :])
    a = _shift_right(words, 40)
    b = (words >> 16) & 0xFFFFFF
    del words
    if KINDS[kind] == 0:
        radius = _sqrt(_log_unit(a) * -2.0)
        cos, sin = _cos_sin_turn(b)
        first, second = radius * cos, radius * sin
    else:
        first = a.to(torch.float32) * float(_TWO_POW_M24)
        second = b.to(torch.float32) * float(_TWO_POW_M24)
    if feature_major:
        out[0::2] = first
        out[1::2] = second[: size // 2]
    else:
        out[:, 0::2] = first
        out[:, 1::2] = second[:, : size // 2]
    return out


def _normal_from_standard(distribution: NormalNoise, values: torch.Tensor) -> None:
    if distribution.std != 1.0:  # NormalNoise.from_standard: values *= float32(std)
        values *= float(np.float32(distribution.std))


def _uniform_from_standard(distribution: UniformNoise, values: torch.Tensor) -> None:
    # UniformNoise.from_standard: u · float32(high − low) + float32(low), clipped to the float32 bounds
    low, high = float(np.float32(distribution.low)), float(np.float32(distribution.high))
    values *= float(np.float32(distribution.high - distribution.low))
    values += low
    values.clamp_(low, high)


#: in-place torch versions of :meth:`~sparse_rl.envs.noise.NoiseDistribution.from_standard`, by
#: distribution class (the exact class: a subclass may map differently), each giving numpy's bits
TORCH_FROM_STANDARD: dict[type[NoiseDistribution], Callable[..., None]] = {
    NormalNoise: _normal_from_standard,
    UniformNoise: _uniform_from_standard,
}


def supports_torch_noise(stream: NoiseStream) -> bool:
    """Whether :func:`stream_noise_torch` can make ``stream``'s noise: a
    :class:`~sparse_rl.envs.noise.CounterNoise` of a distribution in :data:`TORCH_FROM_STANDARD`."""
    return isinstance(stream, CounterNoise) and type(stream.distribution) in TORCH_FROM_STANDARD


def stream_noise_torch(stream: CounterNoise, indices: Indices, out: torch.Tensor | None = None,
                       feature_major: bool = False, device: torch.device | str | None = None) -> torch.Tensor:
    """The noise of ``indices`` in ``stream`` (what :meth:`~sparse_rl.envs.noise.CounterNoise.many`,
    or with ``feature_major`` :meth:`~sparse_rl.envs.noise.CounterNoise.many_feature_major`,
    returns, bit for bit) made with torch operations on the device: see :func:`counter_noise_torch`
    for ``indices``, ``out``, ``feature_major`` and ``device``.

    :raises ValueError: for a stream :func:`supports_torch_noise` refuses
    """
    if not supports_torch_noise(stream):
        raise ValueError(f"no torch version of {stream!r}: only the counter noise of "
                         f"{[cls.__name__ for cls in TORCH_FROM_STANDARD]} is made on a device")
    values = counter_noise_torch(stream.key, indices, stream.size, stream.distribution.standard, out=out,
                                 feature_major=feature_major, device=device)
    TORCH_FROM_STANDARD[type(stream.distribution)](stream.distribution, values)
    return values
