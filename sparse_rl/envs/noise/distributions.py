"""Noise distributions of the extremely noisy environments (ENE): *what* noise is drawn, one small
class per kind in a registry (``normal``, ``uniform``…), and the argument checks they share.

A new kind is one class (see :mod:`sparse_rl.envs.noise` for the example and the generators that
draw it). Grooten et al. (AAMAS 2023) use i.i.d. N(0, 1) noise.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

import numpy as np

from sparse_rl._util.registry import Registry, parameter_names

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
    #: the standard variate this kind is an affine map of, for the ``counter`` generator
    #: (``"normal"``: N(0, 1), ``"uniform"``: U[0, 1)), or ``None`` (then only ``philox`` draws it)
    standard: ClassVar[str | None] = None

    def from_standard(self, values: np.ndarray) -> np.ndarray:
        """Map standard variates (of :attr:`standard`, float32) to this distribution, in place
        where possible; returns the result."""
        raise NotImplementedError(f"the {self.name!r} noise has no standard form; use noise_generator='philox'")

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

    @property
    def params(self) -> dict[str, float]:
        """The constructor parameters, by name (what :func:`make_noise_distribution` takes)."""
        return {key: getattr(self, key) for key in parameter_names(type(self))}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.params == other.params  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.params.items()))))


NOISE_DISTRIBUTIONS: Registry[type[NoiseDistribution]] = Registry("noise distribution")
_D = TypeVar("_D", bound=type[NoiseDistribution])


def register_noise_distribution(cls: _D) -> _D:
    """Class decorator: make ``cls`` available to :func:`make_noise_distribution` under ``cls.name``."""
    return NOISE_DISTRIBUTIONS.register(cls)


@register_noise_distribution
class NormalNoise(NoiseDistribution):
    """I.i.d. ``N(0, std²)`` noise, the noise of the ENE in Grooten et al. (AAMAS 2023).

    :param std: standard deviation, a finite number > 0
    """

    name = "normal"
    standard = "normal"

    def __init__(self, std: float = 1.0) -> None:
        self.std = check_positive_float(std, "std")

    def from_standard(self, values: np.ndarray) -> np.ndarray:
        """``std · z``, in place."""
        if self.std != 1.0:
            values *= np.float32(self.std)
        return values

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` float32 samples of ``N(0, std²)`` (float32 ziggurat, then scaled)."""
        samples = rng.standard_normal(size, dtype=np.float32)
        if self.std != 1.0:
            samples *= np.float32(self.std)
        return samples


@register_noise_distribution
class UniformNoise(NoiseDistribution):
    """I.i.d. uniform noise on ``[low, high)`` (closed after rounding to float32).

    :param low: lower bound, a finite number
    :param high: upper bound, a finite number > ``low``
    """

    name = "uniform"
    standard = "uniform"

    def __init__(self, low: float = -1.0, high: float = 1.0) -> None:
        self.low = check_finite_float(low, "low")
        self.high = check_finite_float(high, "high")
        if not self.low < self.high:
            raise ValueError(f"low must be < high, got low={low!r}, high={high!r}")

    def from_standard(self, values: np.ndarray) -> np.ndarray:
        """``low + (high − low) · u``, in place, clipped to the float32 bounds after rounding."""
        values *= np.float32(self.high - self.low)
        values += np.float32(self.low)
        return np.clip(values, np.float32(self.low), np.float32(self.high), out=values)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` float32 samples of ``U(low, high)`` (drawn in float64, then rounded, so that
        they stay inside the float32 bounds)."""
        return (self.low + (self.high - self.low) * rng.random(size)).astype(np.float32)

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
    return NOISE_DISTRIBUTIONS.build(
        name, "unknown parameter {key} for noise distribution {name!r}{hint}; accepted: {accepted}", **params
    )
