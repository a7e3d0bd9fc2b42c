"""Noise distributions, their registry, seeds and the counter-based noise stream."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparse_rl.envs.noise import (
    NOISE_DISTRIBUTIONS,
    CounterNoise,
    IndexedNoise,
    NoiseDistribution,
    NormalNoise,
    UniformNoise,
    check_noise_generator,
    check_seed,
    derive_noise_seed,
    make_noise_distribution,
    make_noise_stream,
    random_noise_seed,
    register_noise_distribution,
)
from sparse_rl.envs.noise import distributions as noise_module  # where the registry lives


def test_registry_has_the_documented_kinds() -> None:
    assert NOISE_DISTRIBUTIONS["normal"] is NormalNoise
    assert NOISE_DISTRIBUTIONS["uniform"] is UniformNoise


@pytest.mark.parametrize("std", [1.0, 0.5, 3.0])
def test_normal_statistics(std: float) -> None:
    dist = make_noise_distribution("normal", std=std)
    samples = dist.sample(np.random.default_rng(0), 200_000)
    assert samples.dtype == np.float32 and samples.shape == (200_000,)
    assert abs(samples.mean()) < 0.01 * std
    assert samples.std() == pytest.approx(std, rel=0.01)


def test_normal_default_is_standard() -> None:
    dist = make_noise_distribution("normal")
    assert dist == NormalNoise(std=1.0)
    assert dist.bounds == (-math.inf, math.inf)


def test_uniform_statistics_and_bounds() -> None:
    dist = make_noise_distribution("uniform", low=-2.0, high=4.0)
    samples = dist.sample(np.random.default_rng(0), 200_000)
    assert samples.dtype == np.float32
    assert samples.min() >= -2.0 and samples.max() <= 4.0
    assert samples.mean() == pytest.approx(1.0, abs=0.02)
    assert samples.var() == pytest.approx(36 / 12, rel=0.02)
    assert dist.bounds == (-2.0, 4.0)
    assert make_noise_distribution("uniform").bounds == (-1.0, 1.0)


def test_sample_is_a_pure_function_of_the_generator_state() -> None:
    for dist in (NormalNoise(2.0), UniformNoise()):
        a = dist.sample(np.random.default_rng(5), 100)
        b = dist.sample(np.random.default_rng(5), 100)
        np.testing.assert_array_equal(a, b)


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown noise distribution 'gaussian'.*known: normal, uniform"):
        make_noise_distribution("gaussian")
    with pytest.raises(ValueError, match=r"did you mean 'normal'"):
        make_noise_distribution("normall")


@pytest.mark.parametrize(
    ("name", "params", "pattern"),
    [
        ("normal", {"std": 0.0}, r"std must be a finite number > 0, got 0\.0"),
        ("normal", {"std": -1}, r"std must be a finite number > 0, got -1"),
        ("normal", {"std": float("nan")}, r"std must be a finite number > 0"),
        ("normal", {"std": float("inf")}, r"std must be a finite number > 0"),
        ("normal", {"std": "big"}, r"std must be a finite number > 0, got 'big'"),
        ("normal", {"std": True}, r"std must be a finite number > 0, got True"),
        ("uniform", {"low": 1.0, "high": 1.0}, r"low must be < high, got low=1\.0, high=1\.0"),
        ("uniform", {"low": 2.0, "high": 1.0}, r"low must be < high"),
        ("uniform", {"low": -float("inf")}, r"low must be a finite number"),
        ("normal", {"sd": 1.0}, r"unknown parameter 'sd' for noise distribution 'normal' \(did you mean 'std'\?\)"),
        ("uniform", {"std": 1.0}, r"unknown parameter 'std'.*accepted: low, high"),
    ],
)
def test_bad_parameters_raise(name: str, params: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        make_noise_distribution(name, **params)


def test_instance_passes_through_but_not_with_params() -> None:
    dist = UniformNoise(0.0, 1.0)
    assert make_noise_distribution(dist) is dist
    with pytest.raises(ValueError, match="either a name with parameters or an instance"):
        make_noise_distribution(dist, low=0.0)


def test_new_kind_is_one_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(noise_module, "NOISE_DISTRIBUTIONS", NOISE_DISTRIBUTIONS.copy())

    @register_noise_distribution
    class ConstantNoise(NoiseDistribution):
        name = "constant"

        def __init__(self, value: float = 0.5) -> None:
            self.value = value

        def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
            return np.full(size, self.value, dtype=np.float32)

    dist = noise_module.make_noise_distribution("constant", value=2.0)
    assert isinstance(dist, ConstantNoise)
    assert repr(dist) == "ConstantNoise(value=2.0)"
    np.testing.assert_array_equal(dist.sample(np.random.default_rng(), 3), [2.0, 2.0, 2.0])
    # and a config names it, with no other edit
    from sparse_rl.envs import make_env

    env = make_env({"id": "Pendulum-v1", "noise_fraction": 0.5, "noise_distribution": "constant",
                    "noise_kwargs": {"value": 2.0}}, seed=0)
    observation, _ = env.reset(seed=0)
    real = np.asarray(env.get_wrapper_attr("real_feature_mask"))
    env.close()
    assert real.sum() == 3 and np.all(observation[~real] == 2.0)
    assert "constant" not in NOISE_DISTRIBUTIONS  # the real registry is untouched


def test_register_needs_a_name() -> None:
    class Nameless(NoiseDistribution):
        def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
            return np.zeros(size, dtype=np.float32)

    with pytest.raises(ValueError, match="non-empty class attribute 'name'"):
        register_noise_distribution(Nameless)


def test_repr_and_equality() -> None:
    assert repr(NormalNoise(2.0)) == "NormalNoise(std=2.0)"
    assert UniformNoise(-1, 1) == UniformNoise()
    assert NormalNoise(1.0) != NormalNoise(2.0)
    assert len({NormalNoise(), NormalNoise(), UniformNoise()}) == 2


# --------------------------------------------------------------------------------------------------
# seeds and the indexed stream


def test_derive_noise_seed() -> None:
    assert derive_noise_seed(3) == derive_noise_seed(3)
    assert derive_noise_seed(3) != derive_noise_seed(4)
    assert derive_noise_seed(3) != 3
    assert 0 <= derive_noise_seed(0) < 2**64
    assert random_noise_seed() != random_noise_seed()


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True, None])
def test_check_seed_rejects(seed: object) -> None:
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0, got"):
        check_seed(seed)  # type: ignore[arg-type]


def test_indexed_noise_matches_its_definition() -> None:
    """The documented definition: a fresh Philox keyed from the seed with the index in the top
    counter word; the stream's rewinding must give exactly those numbers."""
    stream = IndexedNoise(NormalNoise(), 1683, noise_seed=42)
    key = np.random.SeedSequence(42, spawn_key=(0x454E45,)).generate_state(2, np.uint64)
    for k in (0, 1, 7, 123_456, 2**64 - 1):
        rng = np.random.Generator(np.random.Philox(key=key, counter=np.array([0, 0, 0, k], dtype=np.uint64)))
        np.testing.assert_array_equal(stream(k), rng.standard_normal(1683, dtype=np.float32))


