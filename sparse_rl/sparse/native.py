"""Native CPU kernels of the ``csr`` backend, compiled on first use and loaded with :mod:`ctypes`.

torch's own CSR × dense product (MKL) reaches a fraction of the dense GEMM's speed, so a CSR layer
only beats a dense one at low density. The two kernels of ``native_kernels.c`` (a column-blocked CSR
× dense product, also used with one block as a plain CSR product, and a column-blocked gradient
sampled at the nonzeros, both on feature-major activations) keep a tile of the batch in vector
registers and are several times faster; ``scripts/bench_layer.py`` measures both paths. Each kernel
also has a shared-input form (:meth:`NativeKernels.spmm_blocked_shared`,
:meth:`NativeKernels.sddmm_blocked_shared`) for several matrices that read the same activations (a
critic's Q-networks' input layers): one sweep, the bits of one call per matrix.

The C file is compiled once per machine with the system's C compiler (``$CC``, else ``cc`` or
``gcc``; ``-O3 -march=native -fopenmp``, and without ``-fopenmp`` where that fails: the kernels then
run on one thread; see :func:`kernel_threads`) into a cache directory (``$SPARSE_RL_CACHE_DIR``, else
``$XDG_CACHE_HOME/sparse_rl`` or ``~/.cache/sparse_rl``), keyed by the source, the flags and the
CPU, and written atomically so that parallel workers can race safely. The directory is created
private (mode 0700); a cache directory or library that another user owns or others can write is
refused, and a library is loaded only if its sha256 is the one recorded beside it
(``<library>.sha256``) when it was built here. Without a compiler, on
another device than the CPU, for dtypes other than float32, or with ``SPARSE_RL_NATIVE=0``,
:mod:`~sparse_rl.sparse.kernels` uses torch's sparse kernels instead: same results within float
tolerance, slower. :func:`native_kernels` says which is in use.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("native_kernels.c")
#: compiler flags, tried in order (``-march=native`` is not known to every compiler)
FLAG_SETS = (("-O3", "-march=native", "-fPIC", "-shared"), ("-O3", "-fPIC", "-shared"))
#: the flag that builds the kernels' threads (OpenMP); without it they run on one thread
OPENMP_FLAG = "-fopenmp"
_INT64, _PTR = ctypes.c_int64, ctypes.c_void_p


class NativeKernels:
    """The loaded kernels, with argument checks (float32, int64 indices, contiguous, CPU).

    :param library: the compiled shared library
    :param path: where it was loaded from
    """

    def __init__(self, library: ctypes.CDLL, path: Path) -> None:
        self.path = path
        self._spmm_blocked = library.sparse_rl_spmm_blocked
        self._sddmm_blocked = library.sparse_rl_sddmm_blocked
        # (blocks, width, rows, crow, col, val, x, ldx, batch, y, threads),
        # (blocks, width, rows, crow, col, x, ldx, g, batch, out, threads)
        self._spmm_blocked.argtypes = [_INT64, _INT64, _INT64, _PTR, _PTR, _PTR, _PTR, _INT64, _INT64, _PTR, _INT64]
        self._sddmm_blocked.argtypes = [_INT64, _INT64, _INT64, _PTR, _PTR, _PTR, _INT64, _PTR, _INT64, _PTR, _INT64]
        self._spmm_shared = library.sparse_rl_spmm_blocked_shared
        self._sddmm_shared = library.sparse_rl_sddmm_blocked_shared
        # (parts, blocks, width, rows, crow[], col[], val[], x, ldx, batch, y[], threads),
        # (parts, blocks, width, rows, crow[], col[], x, ldx, g[], batch, out[], threads)
        self._spmm_shared.argtypes = [_INT64, _INT64, _INT64, _INT64, _PTR, _PTR, _PTR, _PTR, _INT64, _INT64, _PTR,
                                      _INT64]
        self._sddmm_shared.argtypes = [_INT64, _INT64, _INT64, _INT64, _PTR, _PTR, _PTR, _INT64, _PTR, _INT64, _PTR,
                                       _INT64]
        for function in (self._spmm_blocked, self._sddmm_blocked, self._spmm_shared, self._sddmm_shared):
            function.restype = None
        library.sparse_rl_threaded.restype = _INT64
        #: whether this build runs its kernels on threads (built with OpenMP)
        self.threaded = bool(library.sparse_rl_threaded())

    def spmm_blocked(self, crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, width: int, x: torch.Tensor,
                     y: torch.Tensor, threads: int | None = None) -> None:
        """``y += A x`` in place for the column-blocked sparse matrix ``A``: one CSR matrix per block
        of ``width`` inputs, their row pointers one after the other in ``crow`` (blocks · rows + 1,
        int64 offsets into ``col`` and ``val``: block ``b``'s are ``crow[b · rows : (b + 1) · rows
        + 1]``), ``col`` (int32) the columns within the block; ``x`` is feature-major (inputs ×
        batch, rows contiguous, any row stride: see :func:`feature_major_stride`), ``y`` is (rows ×
        batch). On up to ``threads`` threads (``None``: ``torch.get_num_threads()``), with results
        bit-identical to one thread's (see :func:`kernel_threads`)."""
        rows = y.shape[0]
        blocks = (crow.numel() - 1) // max(rows, 1)
        _check(crow, col, val, y, index=torch.int32)
        ldx = _row_stride(x)
        if y.shape != (rows, x.shape[1]) or not (blocks - 1) * width < x.shape[0] <= blocks * width:
            raise ValueError(f"y must have shape {(rows, x.shape[1])} and x the inputs of {blocks} blocks of "
                             f"{width}, got {tuple(y.shape)} and {tuple(x.shape)}")
        self._spmm_blocked(blocks, width, rows, crow.data_ptr(), col.data_ptr(), val.data_ptr(), x.data_ptr(), ldx,
                           x.shape[1], y.data_ptr(), kernel_threads(threads))

    def sddmm_blocked(self, crow: torch.Tensor, col: torch.Tensor, width: int, x: torch.Tensor,
                      g: torch.Tensor, out: torch.Tensor | None = None, threads: int | None = None) -> torch.Tensor:
        """``out[k] = ⟨g[r], x[block · width + col[k]]⟩`` for each nonzero ``k`` (row ``r``, block
        ``block``) of the blocked pattern of :meth:`spmm_blocked`: ``g xᵀ`` sampled at the
        nonzeros, in blocked order. ``x`` (inputs × batch, any row stride) and ``g`` (rows × batch)
        are feature-major. Written into ``out`` when given (zeros, one per nonzero). On up to
        ``threads`` threads (``None``: ``torch.get_num_threads()``), bit-identical to one thread."""
        rows = g.shape[0]
        blocks = (crow.numel() - 1) // max(rows, 1)
        if out is None:
            out = x.new_zeros(col.numel())
        elif out.numel() != col.numel():
            raise ValueError(f"out must hold {col.numel()} numbers, got {out.numel()}")
        _check(crow, col, out, g, index=torch.int32)
        ldx = _row_stride(x)
        if g.shape != (rows, x.shape[1]) or not (blocks - 1) * width < x.shape[0] <= blocks * width:
            raise ValueError(f"g must have shape {(rows, x.shape[1])} and x the inputs of {blocks} blocks of "
                             f"{width}, got {tuple(g.shape)} and {tuple(x.shape)}")
        self._sddmm_blocked(blocks, width, rows, crow.data_ptr(), col.data_ptr(), x.data_ptr(), ldx, g.data_ptr(),
                            x.shape[1], out.data_ptr(), kernel_threads(threads))
        return out


    def spmm_blocked_shared(self, crows: Sequence[torch.Tensor], cols: Sequence[torch.Tensor],
                            vals: Sequence[torch.Tensor], width: int, x: torch.Tensor, ys: Sequence[torch.Tensor],
                            threads: int | None = None) -> None:
        """:meth:`spmm_blocked` for several sparse matrices of the same shape and blocks that read the
        same ``x`` (``ys[p] += A_p x``; at most :data:`MAX_PARTS`), in one sweep: each tile of ``x``
        is read for all of them at once. Each ``ys[p]`` is bit-identical to what
        :meth:`spmm_blocked` gives for ``A_p`` alone."""
        parts = _parts(crows, cols, vals, ys)
        rows, blocks, ldx = _shared_blocks(crows, cols, vals, ys, width, x,
                                           "every part must have the blocks and output shape of the first")
        self._spmm_shared(parts, blocks, width, rows, _pointers(crows), _pointers(cols), _pointers(vals),
                          x.data_ptr(), ldx, x.shape[1], _pointers(ys), kernel_threads(threads))

    def sddmm_blocked_shared(self, crows: Sequence[torch.Tensor], cols: Sequence[torch.Tensor], width: int,
                             x: torch.Tensor, gs: Sequence[torch.Tensor], outs: Sequence[torch.Tensor],
                             threads: int | None = None) -> None:
        """:meth:`sddmm_blocked` for several patterns of the same shape and blocks over the same ``x``,
        each with its own ``gs[p]``, written into ``outs[p]`` (zeros, one per nonzero; at most
        :data:`MAX_PARTS` parts), in one sweep: each tile of ``x`` is read for all of them at once.
        Each ``outs[p]`` is bit-identical to what :meth:`sddmm_blocked` gives for part ``p`` alone."""
        parts = _parts(crows, cols, gs, outs)
        rows, blocks, ldx = _shared_blocks(crows, cols, outs, gs, width, x,
                                           "every part must have the blocks and shapes of the first, and out one "
                                           "number per nonzero")
        self._sddmm_shared(parts, blocks, width, rows, _pointers(crows), _pointers(cols), x.data_ptr(), ldx,
                           _pointers(gs), x.shape[1], _pointers(outs), kernel_threads(threads))


