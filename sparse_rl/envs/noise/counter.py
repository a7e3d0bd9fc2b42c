"""The counter-based noise function behind :class:`~sparse_rl.envs.noise.CounterNoise`: i.i.d.
standard normal or uniform numbers as a pure function of ``(key, observation index, feature)``.

Definition (64-bit unsigned arithmetic, ``G = 0x9E3779B97F4A7C15``, ``mix64`` SplitMix64's output
function, Steele et al., OOPSLA 2014): observation ``k`` owns the SplitMix64 stream seeded by
``s_k = mix64(key + (k + 1) G)``; its ``p``-th word ``r = mix64(s_k + (p + 1) G)`` makes features
``2p`` and ``2p + 1`` from its top 24 bits ``a`` and next 24 bits ``b``:

- ``uniform``: ``a / 2^24`` and ``b / 2^24`` (U[0, 1) on a grid of 2^-24);
- ``normal``: Box–Muller (Box & Muller, 1958), ``R cos θ`` and ``R sin θ`` with
  ``R = sqrt(-2 ln((a + 1) / 2^24))`` and ``θ = 2π b / 2^24``; ``|z| ≤ 5.77`` (the tails beyond,
  of probability 8·10⁻⁹, are cut).

``ln``, ``cos`` and ``sin`` are polynomials (Cephes' ``logf``, ``sinf``, ``cosf`` coefficients)
evaluated with float32 additions and multiplications only, in a fixed order. The native kernel
(``counter_kernels.c``, compiled on first use like the csr kernels, with ``-ffp-contract=off``) and
the numpy version below therefore give the same bits (tested), on any machine: a run resumed where
no C compiler exists regenerates the same noise. The native kernel is ≈10× faster; see
``docs/performance.md`` for the cost per sampled batch.

Independence: two observations share a word only if their seeds ``s_k`` lie within ``size/2``
steps of each other on SplitMix64's Weyl sequence (probability ≈ size / 2^64 per pair); within an
observation every word is distinct. ``tests/envs/test_noise.py`` checks every pair among
hundreds of observations at every shift.
"""

from __future__ import annotations

import ctypes
import functools
import os
import subprocess
import warnings
from pathlib import Path

import numpy as np

from sparse_rl.sparse.native import kernel_threads, load_library

__all__ = ["KINDS", "counter_noise", "counter_noise_feature_major", "counter_noise_numpy", "native_counter_noise"]

#: what the function draws, by name: the kernel's ``kind`` code
KINDS = {"normal": 0, "uniform": 1}
SOURCE = Path(__file__).with_name("counter_kernels.c")
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_F = np.float32
_TWO_POW_M24 = _F(2.0**-24)
_TURN_TO_RADIANS = _F(2.0 * np.pi) * _TWO_POW_M24
_LOG_POLY = tuple(_F(c) for c in (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
                                  1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
                                  3.3333331174e-1))
_SIN_POLY = tuple(_F(c) for c in (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1))
_COS_POLY = tuple(_F(c) for c in (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2))
#: mix64's multipliers; ln's reduction threshold and ln 2 split in two (read by ``torch_noise``)
_MIX_MULTIPLIERS = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))
_SQRT_HALF, _LN2_LOW, _LN2_HIGH = _F(0.707106781186547524), _F(-2.12194440e-4), _F(0.693359375)


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function: a bijective 64-bit mixer (Steele et al., OOPSLA 2014)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX_MULTIPLIERS[0]
    z = (z ^ (z >> np.uint64(27))) * _MIX_MULTIPLIERS[1]
    return z ^ (z >> np.uint64(31))


def _words(key: int, indices: np.ndarray, pairs: int) -> np.ndarray:
    """The 64-bit words ``r`` of each index (rows) and pair (columns)."""
    with np.errstate(over="ignore"):
        streams = _mix64(np.uint64(key) + (indices.astype(np.uint64) + np.uint64(1)) * _GOLDEN)
        steps = (np.arange(1, pairs + 1, dtype=np.uint64) * _GOLDEN)[None, :]
        return _mix64(streams[:, None] + steps)


