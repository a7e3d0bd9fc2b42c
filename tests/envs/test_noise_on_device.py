"""The counter noise made with torch operations: the native kernel's and numpy's bits, on the CPU
and (where one is present) on CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparse_rl.envs.noise import CounterNoise, IndexedNoise, NormalNoise, UniformNoise
from sparse_rl.envs.noise import counter as numpy_noise
from sparse_rl.envs.noise import on_device as torch_noise
from sparse_rl.envs.noise.counter import counter_noise, counter_noise_feature_major, counter_noise_numpy
from sparse_rl.envs.noise.on_device import (
    counter_noise_torch,
    indices_tensor,
    stream_noise_torch,
    supports_torch_noise,
)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="needs a CUDA device"))]
#: indices at both ends of [0, 2^64) and across 2^63, where int64 changes sign
INDICES = np.array([0, 1, 2, 5, 123456789, 2**32 - 1, 2**32, 2**63 - 2, 2**63 - 1, 2**63, 2**63 + 1,
                    2**63 + 987654321, 2**64 - 2, 2**64 - 1], dtype=np.uint64)
KEYS = [0, 0xDEADBEEF, 2**63 - 1, 2**63, 0xF00DCAFE12345678, 2**64 - 1]


def bits(values: np.ndarray | torch.Tensor) -> np.ndarray:
    """The float32 values' bit patterns (so that -0.0 != 0.0 and NaN == NaN)."""
    if isinstance(values, torch.Tensor):
        values = values.cpu().numpy()
    return np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["normal", "uniform"])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 513, 1683])
def test_rows_and_feature_major_give_the_native_kernels_and_numpys_bits(device: str, kind: str, size: int) -> None:
    rng = np.random.default_rng(size)
    indices = np.concatenate([INDICES, rng.integers(0, 2**64, 50, dtype=np.uint64)])
    for key in KEYS:
        reference = counter_noise_numpy(key, indices, size, kind, np.empty((indices.size, size), np.float32))
        native = counter_noise(key, indices, size, kind)  # the native kernel where it is built, else numpy
        np.testing.assert_array_equal(bits(native), bits(reference))
        rows = counter_noise_torch(key, indices, size, kind, device=device)
        assert rows.device.type == device and rows.shape == (indices.size, size) and rows.dtype is torch.float32
        np.testing.assert_array_equal(bits(rows), bits(reference))
        columns = counter_noise_torch(key, indices_tensor(indices, device), size, kind, feature_major=True)
        assert columns.device.type == device and columns.shape == (size, indices.size)
        np.testing.assert_array_equal(bits(columns), bits(reference.T))
        native_columns = counter_noise_feature_major(key, indices, size, kind, np.empty((size, indices.size),
                                                                                         np.float32))
        np.testing.assert_array_equal(bits(columns), bits(native_columns))


@pytest.mark.parametrize("device", DEVICES)
def test_ln_cos_and_sin_give_numpys_bits_for_every_one_of_their_inputs(device: str) -> None:
    # Every 24-bit input of ln (a) and of the angle (b): the float32 polynomials, the radius's
    # square root and the quadrant's signs, all of them, not a sample.
    chunk = 1 << 22
    for start in range(0, 1 << 24, chunk):
        inputs = np.arange(start, start + chunk, dtype=np.uint32)
        on_device = torch.arange(start, start + chunk, dtype=torch.int64, device=device)
        ln = numpy_noise._log_unit(inputs)
        ln_torch = torch_noise._log_unit(on_device)
        np.testing.assert_array_equal(bits(ln_torch), bits(ln))
        np.testing.assert_array_equal(bits(torch_noise._sqrt(ln_torch * -2.0)), bits(np.sqrt(np.float32(-2.0) * ln)))
        cos, sin = numpy_noise._cos_sin_turn(inputs)
        cos_torch, sin_torch = torch_noise._cos_sin_turn(on_device)
        np.testing.assert_array_equal(bits(cos_torch), bits(cos))
        np.testing.assert_array_equal(bits(sin_torch), bits(sin))


