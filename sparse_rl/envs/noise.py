"""Noise distributions of the extremely noisy environments (ENE) and their regenerable stream.

An ENE (Grooten et al., "Automatic Noise Filtering with Dynamic Sparse Training in Deep
Reinforcement Learning", AAMAS 2023) appends features of pure noise to every observation. This
module holds *what* noise is drawn (a :class:`NoiseDistribution`, one small class per kind, in a
registry) and *how* it is made regenerable: the noise of the ``k``-th observation is a pure function
of ``(noise_seed, k)``, drawn afresh for each ``k`` (:class:`IndexedNoise`, ``philox``) or cut from
two fixed random tables at offsets hashed from ``k`` (:class:`TableNoise`, ``table``, ≈10× faster
to regenerate, the default).

A new kind is one class plus a registry entry::

    @register_noise_distribution
    class LaplaceNoise(NoiseDistribution):
        name = "laplace"

        def __init__(self, scale: float = 1.0) -> None:
            self.scale = check_positive_float(scale, "scale")

        def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
            return rng.laplace(0.0, self.scale, size).astype(np.float32)
"""

from __future__ import annotations

import difflib
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar

import numpy as np

__all__ = [
    "NOISE_DISTRIBUTIONS",
    "NOISE_GENERATORS",
    "IndexedNoise",
    "NoiseDistribution",
    "TableNoise",
    "NormalNoise",
    "UniformNoise",
    "check_noise_generator",
    "check_non_negative_int",
    "check_seed",
    "derive_noise_seed",
    "make_noise_distribution",
    "make_noise_stream",
    "random_noise_seed",
    "register_noise_distribution",
]

#: spawn key that separates the noise streams from every other stream seeded by the same number
#: (gymnasium's ``np_random``, SB3's seeding): ``b"ENE"`` as an integer.
_NOISE_SPAWN_KEY = 0x454E45
#: spawn key used by :func:`derive_noise_seed` (a different one, so that a derived seed and the
#: seed it was derived from never share a key).
_DERIVE_SPAWN_KEY = 0x454E45_01


# --------------------------------------------------------------------------------------------------
# argument checks


