"""The native csr kernels: same numbers as dense torch products, argument checks, and the fallback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from sparse_rl.sparse import SparseLinear, native
from sparse_rl.sparse.kernels import CSRStructure
from sparse_rl.sparse.layers import random_mask

HAS_COMPILER = any(shutil.which(name) for name in ("cc", "gcc", "clang"))


@pytest.fixture
def kernels() -> native.NativeKernels:
    if not HAS_COMPILER:
        pytest.skip("no C compiler on this machine: the torch fallback is tested instead")
    loaded = native.native_kernels()
    assert loaded is not None, "a C compiler is here, so the native kernels must build"
    return loaded


@pytest.fixture
def without_native(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SPARSE_RL_NATIVE", "0")
    native.native_kernels.cache_clear()
    yield
    native.native_kernels.cache_clear()


def _structure(in_features: int, out_features: int, density: float, seed: int = 0) -> tuple[CSRStructure, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    mask = random_mask((out_features, in_features), density, generator, "cpu")
    return CSRStructure.build(mask.reshape(-1).nonzero().squeeze(1), in_features, out_features, block_columns=64), mask


@pytest.mark.parametrize("batch", [1, 7, 8, 70, 256])
@pytest.mark.parametrize(("in_features", "out_features", "density"), [(300, 40, 0.1), (17, 9, 0.5), (130, 1, 0.3)])
def test_kernels_equal_dense_products(kernels: native.NativeKernels, batch: int, in_features: int,
                                      out_features: int, density: float) -> None:
    structure, mask = _structure(in_features, out_features, density)
    values = torch.randn(structure.nnz)
    weight = torch.zeros(out_features * in_features)
    weight[structure.sorted_positions] = values[structure.sorted_slots]
    weight = weight.view(out_features, in_features)
    x_t = torch.randn(in_features, batch)
    g_t = torch.randn(out_features, batch)
    bias = torch.randn(out_features)

    torch.testing.assert_close(structure.matmul(values, x_t, bias), weight @ x_t + bias[:, None], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(structure.matmul_transposed(values, g_t), weight.t() @ g_t, rtol=1e-5, atol=1e-5)
    sampled = torch.zeros(out_features * in_features)
    sampled[structure.sorted_positions] = structure.sampled_grad(x_t, g_t)[structure.sorted_slots]
    # a sum of up to 256 products in another order: float32 rounding of ~1e-5 on values ~10
    torch.testing.assert_close(sampled.view(out_features, in_features), (g_t @ x_t.t()) * mask, rtol=1e-4, atol=1e-4)


def test_kernels_check_their_arguments(kernels: native.NativeKernels) -> None:
    crow, col = torch.tensor([0, 1]), torch.tensor([0], dtype=torch.int32)
    with pytest.raises(ValueError, match="float32"):
        kernels.spmm_blocked(crow, col, torch.ones(1, dtype=torch.float64), 1, torch.ones(1, 4), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="int64"):
        kernels.spmm_blocked(crow.int(), col, torch.ones(1), 1, torch.ones(1, 4), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="int32"):
        kernels.spmm_blocked(crow, col.long(), torch.ones(1), 1, torch.ones(1, 4), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="shape"):
        kernels.spmm_blocked(crow, col, torch.ones(1), 1, torch.ones(1, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="contiguous"):
        kernels.spmm_blocked(crow, col, torch.ones(1), 1, torch.ones(4, 2).t()[:1], torch.zeros(1, 4))
    with pytest.raises(ValueError, match="out must hold 1 numbers"):
        kernels.sddmm_blocked(crow, col, 1, torch.ones(1, 4), torch.ones(1, 4), out=torch.zeros(2))


def test_native_and_torch_paths_agree(kernels: native.NativeKernels, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    layer = SparseLinear(600, 32, density=0.1, backend="csr")
    x = torch.randn(50, 600, requires_grad=True)

    def forward_backward() -> tuple[torch.Tensor, ...]:
        layer.zero_grad()
        x.grad = None
        y = layer(x)
        (y.square().sum()).backward()
        return y.detach(), x.grad.clone(), layer.values.grad.clone()

    native_results = forward_backward()
    monkeypatch.setattr("sparse_rl.sparse.kernels.supports", lambda *tensors: False)
    torch_results = forward_backward()
    for got, expected in zip(native_results, torch_results, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_disabled_native_kernels_fall_back_to_torch(without_native: None) -> None:
    assert native.native_kernels() is None
    assert not native.supports(torch.ones(1))
    torch.manual_seed(0)
    csr = SparseLinear(300, 16, density=0.1, backend="csr")
    masked = SparseLinear(300, 16, density=0.1, backend="masked")
    masked.set_mask_(csr.mask)
    with torch.no_grad():
        masked.weight.copy_(csr.weight)
        masked.bias.copy_(csr.bias)
    x = torch.randn(5, 300)
    torch.testing.assert_close(csr(x), masked(x), rtol=1e-5, atol=1e-5)


def test_a_failed_build_warns_and_falls_back(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    monkeypatch.setenv("SPARSE_RL_CACHE_DIR", str(tmp_path))
    native.native_kernels.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="native csr kernels unavailable"):
            assert native.native_kernels() is None
    finally:
        native.native_kernels.cache_clear()


@pytest.mark.parametrize("batch", [1, 30, 64, 100, 256])
def test_blocked_kernels_at_a_padded_row_stride(kernels: native.NativeKernels, batch: int) -> None:
    structure, mask = _structure(300, 40, 0.2)
    values = torch.randn(structure.nnz)
    weight = torch.zeros(40 * 300)
    weight[structure.sorted_positions] = values[structure.sorted_slots]
    weight = weight.view(40, 300)
    stride = native.feature_major_stride(batch)
    x_t = torch.empty(300, stride)[:, :batch].copy_(torch.randn(300, batch))
    g_t = torch.randn(40, batch)
    y_t = torch.zeros(40, batch)
    kernels.spmm_blocked(structure.block_crow, structure.block_col, values[structure.block_slots], structure.width,
                         x_t, y_t)
    torch.testing.assert_close(y_t, weight @ x_t, rtol=1e-5, atol=1e-5)
    sampled = kernels.sddmm_blocked(structure.block_crow, structure.block_col, structure.width, x_t, g_t)
    dense = torch.zeros(40 * 300)
    dense[structure.sorted_positions[torch.argsort(structure.sorted_slots)][structure.block_slots]] = sampled
    torch.testing.assert_close(dense.view(40, 300), (g_t @ x_t.t()) * mask, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="contiguous rows"):
        kernels.spmm_blocked(structure.block_crow, structure.block_col, values, structure.width,
                             torch.randn(batch + 1, 300).t()[:, :batch] if batch > 1 else torch.randn(2, 300).t(), y_t)


@pytest.mark.parametrize("batch", [1, 16, 100, 256, 257])
def test_feature_major_stride_is_an_odd_number_of_cache_lines(batch: int) -> None:
    stride = native.feature_major_stride(batch)
    assert stride >= batch and stride % 16 == 0 and (stride // 16) % 2 == 1 and stride - batch < 32


def _skewed_structure(in_features: int, out_features: int) -> CSRStructure:
    """Half the nonzeros in the first two rows: threads balanced by row count would be uneven."""
    generator = torch.Generator().manual_seed(3)
    mask = torch.rand(out_features, in_features, generator=generator) < 0.05
    mask[:2] = torch.rand(2, in_features, generator=generator) < 0.9
    return CSRStructure.build(mask.reshape(-1).nonzero().squeeze(1), in_features, out_features, block_columns=128)


@pytest.mark.parametrize("batch", [70, 256])
@pytest.mark.parametrize("skewed", [False, True])
def test_threads_give_the_bits_of_one_thread(kernels: native.NativeKernels, batch: int, skewed: bool) -> None:
    # big enough that every call splits (nonzeros x batch far above the one-thread limit of 2^18)
    structure = _skewed_structure(3000, 64) if skewed else _structure(3000, 64, 0.2)[0]
    values, x_t, g_t = torch.randn(structure.nnz), torch.randn(3000, batch), torch.randn(64, batch)
    bias = torch.randn(64)
    results, before = {}, torch.get_num_threads()
    try:
        for threads in (1, 2, 3, 7):
            torch.set_num_threads(threads)  # the kernels take torch's thread count
            results[threads] = (structure.matmul(values, x_t, bias), structure.matmul_transposed(values, g_t),
                                structure.sampled_grad(x_t, g_t))
    finally:
        torch.set_num_threads(before)
    for threads, outputs in results.items():
        for name, one, many in zip(("product", "transposed product", "sampled gradient"), results[1], outputs):
            assert torch.equal(one, many), f"{name} on {threads} threads differs from one thread's"


def test_the_kernels_are_built_with_threads(kernels: native.NativeKernels) -> None:
    # gcc and clang with libomp build OpenMP; without it the kernels would silently run on one thread
    assert kernels.threaded


def test_a_build_without_openmp_still_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    if not HAS_COMPILER:
        pytest.skip("no C compiler on this machine")
    monkeypatch.setattr(native, "OPENMP_FLAG", "-fno-such-flag-sparse-rl")  # a flag every compiler refuses
    monkeypatch.setenv("SPARSE_RL_CACHE_DIR", str(tmp_path))
    native.native_kernels.cache_clear()
    try:
        loaded = native.native_kernels()
        assert loaded is not None and not loaded.threaded
        structure, mask = _structure(300, 40, 0.2)
        values, x_t = torch.randn(structure.nnz), torch.randn(300, 9)
        weight = torch.zeros(40 * 300)
        weight[structure.sorted_positions] = values[structure.sorted_slots]
        expected = weight.view(40, 300) @ x_t
        torch.testing.assert_close(structure.matmul(values, x_t, None), expected, rtol=1e-5, atol=1e-5)
    finally:
        native.native_kernels.cache_clear()


@pytest.mark.parametrize("threads", [0, -2])
def test_kernel_threads_must_be_positive(threads: int) -> None:
    with pytest.raises(ValueError, match="threads must be at least 1"):
        native.kernel_threads(threads)


def _has_avx512() -> bool:
    """Whether this CPU has AVX-512 (F and VL), the code path the two tests below pin down."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512f" in flags and "avx512vl" in flags