@pytest.mark.parametrize("device", DEVICES)
def test_mix64_on_int64_gives_the_unsigned_words(device: str) -> None:
    words = np.concatenate([np.array([0, 1, 2**63 - 1, 2**63, 2**64 - 1], dtype=np.uint64),
                            np.random.default_rng(0).integers(0, 2**64, 1000, dtype=np.uint64)])
    with np.errstate(over="ignore"):
        expected = numpy_noise._mix64(words)
    mixed = torch_noise._mix64(indices_tensor(words, device).clone())  # _mix64 works in place
    np.testing.assert_array_equal(mixed.cpu().numpy().view(np.uint64), expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("stream", [CounterNoise(NormalNoise(), 1683, noise_seed=4),
                                    CounterNoise(NormalNoise(std=2.5), 101, noise_seed=7),
                                    CounterNoise(UniformNoise(-3.0, 1.0), 7, noise_seed=4),
                                    CounterNoise(UniformNoise(0.1, 0.3), 64, noise_seed=2**70)])
def test_a_streams_noise_is_what_many_returns_written_into_a_batchs_columns(stream: CounterNoise,
                                                                            device: str) -> None:
    assert supports_torch_noise(stream)
    indices = np.array([5, 0, 2**64 - 1, 77, 2**63, 3] * 6, dtype=np.uint64)
    rows = stream.many(indices)
    batch = torch.full((indices.size, stream.size + 3), float("nan"), device=device)  # 3 real features first
    returned = stream_noise_torch(stream, indices, out=batch[:, 3:])
    assert returned.data_ptr() == batch[:, 3:].data_ptr()
    np.testing.assert_array_equal(bits(batch[:, 3:]), bits(rows))
    assert torch.isnan(batch[:, :3]).all()  # nothing written outside the noise columns
    padded = torch.full((stream.size + 2, indices.size + 5), float("nan"), device=device)
    stream_noise_torch(stream, indices_tensor(indices, device), out=padded[2:, : indices.size], feature_major=True)
    np.testing.assert_array_equal(bits(padded[2:, : indices.size]), bits(rows.T))
    assert torch.isnan(padded[:2]).all() and torch.isnan(padded[:, indices.size:]).all()


class _ShiftedNormal(NormalNoise):
    """A subclass whose ``from_standard`` differs: the torch map of its parent would be wrong."""

    name = "shifted_normal_for_torch_test"

    def from_standard(self, values: np.ndarray) -> np.ndarray:
        return values + np.float32(1.0)


def test_streams_without_a_torch_map_are_refused() -> None:
    for stream in (IndexedNoise(NormalNoise(), 5, noise_seed=1), CounterNoise(_ShiftedNormal(), 5, noise_seed=1)):
        assert not supports_torch_noise(stream)
        with pytest.raises(ValueError, match="no torch version"):
            stream_noise_torch(stream, np.arange(3))


def test_indices_of_every_integer_form_and_bad_arguments() -> None:
    expected = np.array([0, 7, 2**64 - 1], dtype=np.uint64).view(np.int64)
    for form in (np.array([0, 7, 2**64 - 1], dtype=np.uint64), [0, 7, 2**64 - 1],
                 torch.tensor([0, 7, -1], dtype=torch.int64)):
        np.testing.assert_array_equal(indices_tensor(form).numpy(), expected)
    np.testing.assert_array_equal(indices_tensor(np.array([3, 4], dtype=np.int32)).numpy(), [3, 4])
    with pytest.raises(TypeError, match="integers"):
        indices_tensor(np.array([1.5]))
    with pytest.raises(ValueError, match="kind must be one of"):
        counter_noise_torch(1, np.arange(2), 3, "laplace")
    with pytest.raises(ValueError, match="out must be a float32 tensor of shape"):
        counter_noise_torch(1, np.arange(2), 3, "normal", out=torch.empty(3, 2))
    assert counter_noise_torch(1, np.arange(0), 3, "normal").shape == (0, 3)
    assert counter_noise_torch(1, np.arange(4), 0, "uniform", feature_major=True).shape == (0, 4)