#: the most sparse matrices one call of the shared-input kernels takes (``MAX_PARTS`` in the C file)
MAX_PARTS = 8


def _parts(*per_part: Sequence[torch.Tensor]) -> int:
    """The number of parts of a shared-input call (``ValueError`` unless 1 to :data:`MAX_PARTS`, the
    same for every argument)."""
    counts = {len(tensors) for tensors in per_part}
    if len(counts) != 1 or not 1 <= min(counts) <= MAX_PARTS:
        raise ValueError(f"a shared-input call takes 1 to {MAX_PARTS} parts, the same number of each argument")
    return counts.pop()


def _shared_blocks(crows: Sequence[torch.Tensor], cols: Sequence[torch.Tensor],
                   per_nonzero: Sequence[torch.Tensor], per_row: Sequence[torch.Tensor], width: int,
                   x: torch.Tensor, mismatch: str) -> tuple[int, int, int]:
    """Check the parts of a shared-input call against the first and against ``x``, and return its
    output rows, column blocks and ``x``'s row stride.

    :param crows: each part's blocked row pointers (int64)
    :param cols: each part's column indices within a block (int32)
    :param per_nonzero: each part's float32 numbers per nonzero (the product's values, the sampled
        gradient's output)
    :param per_row: each part's float32 (rows × batch) matrix (the product's output, the gradient's
        ``g``); the first one's rows are the call's
    :param width: the inputs of a column block
    :param x: the shared feature-major inputs (inputs × batch)
    :param mismatch: the ``ValueError``'s message when a part differs from the first
    :return: ``(rows, blocks, ldx)``
    :raises ValueError: for a tensor of the wrong dtype, device or layout, a part whose blocks or
        shapes differ from the first's (``mismatch``), or an ``x`` that does not hold the blocks' inputs
    """
    rows = per_row[0].shape[0]
    blocks = (crows[0].numel() - 1) // max(rows, 1)
    ldx = _row_stride(x)
    for crow, col, numbers, matrix in zip(crows, cols, per_nonzero, per_row, strict=True):
        _check(crow, col, numbers, matrix, index=torch.int32)
        if crow.numel() != blocks * rows + 1 or matrix.shape != (rows, x.shape[1]) or col.numel() != numbers.numel():
            raise ValueError(mismatch)
    if not (blocks - 1) * width < x.shape[0] <= blocks * width:
        raise ValueError(f"x must hold the inputs of {blocks} blocks of {width}, got {tuple(x.shape)}")
    return rows, blocks, ldx