def _log_unit(a: np.ndarray) -> np.ndarray:
    """``ln((a + 1) / 2^24)`` in float32, operation for operation as ``log_unit`` in the C file."""
    x = (a + np.uint32(1)).astype(_F)
    bits = x.view(np.uint32)
    e = ((bits >> np.uint32(23)).astype(np.int32) - np.int32(126 + 24)).astype(_F)
    f = ((bits & np.uint32(0x007FFFFF)) | np.uint32(0x3F000000)).view(_F)
    small = f < _SQRT_HALF
    e = np.where(small, e - _F(1.0), e)
    t = np.where(small, (f + f) - _F(1.0), f - _F(1.0))
    z = t * t
    y = np.full_like(t, _LOG_POLY[0])
    for coefficient in _LOG_POLY[1:]:
        y = y * t + coefficient
    y = ((y * t) * z) + (_LN2_LOW * e)
    y = y + (_F(-0.5) * z)
    return (t + y) + (_LN2_HIGH * e)


def _cos_sin_turn(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(cos, sin)`` of ``2π b / 2^24`` in float32, as ``cos_sin_turn`` in the C file."""
    shifted = (b + np.uint32(1 << 21)) & np.uint32(0xFFFFFF)
    quadrant = shifted >> np.uint32(22)
    a = ((shifted & np.uint32(0x3FFFFF)).astype(np.int32) - np.int32(1 << 21)).astype(_F) * _TURN_TO_RADIANS
    z = a * a
    s = np.full_like(a, _SIN_POLY[0])
    for coefficient in _SIN_POLY[1:]:
        s = s * z + coefficient
    s = ((s * z) * a) + a
    c = np.full_like(a, _COS_POLY[0])
    for coefficient in _COS_POLY[1:]:
        c = c * z + coefficient
    c = (((c * z) * z) + (_F(-0.5) * z)) + _F(1.0)
    cos = np.select([quadrant == 0, quadrant == 1, quadrant == 2], [c, -s, -c], s)
    sin = np.select([quadrant == 0, quadrant == 1, quadrant == 2], [s, c, -s], -c)
    return cos, sin


def counter_noise_numpy(key: int, indices: np.ndarray, size: int, kind: str, out: np.ndarray) -> np.ndarray:
    """The counter-based noise in numpy (the definition in the module docstring), written into
    ``out`` (float32, ``len(indices)`` × ``size``, any strides)."""
    indices = np.asarray(indices, dtype=np.uint64).reshape(-1)
    if indices.size == 0 or size == 0:
        return out
    words = _words(key, indices, (size + 1) // 2)
    a = (words >> np.uint64(40)).astype(np.uint32)
    b = ((words >> np.uint64(16)) & np.uint64(0xFFFFFF)).astype(np.uint32)
    if KINDS[kind] == 0:
        radius = np.sqrt(_F(-2.0) * _log_unit(a))
        cos, sin = _cos_sin_turn(b)
        first, second = radius * cos, radius * sin
    else:
        first, second = a.astype(_F) * _TWO_POW_M24, b.astype(_F) * _TWO_POW_M24
    out[:, 0::2] = first
    out[:, 1::2] = second[:, : size // 2]
    return out


#: the kernel's own compiler flags (see ``counter_kernels.c``): no fused multiply-add, so that every
#: float operation is rounded as written (numpy's version gives the same bits); ``sqrtf`` without
#: ``errno``, and no trapping floating-point (the selects of ``ln``, ``cos`` and ``sin`` may compute
#: both sides: without it GCC keeps them as branches and leaves the normal transform scalar, ~15×
#: slower on AVX2). Neither of the last two changes a result.
COMPILE_FLAGS = ("-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math")


@functools.cache
def native_counter_noise() -> ctypes.CDLL | None:
    """The compiled kernel (built on first use), or ``None`` when native code is disabled
    (``SPARSE_RL_NATIVE=0``) or cannot be built here (a warning says why, once)."""
    if os.environ.get("SPARSE_RL_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        library, _ = load_library(SOURCE, extra_flags=COMPILE_FLAGS)
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        warnings.warn(f"sparse_rl: native noise kernel unavailable ({error}); regenerating noise with numpy, "
                      "which is slower (same numbers)", RuntimeWarning, stacklevel=2)
        return None
    function = library.sparse_rl_counter_noise
    function.argtypes = [ctypes.c_uint64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int32,
                         ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]
    function.restype = None
    transposed = library.sparse_rl_counter_noise_feature_major
    transposed.argtypes = function.argtypes
    transposed.restype = None
    return library


def counter_noise(key: int, indices: np.ndarray, size: int, kind: str, out: np.ndarray | None = None,
                  threads: int | None = None) -> np.ndarray:
    """Standard normal (``kind="normal"``) or U[0, 1) (``"uniform"``) noise of each observation
    index: float32, shape ``(len(indices), size)``, written into ``out`` when given (rows may be
    strided, each row's ``size`` numbers contiguous, e.g. the noise columns of a batch). Uses the
    native kernel when it is available, else numpy: the same numbers either way. The kernel splits
    the rows between up to ``threads`` threads (``None``: ``torch.get_num_threads()``); each row's
    numbers do not depend on the thread that computes them.

    :param key: the 64-bit stream key (see :class:`~sparse_rl.envs.noise.CounterNoise`)
    :param indices: observation indices, integers in ``[0, 2^64)``
    :param size: features per observation
    :param kind: a key of :data:`KINDS`
    :param out: where to write
    :param threads: threads for the native kernel (``None``: torch's intra-op thread count)
    """
    indices = np.ascontiguousarray(indices, dtype=np.uint64).reshape(-1)
    if out is None:
        out = np.empty((indices.size, size), dtype=np.float32)
    elif out.shape != (indices.size, size) or out.dtype != np.float32:
        raise ValueError(f"out must be a float32 array of shape {(indices.size, size)}, got {out.dtype} {out.shape}")
    library = native_counter_noise()
    row_contiguous = size <= 1 or out.strides[1] == 4
    if library is None or not row_contiguous or indices.size == 0 or size == 0:
        return counter_noise_numpy(key, indices, size, kind, out)
    row_stride = out.strides[0] // 4 if indices.size > 1 else size
    if indices.size > 1 and out.strides[0] % 4:
        return counter_noise_numpy(key, indices, size, kind, out)
    library.sparse_rl_counter_noise(ctypes.c_uint64(key), indices.ctypes.data, indices.size, size, KINDS[kind],
                                    out.ctypes.data, row_stride, kernel_threads(threads))
    return out


def counter_noise_feature_major(key: int, indices: np.ndarray, size: int, kind: str, out: np.ndarray,
                                threads: int | None = None) -> np.ndarray:
    """:func:`counter_noise` written feature-major: ``out[j, i]`` is feature ``j`` of observation
    ``indices[i]`` (``out`` float32, ``size`` × ``len(indices)``, each row contiguous, any row
    stride): the layout in which the csr kernels read a batch, made without a row-major batch and
    its transposing copy. The native kernel computes 16 observations at once, one per vector lane,
    and stores each feature of them as one contiguous run; threads take ranges of features (up to
    ``threads``). Without it, numpy computes the same numbers. ``key``, ``indices``, ``size``, ``kind`` and
    ``threads`` are :func:`counter_noise`'s; ``out`` is required here.
    """
    indices = np.ascontiguousarray(indices, dtype=np.uint64).reshape(-1)
    if out.shape != (size, indices.size) or out.dtype != np.float32:
        raise ValueError(f"out must be a float32 array of shape {(size, indices.size)}, got {out.dtype} {out.shape}")
    library = native_counter_noise()
    if indices.size == 0 or size == 0:
        return out
    rows_ok = indices.size <= 1 or out.strides[1] == 4
    if library is None or not rows_ok or (size > 1 and out.strides[0] % 4):
        out[...] = counter_noise_numpy(key, indices, size, kind, np.empty((indices.size, size), np.float32)).T
        return out
    row_stride = out.strides[0] // 4 if size > 1 else indices.size
    library.sparse_rl_counter_noise_feature_major(ctypes.c_uint64(key), indices.ctypes.data, indices.size, size,
                                                  KINDS[kind], out.ctypes.data, row_stride, kernel_threads(threads))
    return out
