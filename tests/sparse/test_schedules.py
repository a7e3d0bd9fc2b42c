"""Update schedules: when updates happen and the drop fraction at each."""

from __future__ import annotations

import pytest

from sparse_rl.sparse.schedules import UpdateSchedule


def test_updates_every_interval_between_start_and_stop() -> None:
    schedule = UpdateSchedule(interval=10, start=25, stop=60)
    assert [step for step in range(1, 100) if schedule.is_update_step(step)] == [30, 40, 50, 60]
    assert schedule.updates_between(1, 99) == [30, 40, 50, 60]
    assert schedule.updates_between(41, 49) == []
    assert schedule.updates_between(35, 45) == [40]


def test_no_stop_means_forever() -> None:
    schedule = UpdateSchedule(interval=1000)
    assert schedule.is_update_step(10_000_000)
    assert not schedule.is_update_step(0)


def test_cosine_decay_reaches_zero_at_stop() -> None:
    schedule = UpdateSchedule(interval=1, drop_fraction=0.5, stop=100, decay="cosine")
    assert schedule.drop_fraction_at(0) == pytest.approx(0.5)
    assert schedule.drop_fraction_at(50) == pytest.approx(0.25)
    assert schedule.drop_fraction_at(100) == pytest.approx(0.0)
    values = [schedule.drop_fraction_at(step) for step in range(0, 101, 10)]
    assert values == sorted(values, reverse=True)


def test_constant_decay() -> None:
    assert UpdateSchedule(drop_fraction=0.05).drop_fraction_at(123456) == 0.05


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": 0}, "interval must be an integer >= 1, got 0"),
        ({"interval": 2.5}, "interval must be an integer >= 1"),
        ({"drop_fraction": 1.0}, r"drop_fraction must be in \[0, 1\), got 1.0"),
        ({"drop_fraction": -0.1}, r"drop_fraction must be in \[0, 1\)"),
        ({"start": 10, "stop": 5}, "stop must be >= start"),
        ({"decay": "linear"}, "unknown drop-fraction decay 'linear'.*known: constant, cosine"),
        ({"decay": "cosine"}, "needs a stop step"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UpdateSchedule(**kwargs)