def _pointers(tensors: Sequence[torch.Tensor]) -> ctypes.Array[ctypes.c_void_p]:
    """The tensors' data pointers as a C array."""
    return (ctypes.c_void_p * len(tensors))(*(tensor.data_ptr() for tensor in tensors))


def kernel_threads(threads: int | None = None) -> int:
    """The threads a native kernel call may use: ``threads``, or torch's intra-op thread count
    (``torch.get_num_threads()``: every core by default, 1 in a sweep's workers). The kernels split
    their output rows between threads, each computing its rows exactly as one thread would, so
    results do not depend on the count (tested); calls too small to gain stay on one thread."""
    if threads is None:
        return torch.get_num_threads()
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    return int(threads)


def _check(crow: torch.Tensor, col: torch.Tensor, *floats: torch.Tensor, index: torch.dtype = torch.int64) -> None:
    for name, tensor, dtype in (("crow", crow, torch.int64), ("col", col, index)):
        if tensor.dtype is not dtype or not tensor.is_cpu or not tensor.is_contiguous():
            raise ValueError(f"{name} must be a contiguous {str(dtype).removeprefix('torch.')} CPU tensor")
    for tensor in floats:
        if tensor.dtype is not torch.float32 or not tensor.is_cpu or not tensor.is_contiguous():
            raise ValueError("native kernels take contiguous float32 CPU tensors")


