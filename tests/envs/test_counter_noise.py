"""The counter-based noise: i.i.d. over every pair of observations and shift, native == numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparse_rl.envs.noise import (
    CounterNoise,
    IndexedNoise,
    NoiseDistribution,
    NormalNoise,
    UniformNoise,
    check_noise_generator,
    make_noise_stream,
)
from sparse_rl.envs.noise.counter import (
    counter_noise,
    counter_noise_feature_major,
    counter_noise_numpy,
    native_counter_noise,
)


def max_shifted_correlation(samples: np.ndarray, min_overlap: int) -> float:
    """The largest |z| over every pair of rows (i < j) and every shift s with an overlap of at
    least ``min_overlap`` features, and over every row with itself at every shift s ≠ 0, where
    ``z = Σ_t x_i[t] x_j[t + s] / √overlap``.

    For i.i.d. N(0, 1) rows each z is a sum of ``overlap`` independent products of unit variance,
    ≈ N(0, 1) at the overlaps used here (≥ 256 terms). Two rows that share a shifted run of
    numbers (windows cut from one shared table) give z ≈ ρ √overlap (≥ 8 at ρ = 0.5).
    """
    rows, size = samples.shape
    fft_size = 1 << (2 * size - 1).bit_length()
    spectra = np.fft.rfft(samples, n=fft_size, axis=1)
    lags = np.arange(fft_size)
    shifts = np.where(lags < fft_size // 2, lags, lags - fft_size)  # circular lag -> signed shift
    overlap = size - np.abs(shifts)
    usable = overlap >= min_overlap
    scale = 1.0 / np.sqrt(np.maximum(overlap, 1))
    worst = 0.0
    for i in range(rows):
        # correlation of row i with rows i..end at every shift: irfft(conj(F_i) · F_j)
        cross = np.fft.irfft(np.conj(spectra[i])[None, :] * spectra[i:], n=fft_size, axis=1)
        z = np.abs(cross[:, usable]) * scale[usable]
        z[0, shifts[usable] == 0] = 0.0  # a row with itself at shift 0 is its energy, not a correlation
        worst = max(worst, float(z.max()))
    return worst


#: 600 observations × 512 features: 179,700 pairs × 513 shifts ≈ 9.2·10⁷ z-values. Under
#: independence P(any |z| > 7.5) ≤ 9.2·10⁷ · P(|N(0, 1)| > 7.5) ≈ 6·10⁻⁶ (Bonferroni), while a
#: pair sharing ≥ 256 numbers at ρ = 0.5 gives z ≥ 8.
N_OBSERVATIONS, N_FEATURES, MIN_OVERLAP, BOUND = 600, 512, 256, 7.5


def test_counter_noise_is_independent_across_every_pair_and_shift() -> None:
    samples = CounterNoise(NormalNoise(), N_FEATURES, noise_seed=11).many(np.arange(N_OBSERVATIONS) * 7919 + 3)
    assert max_shifted_correlation(samples.astype(np.float64), MIN_OVERLAP) < BOUND


def test_the_same_test_flags_rows_that_share_shifted_windows() -> None:
    # rows cut from two shared tables at random offsets, (A[a:] + B[b:]) / √2: a pair whose windows
    # overlap in one table correlates at 0.5
    rng = np.random.default_rng(11)
    tables = rng.standard_normal((2, 4 * N_FEATURES))
    offsets = rng.integers(0, 3 * N_FEATURES, (2, N_OBSERVATIONS))
    samples = np.stack([(tables[0, a : a + N_FEATURES] + tables[1, b : b + N_FEATURES]) / math.sqrt(2.0)
                        for a, b in offsets.T])
    assert max_shifted_correlation(samples, MIN_OVERLAP) > BOUND


def test_counter_noise_marginal_is_standard_normal() -> None:
    samples = np.sort(CounterNoise(NormalNoise(), 1000, noise_seed=2).many(range(300)).ravel().astype(np.float64))
    n = samples.size
    cdf = 0.5 * (1.0 + np.array([math.erf(x / math.sqrt(2.0)) for x in samples]))
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    # Kolmogorov: P(√n D > 1.95) ≈ 0.001 under the null
    assert math.sqrt(n) * ks < 1.95
    assert abs(samples.mean()) < 5 / math.sqrt(n) and samples.var() == pytest.approx(1.0, abs=5 * math.sqrt(2 / n))
    assert np.abs(samples).max() <= 5.78  # the documented cut


def test_uniform_and_scaled_kinds() -> None:
    uniform = CounterNoise(UniformNoise(-2.0, 3.0), 101, noise_seed=1).many(range(3000))
    assert uniform.min() >= -2.0 and uniform.max() <= 3.0
    assert uniform.mean() == pytest.approx(0.5, abs=0.02)
    assert uniform.std() == pytest.approx(5 / math.sqrt(12), rel=0.02)
    unit = CounterNoise(NormalNoise(), 64, noise_seed=4).many(range(10))
    np.testing.assert_array_equal(CounterNoise(NormalNoise(std=2.5), 64, noise_seed=4).many(range(10)),
                                  unit * np.float32(2.5))


@pytest.mark.parametrize("kind", ["normal", "uniform"])
@pytest.mark.parametrize("size", [1, 2, 7, 513, 1683])
def test_native_kernel_gives_numpys_bits(kind: str, size: int) -> None:
    if native_counter_noise() is None:
        pytest.skip("no C compiler here: only the numpy path exists, nothing to compare")
    indices = np.array([0, 1, 2, 2**64 - 1, 123456789, 5], dtype=np.uint64)
    native = counter_noise(0xDEADBEEF, indices, size, kind)
    reference = counter_noise_numpy(0xDEADBEEF, indices, size, kind, np.empty((6, size), dtype=np.float32))
    np.testing.assert_array_equal(native.view(np.uint32), reference.view(np.uint32))


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_threads_give_the_bits_of_one_thread(threads: int) -> None:
    if native_counter_noise() is None:
        pytest.skip("no C compiler here: only the numpy path exists, which has no threads")
    indices = np.arange(97, dtype=np.uint64) * np.uint64(7919)  # 97 rows x 1683: above the one-thread limit
    one = counter_noise(11, indices, 1683, "normal", threads=1)
    many = np.full((97, 1700), np.nan, dtype=np.float32)
    counter_noise(11, indices, 1683, "normal", out=many[:, 17:], threads=threads)
    np.testing.assert_array_equal(many[:, 17:].view(np.uint32), one.view(np.uint32))
    assert np.isnan(many[:, :17]).all()  # nothing written outside the rows' noise columns


def test_writes_into_strided_rows_and_falls_back_without_native(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = CounterNoise(NormalNoise(), 40, noise_seed=2)
    batch = np.zeros((6, 43), dtype=np.float32)
    stream.many([3, 9, 1, 0, 2, 7], out=batch[:, 3:])
    expected = stream.many([3, 9, 1, 0, 2, 7])
    np.testing.assert_array_equal(batch[:, 3:], expected)
    assert not batch[:, :3].any()
    monkeypatch.setattr("sparse_rl.envs.noise.counter.native_counter_noise", lambda: None)
    np.testing.assert_array_equal(stream.many([3, 9, 1, 0, 2, 7]), expected)


def test_pure_order_free_seeded() -> None:
    stream = CounterNoise(NormalNoise(), 300, noise_seed=5)
    forward = np.stack([stream(k) for k in range(30)])
    np.testing.assert_array_equal(stream.many(np.arange(30)[::-1])[::-1], forward)
    assert not np.array_equal(forward[0], forward[1])
    assert not np.array_equal(CounterNoise(NormalNoise(), 300, noise_seed=6)(0), forward[0])
    with pytest.raises(ValueError, match="indices must be >= 0"):
        stream.many(np.array([-1]))


def test_auto_generator_and_errors() -> None:
    class LaplaceNoise(NoiseDistribution):
        name = "laplace_counter_test"

        def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
            return rng.laplace(size=size).astype(np.float32)

    assert check_noise_generator("auto", NormalNoise()) == "counter"
    assert check_noise_generator("auto", LaplaceNoise()) == "philox"
    assert isinstance(make_noise_stream("auto", LaplaceNoise(), 3, 0), IndexedNoise)
    with pytest.raises(ValueError, match="no standard form for the 'counter' noise generator"):
        check_noise_generator("counter", LaplaceNoise())


@pytest.mark.parametrize("stream", [CounterNoise(NormalNoise(2.0), 1683, noise_seed=4),
                                    CounterNoise(UniformNoise(-3.0, 1.0), 7, noise_seed=4),
                                    IndexedNoise(NormalNoise(), 33, noise_seed=4)])
@pytest.mark.parametrize("threads", [1, 3])
def test_feature_major_noise_is_the_transpose_of_the_rows(stream: CounterNoise, threads: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)  # the kernels' default thread count
    indices = np.array([5, 0, 2**64 - 1, 77] * 25, dtype=np.uint64)  # 100 observations
    rows = stream.many(indices)
    padded = np.full((stream.size + 2, 112), np.nan, dtype=np.float32)  # a padded batch, 2 real features on top
    stream.many_feature_major(indices, padded[2:, :100])
    np.testing.assert_array_equal(padded[2:, :100].view(np.uint32), rows.T.view(np.uint32))
    assert np.isnan(padded[:2]).all() and np.isnan(padded[:, 100:]).all()  # nothing written outside
    if native_counter_noise() is not None and isinstance(stream, CounterNoise):  # the numpy path: the same bits
        monkeypatch.setattr("sparse_rl.envs.noise.counter.native_counter_noise", lambda: None)
        again = np.empty((stream.size, 100), dtype=np.float32)
        np.testing.assert_array_equal(stream.many_feature_major(indices, again), rows.T)


class _ShiftedNormal(NormalNoise):
    """A distribution whose ``from_standard`` returns a new array instead of working in place."""

    name = "shifted_normal_for_test"

    def from_standard(self, values: np.ndarray) -> np.ndarray:
        return values * np.float32(2.0) + np.float32(1.0)


def test_the_noise_written_into_out_is_the_distributions_even_when_not_mapped_in_place() -> None:
    # The replay buffer reads the noise columns it hands as ``out``: they must hold the same numbers
    # the env emitted, whatever from_standard does.
    stream = CounterNoise(_ShiftedNormal(), size=7, noise_seed=3)
    indices = np.arange(5)
    out = np.zeros((5, 7), dtype=np.float32)
    returned = stream.many(indices, out=out)
    emitted = np.stack([stream(int(k)) for k in indices])
    np.testing.assert_array_equal(out, emitted)
    np.testing.assert_array_equal(returned, emitted)
    feature_major = np.zeros((7, 5), dtype=np.float32)
    stream.many_feature_major(indices, feature_major)
    np.testing.assert_array_equal(feature_major, emitted.T)
    standard = CounterNoise(NormalNoise(), size=7, noise_seed=3).many(indices)
    np.testing.assert_array_equal(emitted, standard * np.float32(2.0) + np.float32(1.0))  # mapped, once


def test_a_large_batch_gives_numpys_bits_in_both_layouts() -> None:
    """Half a million pairs (both branches of ``ln``'s reduction, every quadrant of ``cos`` and ``sin``, many
    times over): the kernel's vectorised normal transform (``COMPILE_FLAGS``) rounds as numpy does."""
    if native_counter_noise() is None:
        pytest.skip("no C compiler here: only the numpy path exists, nothing to compare")
    indices = np.random.default_rng(5).integers(0, 2**63, size=600, dtype=np.int64).astype(np.uint64)
    reference = counter_noise_numpy(77, indices, 1683, "normal", np.empty((600, 1683), dtype=np.float32))
    rows = counter_noise(77, indices, 1683, "normal", threads=1)
    columns = counter_noise_feature_major(77, indices, 1683, "normal", np.empty((1683, 600), dtype=np.float32),
                                          threads=1)
    np.testing.assert_array_equal(rows.view(np.uint32), reference.view(np.uint32))
    np.testing.assert_array_equal(columns.view(np.uint32), reference.T.view(np.uint32))