def test_indexed_noise_is_pure_and_order_free() -> None:
    stream = IndexedNoise(UniformNoise(), 50, noise_seed=1)
    forward = [stream(k) for k in range(20)]
    backward = [stream(k) for k in reversed(range(20))][::-1]
    np.testing.assert_array_equal(np.stack(forward), np.stack(backward))
    np.testing.assert_array_equal(stream.many(range(20)), np.stack(forward))
    assert not np.array_equal(forward[0], forward[1])
    other_seed = IndexedNoise(UniformNoise(), 50, noise_seed=2)
    assert not np.array_equal(other_seed(0), forward[0])


def test_indexed_noise_rejects_bad_arguments() -> None:
    stream = IndexedNoise(NormalNoise(), 4, noise_seed=0)
    for bad in (-1, 2**64, 1.0, True):
        with pytest.raises(ValueError, match=r"index must be an integer in \[0, 2\*\*64\)"):
            stream(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size must be an integer >= 0"):
        IndexedNoise(NormalNoise(), -1, noise_seed=0)
    with pytest.raises(ValueError, match="noise_seed must be an integer >= 0"):
        IndexedNoise(NormalNoise(), 4, noise_seed=-3)
    assert IndexedNoise(NormalNoise(), 0, noise_seed=0)(5).shape == (0,)


def test_noise_generators_by_name_and_their_errors() -> None:
    assert isinstance(make_noise_stream("counter", NormalNoise(), 4, 0), CounterNoise)
    assert isinstance(make_noise_stream("philox", NormalNoise(), 4, 0), IndexedNoise)
    with pytest.raises(ValueError, match="unknown noise generator 'filox'.*did you mean 'philox'.*auto.*counter"):
        make_noise_stream("filox", NormalNoise(), 4, 0)
    # a config or checkpoint of an older version that names the removed generator
    with pytest.raises(ValueError, match="'table' noise generator was removed.*made by an older version of "
                                         "sparse_rl.*use noise_generator: auto"):
        check_noise_generator("table", NormalNoise())

    class LaplaceNoise(NoiseDistribution):
        name = "laplace_test"

        def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
            return rng.laplace(size=size).astype(np.float32)

    with pytest.raises(ValueError, match="no standard form for the 'counter' noise generator; use .*'philox'"):
        check_noise_generator("counter", LaplaceNoise())
    assert check_noise_generator("philox", LaplaceNoise()) == "philox"


@pytest.mark.parametrize("stream_class", [CounterNoise, IndexedNoise])
def test_many_writes_into_a_given_array(stream_class: type) -> None:
    stream = stream_class(NormalNoise(), 40, noise_seed=2)
    batch = np.zeros((6, 43), dtype=np.float32)
    result = stream.many([3, 9, 1, 0, 2, 7], out=batch[:, 3:])
    np.testing.assert_array_equal(batch[:, 3:], stream.many([3, 9, 1, 0, 2, 7]))
    assert np.shares_memory(result, batch) and not batch[:, :3].any()
    with pytest.raises(ValueError, match="out must be a float32 array of shape"):
        stream.many([1, 2], out=np.zeros((2, 39), dtype=np.float32))