#: Without AVX-512 the kernels' batch tail (batch % 8 floats) is a plain C loop whose rounding the
#: compiler decides (measured on an AMD EPYC with AVX2 + FMA, 2026-12-02: it differs from the fused
#: chain these tests write out), so a product's last bits there may differ between CPUs with and
#: without AVX-512 (docs/performance.md). The bit-identity of every change is checked per machine.
needs_avx512 = pytest.mark.skipif(not _has_avx512(), reason="pins the AVX-512 code path; this CPU has no AVX-512")


@pytest.mark.parametrize("columns", [pytest.param(8, marks=needs_avx512), 16, 24, 32, 40, 48, 56])
def test_the_products_columns_do_not_depend_on_the_vectors_that_hold_them(kernels: native.NativeKernels,
                                                                          columns: int) -> None:
    """A batch column gets the same operations (y, then one fused multiply-add per nonzero, in
    order) whether a 16-float vector (AVX-512), an 8-float one or a tile of 64 holds it: the first
    ``columns`` of a batch of 64 (four vectors of 16) equal a batch of ``columns`` (16s and an 8)
    bit for bit, and a batch of 72 (a tile of 64, then an 8) agrees on its first 64."""
    structure, _ = _structure(300, 40, 0.2)
    values = torch.randn(structure.nnz)
    x_t = torch.randn(300, 72)
    full = structure.matmul(values, x_t[:, :64].contiguous())
    assert torch.equal(structure.matmul(values, x_t[:, :columns].contiguous()), full[:, :columns])
    assert torch.equal(structure.matmul(values, x_t.contiguous())[:, :64], full)