def check_positive_float(value: float, name: str) -> float:
    """Return ``value`` as a float if it is a finite number > 0, else raise ``ValueError``."""
    number = _as_float(value, name, "a finite number > 0")
    if not (math.isfinite(number) and number > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def check_finite_float(value: float, name: str) -> float:
    """Return ``value`` as a float if it is a finite number, else raise ``ValueError``."""
    number = _as_float(value, name, "a finite number")
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def check_non_negative_int(value: int, name: str) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 0, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def check_seed(seed: int, name: str = "seed") -> int:
    """Return ``seed`` if it is an integer >= 0 (what ``np.random.SeedSequence`` accepts), else
    raise ``ValueError``."""
    return check_non_negative_int(seed, name)


def _as_float(value: Any, name: str, allowed: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {allowed}, got {value!r}") from None


# --------------------------------------------------------------------------------------------------
# distributions


class NoiseDistribution(ABC):
    """Base class of a noise kind: i.i.d. samples, one per noise feature.

    Subclasses set the class attribute :attr:`name`, validate their parameters in ``__init__``
    (raising ``ValueError`` that names the argument), implement :meth:`sample` and, when the
    samples are bounded, override :attr:`bounds`.
    """

    name: ClassVar[str] = ""

    @abstractmethod
    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` i.i.d. samples.

        :param rng: the generator to draw from (the only source of randomness: the result must be
            a pure function of the generator's state, so that the noise can be regenerated)
        :param size: number of samples
        :return: a float32 array of shape ``(size,)``
        """

    @property
    def bounds(self) -> tuple[float, float]:
        """The (low, high) range of the samples, for the observation space: unbounded by default."""
        return (-math.inf, math.inf)

    def table_values(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw the values of one table of :class:`TableNoise` (float32, shape ``(size,)``).

        A kind that supports the ``table`` generator overrides this and :meth:`combine`.
        """
        raise NotImplementedError(f"the {self.name!r} noise does not support the 'table' noise generator; "
                                  "use noise_generator='philox'")

    def combine(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Make samples of this distribution from two independent arrays of :meth:`table_values`
        (float32, same shape); may write into ``first`` and return it."""
        raise NotImplementedError(f"the {self.name!r} noise does not support the 'table' noise generator; "
                                  "use noise_generator='philox'")

    @property
    def params(self) -> dict[str, float]:
        """The constructor parameters, by name (what :func:`make_noise_distribution` takes)."""
        return {key: getattr(self, key) for key in _param_names(type(self))}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.params == other.params  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.params.items()))))


NOISE_DISTRIBUTIONS: dict[str, type[NoiseDistribution]] = {}
_D = TypeVar("_D", bound=type[NoiseDistribution])


def register_noise_distribution(cls: _D) -> _D:
    """Class decorator: make ``cls`` available to :func:`make_noise_distribution` under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty class attribute 'name' to be registered")
    NOISE_DISTRIBUTIONS[cls.name] = cls
    return cls


@register_noise_distribution
class NormalNoise(NoiseDistribution):
    """I.i.d. ``N(0, std²)`` noise, the noise of the ENE in Grooten et al. (AAMAS 2023).

    :param std: standard deviation, a finite number > 0
    """

    name = "normal"

    def __init__(self, std: float = 1.0) -> None:
        self.std = check_positive_float(std, "std")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` float32 samples of ``N(0, std²)`` (float32 ziggurat, then scaled)."""
        samples = rng.standard_normal(size, dtype=np.float32)
        if self.std != 1.0:
            samples *= np.float32(self.std)
        return samples

    def table_values(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Standard normal table values."""
        return rng.standard_normal(size, dtype=np.float32)

    def combine(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """``(a + b) · std / √2``: the sum of two independent N(0, 1) is N(0, 2). Writes into ``first``."""
        out = np.add(first, second, out=first)
        out *= np.float32(self.std / math.sqrt(2.0))
        return out


@register_noise_distribution
class UniformNoise(NoiseDistribution):
    """I.i.d. uniform noise on ``[low, high)`` (closed after rounding to float32).

    :param low: lower bound, a finite number
    :param high: upper bound, a finite number > ``low``
    """

    name = "uniform"

    def __init__(self, low: float = -1.0, high: float = 1.0) -> None:
        self.low = check_finite_float(low, "low")
        self.high = check_finite_float(high, "high")
        if not self.low < self.high:
            raise ValueError(f"low must be < high, got low={low!r}, high={high!r}")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` float32 samples of ``U(low, high)`` (drawn in float64, then rounded, so that
        they stay inside the float32 bounds)."""
        return (self.low + (self.high - self.low) * rng.random(size)).astype(np.float32)

    def table_values(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """U(0, 1) table values."""
        return rng.random(size, dtype=np.float32)

    def combine(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """``low + (high − low) · frac(a + b)``: the sum modulo 1 of two independent U(0, 1) is
        U(0, 1); clipped to the float32 bounds after rounding. Writes into ``first``."""
        unit = np.add(first, second, out=first)
        unit -= np.floor(unit)
        unit *= np.float32(self.high - self.low)
        unit += np.float32(self.low)
        return np.clip(unit, np.float32(self.low), np.float32(self.high), out=unit)

    @property
    def bounds(self) -> tuple[float, float]:
        """``(low, high)``."""
        return (self.low, self.high)


def make_noise_distribution(name: str | NoiseDistribution, **params: Any) -> NoiseDistribution:
    """The noise distribution registered as ``name``, built with ``params``.

    :param name: a registered kind (``"normal"``, ``"uniform"``, ...); an instance passes through
        (then ``params`` must be empty)
    :param params: the kind's constructor parameters (``std`` for ``normal``; ``low``, ``high`` for
        ``uniform``)
    :return: the distribution
    :raises ValueError: for an unknown name (the message lists the known ones), an unknown
        parameter, or a bad parameter value (the message names it and what is allowed)
    """
    if isinstance(name, NoiseDistribution):
        if params:
            raise ValueError(
                f"noise parameters {sorted(params)} given together with a distribution instance {name!r}; "
                "pass either a name with parameters or an instance"
            )
        return name
    if not isinstance(name, str) or name not in NOISE_DISTRIBUTIONS:
        raise ValueError(_unknown_choice("noise distribution", name, NOISE_DISTRIBUTIONS))
    cls = NOISE_DISTRIBUTIONS[name]
    accepted = _param_names(cls)
    for key in params:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"unknown parameter {key!r} for noise distribution {name!r}{hint}; "
                f"accepted: {', '.join(accepted) or 'none'}"
            )
    return cls(**params)


def _param_names(cls: type[NoiseDistribution]) -> list[str]:
    """Names of the named constructor parameters of ``cls`` (stored as attributes of that name)."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    parameters = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in parameters if p.kind in named and p.name != "self"]


def _unknown_choice(what: str, value: object, known: Iterable[str]) -> str:
    options = sorted(known)
    close = difflib.get_close_matches(str(value), options, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {what} {value!r}{hint}; known: {', '.join(options)}"


# --------------------------------------------------------------------------------------------------
# seeds and the regenerable stream


def derive_noise_seed(seed: int) -> int:
    """The noise seed derived from an environment seed (a 64-bit integer).

    ``np.random.SeedSequence(seed, spawn_key=(...,))`` with a spawn key of its own: the derived
    noise stream shares nothing with the streams that ``seed`` starts elsewhere (gymnasium's
    ``np_random``, the action space, SB3). :class:`~sparse_rl.envs.wrappers.NoisyObservation` (on
    its first seeded ``reset``) and :func:`~sparse_rl.envs.factory.make_env` derive the same value,
    so both routes give the same noise.

    :param seed: an integer >= 0
    :return: the noise seed
    """
    seed = check_seed(seed)
    return int(np.random.SeedSequence(seed, spawn_key=(_DERIVE_SPAWN_KEY,)).generate_state(1, np.uint64)[0])


def random_noise_seed() -> int:
    """A fresh noise seed from OS entropy (a 128-bit integer), for unseeded runs."""
    return int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]


class NoiseStream:
    """Base of the regenerable noise streams: ``stream(k)`` is the noise of observation index ``k``,
    a pure function of ``(noise_seed, k)``; ``stream.many(indices)`` stacks several.

    :param distribution: what to draw
    :param size: number of samples per index
    :param noise_seed: an integer >= 0
    """

    def __init__(self, distribution: NoiseDistribution, size: int, noise_seed: int) -> None:
        self.distribution = distribution
        self.size = check_non_negative_int(size, "size")
        self.noise_seed = check_seed(noise_seed, "noise_seed")

    @staticmethod
    def check_index(index: int) -> int:
        """``index`` if it is an integer in ``[0, 2**64)``, else ``ValueError``."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < 2**64:
            raise ValueError(f"index must be an integer in [0, 2**64), got {index!r}")
        return int(index)

    def __call__(self, index: int) -> np.ndarray:
        """The noise of index ``index`` (an integer in ``[0, 2**64)``): float32, shape ``(size,)``."""
        raise NotImplementedError

    def many(self, indices: Iterable[int], out: np.ndarray | None = None) -> np.ndarray:
        """The noise of several indices, stacked: float32, shape ``(len(indices), size)``, written
        into ``out`` when given (e.g. the noise columns of a batch of observations)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.distribution!r}, size={self.size}, noise_seed={self.noise_seed})"


class IndexedNoise(NoiseStream):
    """A counter-based, regenerable noise stream: ``noise(k)`` is a pure function of
    ``(noise_seed, k)``.

    The noise of index ``k`` is, by definition::

        key = np.random.SeedSequence(noise_seed, spawn_key=(0x454E45,)).generate_state(2, np.uint64)
        rng = np.random.Generator(np.random.Philox(key=key, counter=[0, 0, 0, k]))
        distribution.sample(rng, size)

    Philox is a counter-based generator: its output block ``c`` is a bijective hash of
    ``(key, c)``, so the index sits in the most significant counter word and each index owns
    ``2**192`` blocks of its own; no state is carried from one index to the next, and any index can
    be regenerated in any order, at the cost of one draw. Rather than building a new
    ``Philox`` per index (≈ 9 µs of overhead), one bit generator is rewound by setting its state
    (same numbers, exactly; a test checks this against the definition above).

    :param distribution: what to draw
    :param size: number of samples per index
    :param noise_seed: an integer >= 0
    """

    def __init__(self, distribution: NoiseDistribution, size: int, noise_seed: int) -> None:
        super().__init__(distribution, size, noise_seed)
        self.key = np.random.SeedSequence(self.noise_seed, spawn_key=(_NOISE_SPAWN_KEY,)).generate_state(2, np.uint64)
        self._bit_generator = np.random.Philox(key=self.key)
        self._rng = np.random.Generator(self._bit_generator)

    def __call__(self, index: int) -> np.ndarray:
        """The noise of index ``index`` (an integer in ``[0, 2**64)``): float32, shape ``(size,)``."""
        index = self.check_index(index)
        if self.size == 0:
            return np.zeros(0, dtype=np.float32)
        self._bit_generator.state = {
            "bit_generator": "Philox",
            "state": {"counter": np.array([0, 0, 0, index], dtype=np.uint64), "key": self.key},
            "buffer": np.zeros(4, dtype=np.uint64),
            "buffer_pos": 4,
            "has_uint32": 0,
            "uinteger": 0,
        }
        return self.distribution.sample(self._rng, self.size)

    def many(self, indices: Iterable[int], out: np.ndarray | None = None) -> np.ndarray:
        """The noise of several indices, stacked: float32, shape ``(len(indices), size)``, written
        into ``out`` when given (e.g. the noise columns of a batch of observations)."""
        indices = list(indices)
        out = _check_out(out, len(indices), self.size)
        for row, index in enumerate(indices):
            out[row] = self(int(index))
        return out



#: spawn keys of the table stream's two tables and two offset hashes
_TABLE_SPAWN_KEYS = (0x454E45_10, 0x454E45_11)
_OFFSET_SPAWN_KEY = 0x454E45_12
#: the smallest table length (2**22 values, 16 MiB each); a table is at least 4× the noise size
TABLE_LENGTH = 2**22
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _check_out(out: np.ndarray | None, rows: int, size: int) -> np.ndarray:
    if out is None:
        return np.empty((rows, size), dtype=np.float32)
    if out.shape != (rows, size) or out.dtype != np.float32:
        raise ValueError(f"out must be a float32 array of shape {(rows, size)}, got {out.dtype} {out.shape}")
    return out


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function: a bijective 64-bit mixer (Steele et al., OOPSLA 2014)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class TableNoise(NoiseStream):
    """A fast regenerable noise stream: ``noise(k)`` is a pure function of ``(noise_seed, k)``, made
    from two fixed random tables instead of a fresh draw per index.

    Two tables ``A`` and ``B`` of ``L ≥ max(2**22, 4·size)`` i.i.d. values are drawn once from the
    noise seed; index ``k`` gets two offsets ``a(k), b(k)`` from a counter-based 64-bit hash of
    ``k`` (SplitMix64's mixer keyed by the seed), and its noise is
    ``distribution.combine(A[a : a + size], B[b : b + size])`` (for the normal distribution
    ``(A + B) · std/√2``). Regenerating a batch of indices is then two contiguous copies per
    index, ≈10× faster than drawing the numbers again (:class:`IndexedNoise`), which matters
    when a replay buffer rebuilds 2 × 256 observations of thousands of noise features at every
    gradient step.

    What it gives up against :class:`IndexedNoise`: the values are i.i.d. *given the tables*, not
    fresh. Within one observation every feature uses distinct table entries (independent). Two
    observations share entries only where their windows overlap in *both* tables at the same
    shift, which for a given feature happens with probability ≈ 1/L² per pair of indices; a
    feature's values over time are uncorrelated. The tests check the moments and these
    correlations.

    :param distribution: what to draw (must implement ``table_values`` and ``combine``)
    :param size: number of samples per index
    :param noise_seed: an integer >= 0
    """

    def __init__(self, distribution: NoiseDistribution, size: int, noise_seed: int) -> None:
        super().__init__(distribution, size, noise_seed)
        self.length = max(TABLE_LENGTH, 4 * self.size)
        keys = np.random.SeedSequence(self.noise_seed, spawn_key=(_OFFSET_SPAWN_KEY,)).generate_state(2, np.uint64)
        self._offset_keys = (np.uint64(keys[0]), np.uint64(keys[1]))
        self._tables: tuple[np.ndarray, np.ndarray] | None = None
        self.tables()  # fail now, not at the first draw, if the distribution has no tables

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The two tables (drawn on first use; not pickled, drawn again from the seed)."""
        if self._tables is None:
            tables = []
            for spawn_key in _TABLE_SPAWN_KEYS:
                rng = np.random.Generator(np.random.Philox(np.random.SeedSequence(self.noise_seed,
                                                                                  spawn_key=(spawn_key,))))
                tables.append(self.distribution.table_values(rng, self.length + self.size))
            self._tables = (tables[0], tables[1])
        return self._tables

    def offsets(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The two table offsets of each index (each in ``[0, L)``)."""
        counters = (np.asarray(indices, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
        first = _mix64(counters ^ self._offset_keys[0]) % np.uint64(self.length)
        second = _mix64(counters ^ self._offset_keys[1]) % np.uint64(self.length)
        return first.astype(np.int64), second.astype(np.int64)

    def __call__(self, index: int) -> np.ndarray:
        """The noise of index ``index`` (an integer in ``[0, 2**64)``): float32, shape ``(size,)``."""
        return self.many([self.check_index(index)])[0]

    def many(self, indices: Iterable[int] | np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The noise of several indices, stacked: float32, shape ``(len(indices), size)``, written
        into ``out`` when given (e.g. the noise columns of a batch of observations)."""
        indices = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
        if indices.size and (indices.min() < 0 if indices.dtype.kind == "i" else False):
            raise ValueError("indices must be >= 0")
        windows_a = _check_out(out, indices.size, self.size)
        if self.size == 0:
            return windows_a
        first, second = self.offsets(indices.reshape(-1))
        table_a, table_b = self.tables()
        windows_b = np.empty((first.size, self.size), dtype=table_b.dtype)
        # One contiguous copy per index: faster than fancy indexing into a sliding-window view.
        for row, (start_a, start_b) in enumerate(zip(first.tolist(), second.tolist())):
            windows_a[row] = table_a[start_a : start_a + self.size]
            windows_b[row] = table_b[start_b : start_b + self.size]
        combined = self.distribution.combine(windows_a, windows_b)
        if combined is not windows_a:  # a distribution that does not work in place
            windows_a[...] = combined
        return windows_a

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_tables"] = None  # 2 × 16+ MiB of derived data: drawn again from the seed
        return state



#: the regenerable noise streams, by the name ``NoisyObservation(noise_generator=...)`` takes
NOISE_GENERATORS: dict[str, type[NoiseStream]] = {"table": TableNoise, "philox": IndexedNoise}


def check_noise_generator(generator: str, distribution: NoiseDistribution) -> str:
    """``generator`` if it names a noise generator that can draw ``distribution``.

    :raises ValueError: for an unknown generator (listing the known ones), or ``table`` with a
        distribution that has no table form
    """
    if generator not in NOISE_GENERATORS:
        raise ValueError(_unknown_choice("noise generator", generator, NOISE_GENERATORS))
    if generator == "table":
        try:
            distribution.table_values(np.random.default_rng(0), 0)
        except NotImplementedError as error:
            raise ValueError(str(error)) from error
    return generator


def make_noise_stream(generator: str, distribution: NoiseDistribution, size: int,
                      noise_seed: int) -> NoiseStream:
    """The regenerable noise stream named ``generator`` (``table``: fast, the default; ``philox``:
    a fresh draw per index).

    :raises ValueError: for an unknown generator, or a distribution the generator cannot draw
    """
    return NOISE_GENERATORS[check_noise_generator(generator, distribution)](distribution, size, noise_seed)