def _row_stride(x: torch.Tensor) -> int:
    """The row stride of a float32 CPU matrix whose rows are contiguous (``ValueError`` otherwise)."""
    if x.dtype is not torch.float32 or not x.is_cpu or x.dim() != 2 or (x.shape[1] > 1 and x.stride(1) != 1):
        raise ValueError("native kernels take float32 CPU matrices with contiguous rows")
    return max(x.stride(0), x.shape[1]) if x.shape[0] > 1 else x.shape[1]


def feature_major_stride(batch: int) -> int:
    """The row stride (in floats) to give a feature-major batch (features × ``batch``) for the blocked
    kernels: ``batch`` rounded up to an odd number of 64-byte cache lines. With a stride of an even
    number of lines (batch 256: 16 lines), the rows a kernel's sweep reads fall into a fraction of
    the L1 cache's sets and evict each other; an odd number spreads them over every set."""
    lines = -(-batch // 16)
    return 16 * (lines + 1 - lines % 2)


def supports(*tensors: torch.Tensor) -> bool:
    """Whether the native kernels are loaded and can take these tensors (float32 on the CPU)."""
    return native_kernels() is not None and all(t.dtype is torch.float32 and t.is_cpu for t in tensors)


@functools.cache
def native_kernels() -> NativeKernels | None:
    """The native kernels, compiled on first use (see the module docstring), or ``None`` when they
    are disabled (``SPARSE_RL_NATIVE=0``) or cannot be built here (a warning says why, once)."""
    if os.environ.get("SPARSE_RL_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        library, path = load_library(SOURCE)
        return NativeKernels(library, path)
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        warnings.warn(f"sparse_rl: native csr kernels unavailable ({error}); using torch's sparse kernels, "
                      "which are slower", RuntimeWarning, stacklevel=2)
        return None


def _cache_dir() -> Path:
    if os.environ.get("SPARSE_RL_CACHE_DIR"):
        return Path(os.environ["SPARSE_RL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sparse_rl"


def _private_cache_dir() -> Path:
    """The cache directory, created with mode 0700; a ``RuntimeError`` if another user owns it or
    others may write into it (a library planted there would run in this process)."""
    directory = _cache_dir()
    directory.parent.mkdir(parents=True, exist_ok=True)
    directory.mkdir(mode=0o700, exist_ok=True)  # an existing one keeps its mode: checked next
    _check_private(directory, "cache directory")
    return directory


class UnsafeCacheError(RuntimeError):
    """The cache directory or a library in it is another user's or writable by others: nothing is
    loaded from it (see :func:`_check_private`)."""


def _check_private(path: Path, what: str) -> None:
    """An :class:`UnsafeCacheError` unless ``path`` is owned by this user and not writable by group or
    others."""
    info = path.stat()
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        raise UnsafeCacheError(f"the {what} {path} is owned by another user (uid {info.st_uid}); refusing to load "
                               "native code from it. Set SPARSE_RL_CACHE_DIR to a directory of your own")
    if info.st_mode & 0o022:
        raise UnsafeCacheError(f"the {what} {path} is writable by other users (mode {info.st_mode & 0o777:o}); "
                               f"refusing to load native code from it. Run chmod go-w {path}, or set "
                               "SPARSE_RL_CACHE_DIR to a private directory")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _verified(target: Path) -> bool:
    """Whether ``target`` is a library this user built: private, and its sha256 the one recorded in
    ``<target>.sha256`` when it was built (``False`` if either file is missing or they differ)."""
    sidecar = target.with_name(target.name + ".sha256")
    if not target.is_file() or not sidecar.is_file():
        return False
    _check_private(target, "native library")
    _check_private(sidecar, "digest file")
    return sidecar.read_text(encoding="ascii").strip() == _digest(target)


def _cpu_fingerprint() -> str:
    """The CPU's model and feature flags (``-march=native`` code must not run on another CPU)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        wanted = [line for line in lines if line.startswith(("model name", "flags"))][:2]
        return "\n".join(wanted)
    except OSError:
        return platform.processor() + platform.machine()


def _compiler() -> str:
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate and shutil.which(candidate):
            return candidate
    raise RuntimeError("no C compiler found (set $CC, or install gcc)")


def load_library(source_path: Path, extra_flags: tuple[str, ...] = ()) -> tuple[ctypes.CDLL, Path]:
    """Build (:func:`build_library`) and load ``source_path``, with OpenMP threads when the compiler
    builds them and the library then loads (the OpenMP runtime is the one torch has loaded), else
    without: its kernels then run on one thread.

    :raises OSError, RuntimeError: when neither build loads, or the cache is unsafe
        (:class:`UnsafeCacheError`: then nothing is built or loaded)
    """
    try:
        path = build_library(source_path, (OPENMP_FLAG, *extra_flags))
        return ctypes.CDLL(str(path)), path
    except UnsafeCacheError:
        raise
    except (OSError, RuntimeError, subprocess.SubprocessError):
        path = build_library(source_path, extra_flags)
        return ctypes.CDLL(str(path)), path


def build_library(source_path: Path, extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile ``source_path`` (a C file) into a shared library in the private cache directory,
    once per source, flags and CPU (see the module docstring), and return its path, verified
    (:func:`_verified`: a library found there is used only if its build-time sha256 matches).

    :param source_path: the C source
    :param extra_flags: compiler flags added to each of :data:`FLAG_SETS`
    :raises RuntimeError: without a compiler, when every flag set fails, or for a cache directory
        another user owns or others can write
    """
    source = source_path.read_bytes()
    compiler = _compiler()
    directory = _private_cache_dir()
    errors = []
    for base_flags in FLAG_SETS:
        flags = (*base_flags, *extra_flags)
        key = hashlib.sha256(source + " ".join((compiler, *flags)).encode() + _cpu_fingerprint().encode()).hexdigest()
        target = directory / f"{source_path.stem}-{key[:16]}.so"
        if _verified(target):
            return target
        with tempfile.TemporaryDirectory(dir=directory) as scratch:
            built = Path(scratch) / target.name
            result = subprocess.run([compiler, *flags, "-o", str(built), str(source_path)], capture_output=True,
                                    text=True, timeout=120)
            if result.returncode == 0:
                os.chmod(built, 0o700)
                sidecar = Path(scratch) / (target.name + ".sha256")
                sidecar.write_text(_digest(built) + "\n", encoding="ascii")
                os.chmod(sidecar, 0o600)
                # atomic, digest first: a worker racing us sees the new digest with the old library
                # (identical builds: the same bytes) or fails the check and builds again
                os.replace(sidecar, target.with_name(sidecar.name))
                os.replace(built, target)
                if not _verified(target):  # a racing build replaced it with other bytes: build again
                    continue
                return target
            errors.append(f"{compiler} {' '.join(flags)}: {result.stderr.strip()[-300:]}")
    raise RuntimeError("; ".join(errors) or "the native kernels changed while they were built; try again")
