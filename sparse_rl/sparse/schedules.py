"""WHEN the topology changes and by how much.

An :class:`UpdateSchedule` fires every ``interval`` steps from ``start`` up to and including
``stop`` (no stop: forever), and gives the drop fraction ζ at each update: ``constant`` (SET,
Mocanu et al. 2018; Sokar et al. 2022; Grooten et al. 2023) or ``cosine``, decaying from ζ to 0 at
``stop`` (RigL, Evci et al. 2020; Graesser et al. 2022).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sparse_rl._util.validation import check_choice, check_drop_fraction, check_non_negative_int, check_positive_int

DECAYS = ("constant", "cosine")


@dataclass(frozen=True)
class UpdateSchedule:
    """When to update the topology and which fraction of active connections to drop.

    :param interval: steps between updates (an update at every multiple of ``interval``)
    :param drop_fraction: ζ, the fraction of each layer's active connections replaced per update
    :param start: no update before this step
    :param stop: no update after this step (``None``: never stop)
    :param decay: ``constant`` or ``cosine`` (needs ``stop``: ζ_t = ζ/2 · (1 + cos(π · t / stop)))
    """

    interval: int = 1000
    drop_fraction: float = 0.3
    start: int = 0
    stop: int | None = None
    decay: str = "constant"

    def __post_init__(self) -> None:
        check_positive_int(self.interval, "interval")
        check_drop_fraction(self.drop_fraction)
        check_non_negative_int(self.start, "start")
        if self.stop is not None:
            check_non_negative_int(self.stop, "stop")
            if self.stop < self.start:
                raise ValueError(f"stop must be >= start ({self.start}), got {self.stop}")
        check_choice(self.decay, DECAYS, "drop-fraction decay")
        if self.decay == "cosine" and self.stop is None:
            raise ValueError("the 'cosine' decay needs a stop step, where the drop fraction reaches 0")

    def is_update_step(self, step: int) -> bool:
        """Whether an update happens at ``step`` (counting from 1)."""
        if step <= 0 or step % self.interval != 0 or step < self.start:
            return False
        return self.stop is None or step <= self.stop

    def updates_between(self, first: int, last: int) -> list[int]:
        """The update steps in [first, last], in order."""
        begin = max(first, self.start, 1)
        end = last if self.stop is None else min(last, self.stop)
        if end < begin:
            return []
        first_multiple = -(-begin // self.interval) * self.interval
        return list(range(first_multiple, end + 1, self.interval))

    def drop_fraction_at(self, step: int) -> float:
        """ζ at ``step``."""
        if self.decay == "constant":
            return self.drop_fraction
        assert self.stop is not None
        progress = min(1.0, max(0.0, step / self.stop)) if self.stop > 0 else 1.0
        return self.drop_fraction * 0.5 * (1.0 + math.cos(math.pi * progress))
