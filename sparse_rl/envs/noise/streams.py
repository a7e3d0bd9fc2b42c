"""The regenerable noise streams of the extremely noisy environments: *how* the noise of the
``k``-th observation is made a pure function of ``(noise_seed, k)`` (``counter``, ``philox``), the
noise seeds, and the generator registry. See :mod:`sparse_rl.envs.noise`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from sparse_rl._util.validation import unknown_choice
from sparse_rl.envs.noise.counter import KINDS as COUNTER_KINDS
from sparse_rl.envs.noise.counter import counter_noise, counter_noise_feature_major
from sparse_rl.envs.noise.distributions import NoiseDistribution, check_non_negative_int, check_seed

#: spawn key that separates the noise streams from every other stream seeded by the same number
#: (gymnasium's ``np_random``, SB3's seeding): ``b"ENE"`` as an integer.
_NOISE_SPAWN_KEY = 0x454E45
#: spawn key used by :func:`derive_noise_seed` (a different one, so that a derived seed and the
#: seed it was derived from never share a key).
_DERIVE_SPAWN_KEY = 0x454E45_01
#: spawn key of :class:`CounterNoise`'s stream key
_COUNTER_SPAWN_KEY = 0x454E45_20


# --------------------------------------------------------------------------------------------------
# seeds and the regenerable stream


#: the roles of a run's envs, each with noise streams of its own (see :func:`derive_noise_seed`)
NOISE_ROLES = {"train": 1, "eval": 2}


def derive_noise_seed(seed: int, role: str | None = None, index: int = 0) -> int:
    """The noise seed derived from an environment seed (a 64-bit integer).

    ``np.random.SeedSequence(seed, spawn_key=(...,))`` with a spawn key of its own: the derived
    noise stream shares nothing with the streams that ``seed`` starts elsewhere (gymnasium's
    ``np_random``, the action space, SB3).

    - Without ``role``: the seed a bare :class:`~sparse_rl.envs.wrappers.NoisyObservation` fixes
      on its first ``reset(seed=seed)``; :func:`~sparse_rl.envs.factory.make_env` given only
      ``seed`` derives the same value.
    - With ``role`` (``train`` or ``eval``) and ``index``: the noise of env ``index`` of that role
      in a run seeded ``seed``. Every (seed, role, index) is its own independent draw, so training
      env 1 of seed ``s`` does not repeat env 0 of seed ``s + 1`` (as it would if the noise were
      derived from the env's reset seed ``s + 1``), and the evaluation env of seed ``s`` does not
      repeat the training env of any seed. The experiment runner uses this form.

    :param seed: an integer >= 0
    :param role: ``None``, ``train`` or ``eval``
    :param index: the env's index within its role, >= 0
    :return: the noise seed
    """
    seed = check_seed(seed)
    if role is None:
        key: tuple[int, ...] = (_DERIVE_SPAWN_KEY,)
    else:
        if role not in NOISE_ROLES:
            raise ValueError(unknown_choice("noise role", role, list(NOISE_ROLES)))
        key = (_DERIVE_SPAWN_KEY, NOISE_ROLES[role], check_non_negative_int(index, "index"))
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1, np.uint64)[0])


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

    def many_feature_major(self, indices: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The noise of several indices written feature-major: ``out[j, i]`` is feature ``j`` of
        ``indices[i]`` (``out``: float32, ``size`` × ``len(indices)``, e.g. the noise rows of a
        feature-major batch). The same numbers as :meth:`many`, transposed."""
        out[...] = self.many(indices).T
        return out

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


def _check_out(out: np.ndarray | None, rows: int, size: int) -> np.ndarray:
    if out is None:
        return np.empty((rows, size), dtype=np.float32)
    if out.shape != (rows, size) or out.dtype != np.float32:
        raise ValueError(f"out must be a float32 array of shape {(rows, size)}, got {out.dtype} {out.shape}")
    return out


class CounterNoise(NoiseStream):
    """The default regenerable noise stream: i.i.d. noise made by a counter-based hash,
    ``noise(k)`` a pure function of ``(noise_seed, k)``.

    Each observation index ``k`` owns a SplitMix64 stream keyed by the noise seed; its words are
    turned into standard normal (Box–Muller) or uniform variates, then mapped by the
    distribution's :meth:`~NoiseDistribution.from_standard` (``std · z`` for ``normal``). The exact
    definition is in :mod:`sparse_rl.envs.noise.counter`. Every number is fresh: nothing is shared
    between observations or features (tested over all pairs and shifts). A native kernel
    regenerates a batch of 512 observations × 1,683 features in about 1 ms
    (``docs/performance.md``); without a C compiler numpy computes the same bits, slower.

    The normal variates are cut at ``|z| ≤ 5.77`` (probability 8·10⁻⁹ beyond) and the uniform
    ones lie on a grid of ``2^-24``: float32 noise features lose nothing that matters.

    :param distribution: what to draw (must have a :attr:`~NoiseDistribution.standard` form)
    :param size: number of samples per index
    :param noise_seed: an integer >= 0
    """

    def __init__(self, distribution: NoiseDistribution, size: int, noise_seed: int) -> None:
        super().__init__(distribution, size, noise_seed)
        if distribution.standard not in COUNTER_KINDS:
            raise ValueError(f"the {distribution.name!r} noise has no standard form for the 'counter' noise "
                             "generator; use noise_generator='philox'")
        seeds = np.random.SeedSequence(self.noise_seed, spawn_key=(_COUNTER_SPAWN_KEY,))
        self.key = int(seeds.generate_state(1, np.uint64)[0])

    def __call__(self, index: int) -> np.ndarray:
        """The noise of index ``index`` (an integer in ``[0, 2**64)``): float32, shape ``(size,)``."""
        return self.many([self.check_index(index)])[0]

    def many(self, indices: Iterable[int] | np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The noise of several indices, stacked: float32, shape ``(len(indices), size)``, written
        into ``out`` when given (rows may be strided, e.g. the noise columns of a batch)."""
        indices = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
        if indices.size and indices.dtype.kind == "i" and indices.min() < 0:
            raise ValueError("indices must be >= 0")
        out = _check_out(out, indices.size, self.size)
        counter_noise(self.key, indices.astype(np.uint64, copy=False), self.size, self.distribution.standard,
                      out=out)
        return self._to_distribution(out)

    def many_feature_major(self, indices: np.ndarray, out: np.ndarray) -> np.ndarray:
        """:meth:`many` written feature-major (``out[j, i]``: feature ``j`` of ``indices[i]``) by the
        native kernel directly, with no row-major batch and no transposing copy (threaded like
        :func:`~sparse_rl.envs.noise.counter.counter_noise`)."""
        indices = np.asarray(indices)
        if indices.size and indices.dtype.kind == "i" and indices.min() < 0:
            raise ValueError("indices must be >= 0")
        counter_noise_feature_major(self.key, indices.astype(np.uint64, copy=False), self.size,
                                    self.distribution.standard, out)
        return self._to_distribution(out)

    def _to_distribution(self, out: np.ndarray) -> np.ndarray:
        """Map the standard variates in ``out`` to the distribution, the result in ``out`` whether or
        not the distribution's :meth:`~NoiseDistribution.from_standard` works in place: a replay
        buffer that hands ``out`` (its batch's noise columns) reads exactly the agent's noise."""
        mapped = self.distribution.from_standard(out)
        if mapped is not out:
            out[...] = mapped
        return out


#: the regenerable noise streams, by the name ``NoisyObservation(noise_generator=...)`` takes
#: (``auto``, the default, picks ``counter`` where the distribution allows it, else ``philox``)
NOISE_GENERATORS: dict[str, type[NoiseStream]] = {"counter": CounterNoise, "philox": IndexedNoise}
AUTO_GENERATOR = "auto"
#: generators that older versions of sparse_rl had, with why they are gone
REMOVED_GENERATORS = {"table": "its observations were correlated (windows cut from two fixed tables)"}


def check_noise_generator(generator: str, distribution: NoiseDistribution) -> str:
    """The noise generator that ``generator`` names for ``distribution``: ``auto`` resolves to
    ``counter`` (i.i.d., fast) when the distribution has a standard form, else ``philox``.

    :raises ValueError: for an unknown or removed generator (listing the known ones), or ``counter``
        with a distribution that has no standard form
    """
    if generator in REMOVED_GENERATORS:
        raise ValueError(f"the {generator!r} noise generator was removed ({REMOVED_GENERATORS[generator]}): "
                         "this config or checkpoint was made by an older version of sparse_rl, and its noise "
                         "cannot be regenerated; use noise_generator: auto (counter-based i.i.d. noise) and "
                         "train it again")
    if generator == AUTO_GENERATOR:
        return "counter" if distribution.standard in COUNTER_KINDS else "philox"
    if generator not in NOISE_GENERATORS:
        raise ValueError(unknown_choice("noise generator", generator, [AUTO_GENERATOR, *NOISE_GENERATORS]))
    if generator == "counter" and distribution.standard not in COUNTER_KINDS:
        raise ValueError(f"the {distribution.name!r} noise has no standard form for the 'counter' noise "
                         "generator; use noise_generator='philox'")
    return generator


def make_noise_stream(generator: str, distribution: NoiseDistribution, size: int,
                      noise_seed: int) -> NoiseStream:
    """The regenerable noise stream named ``generator`` (``auto``: ``counter`` where the
    distribution allows, else ``philox``).

    :raises ValueError: for an unknown generator, or a distribution the generator cannot draw
    """
    return NOISE_GENERATORS[check_noise_generator(generator, distribution)](distribution, size, noise_seed)