@needs_avx512
@pytest.mark.parametrize("batch", [1, 3, 7, 68, 100])
def test_the_batchs_last_floats_are_summed_row_by_row_as_before(kernels: native.NativeKernels, batch: int) -> None:
    """The last ``batch % 8`` floats of a product (four rows at a time where AVX-512 is) get, for
    each row, the sum of its nonzeros' products from zero in order, then added to y: the same
    numbers as that loop written out in float32 with fused multiply-adds (here in float64, rounded
    after each step)."""
    structure, _ = _structure(150, 13, 0.3)  # 13 rows: groups of four and a leftover
    generator = torch.Generator().manual_seed(batch)
    values = torch.randn(structure.nnz, generator=generator)
    x_t = torch.randn(150, batch, generator=generator)
    bias = torch.randn(13, generator=generator)
    got = structure.matmul(values, x_t, bias)
    tail = batch % 8
    blocked = values[structure.block_slots].double()
    crow, col = structure.block_crow.tolist(), structure.block_col.long()
    for row in range(13):
        y = bias[row].expand(tail).clone()
        for block in range(-(-150 // structure.width)):
            acc = torch.zeros(tail, dtype=torch.float64)
            start, stop = crow[block * 13 + row], crow[block * 13 + row + 1]
            for k in range(start, stop):
                x = x_t[block * structure.width + col[k], batch - tail:].double()
                acc = (acc + blocked[k] * x).float().double()  # the product exact in float64: a fused multiply-add
            y = (y.double() + acc).float()
        assert torch.equal(got[row, batch - tail:], y), row


@pytest.mark.parametrize("batch", [1, 13, 100, 256])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_shared_input_kernels_give_the_bits_of_one_call_per_part(kernels: native.NativeKernels, batch: int,
                                                                 threads: int) -> None:
    parts = [_structure(300, 40, density, seed)[0] for density, seed in ((0.1, 0), (0.3, 1), (0.05, 2))]
    generator = torch.Generator().manual_seed(batch)
    values = [torch.randn(structure.nnz, generator=generator) for structure in parts]
    x_t = torch.randn(300, batch, generator=generator)
    gs = [torch.randn(40, batch, generator=generator) for _ in parts]
    starts = [torch.randn(40, batch, generator=generator) for _ in parts]

    def args(structure: CSRStructure) -> tuple[torch.Tensor, torch.Tensor]:
        return structure.block_crow, structure.block_col

    expected_y, expected_g = [], []
    for structure, v, g, start in zip(parts, values, gs, starts, strict=True):
        y = start.clone()
        kernels.spmm_blocked(*args(structure), v, structure.width, x_t, y, threads=1)
        expected_y.append(y)
        expected_g.append(kernels.sddmm_blocked(*args(structure), structure.width, x_t, g, threads=1))
    ys = [start.clone() for start in starts]
    kernels.spmm_blocked_shared([s.block_crow for s in parts], [s.block_col for s in parts], values, parts[0].width,
                                x_t, ys, threads=threads)
    outs = [torch.zeros(s.nnz) for s in parts]
    kernels.sddmm_blocked_shared([s.block_crow for s in parts], [s.block_col for s in parts], parts[0].width, x_t,
                                 gs, outs, threads=threads)
    for got, expected in zip(ys + outs, expected_y + expected_g, strict=True):
        assert torch.equal(got, expected)


def test_shared_input_kernels_check_their_arguments(kernels: native.NativeKernels) -> None:
    (a, _), (b, _) = _structure(300, 40, 0.1), _structure(300, 24, 0.1)
    x_t = torch.randn(300, 8)
    with pytest.raises(ValueError, match="1 to 8 parts"):
        kernels.spmm_blocked_shared([], [], [], a.width, x_t, [])
    with pytest.raises(ValueError, match="1 to 8 parts"):
        kernels.spmm_blocked_shared([a.block_crow] * 9, [a.block_col] * 9, [torch.zeros(a.nnz)] * 9, a.width, x_t,
                                    [torch.zeros(40, 8)] * 9)
    with pytest.raises(ValueError, match="blocks and output shape of the first"):
        kernels.spmm_blocked_shared([a.block_crow, b.block_crow], [a.block_col, b.block_col],
                                    [torch.zeros(a.nnz), torch.zeros(b.nnz)], a.width, x_t,
                                    [torch.zeros(40, 8), torch.zeros(24, 8)])
    with pytest.raises(ValueError, match="one number per nonzero"):
        kernels.sddmm_blocked_shared([a.block_crow], [a.block_col], a.width, x_t, [torch.zeros(40, 8)],
                                     [torch.zeros(a.nnz + 1)])
    with pytest.raises(ValueError, match="inputs of"):
        kernels.sddmm_blocked_shared([a.block_crow], [a.block_col], a.width, x_t[:10], [torch.zeros(40, 8)],
                                     [torch.zeros(a.nnz)])
