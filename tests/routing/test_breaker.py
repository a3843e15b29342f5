"""The circuit breaker's whole cycle on a fake clock: closed, open, half-open with one probe, closed again."""

from __future__ import annotations

import pytest

from imagegate.routing.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **kwargs: float) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, cooldown_s=10, max_cooldown_s=40, clock=clock, **kwargs)  # type: ignore[arg-type]


def test_opens_after_threshold_failures_in_a_row_only() -> None:
    b = breaker(clock := Clock())
    b.record_failure()
    b.record_failure()
    b.record_success()  # the run is broken: counting starts again
    b.record_failure()
    b.record_failure()
    assert b.state is BreakerState.CLOSED and b.try_acquire()
    b.record_failure()
    assert b.state is BreakerState.OPEN and not b.available() and not b.try_acquire()
    assert b.retry_after_s() == 10 and b.opened_count == 1
    clock.now += 4
    assert b.retry_after_s() == 6


def test_half_open_lets_exactly_one_probe_through_and_success_closes() -> None:
    b = breaker(clock := Clock())
    for _ in range(3):
        b.record_failure()
    clock.now += 10
    assert b.state is BreakerState.HALF_OPEN and b.available()
    assert b.try_acquire()
    assert not b.available() and not b.try_acquire()  # the second caller waits for the probe's verdict
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.try_acquire() and b.retry_after_s() == 0


def test_a_failed_probe_reopens_with_a_doubled_cooldown_up_to_the_cap() -> None:
    b = breaker(clock := Clock())
    for _ in range(3):
        b.record_failure()
    waits = []
    for _ in range(4):
        clock.now += b.retry_after_s()
        assert b.try_acquire()
        b.record_failure()
        assert b.state is BreakerState.OPEN
        waits.append(b.retry_after_s())
    assert waits == [20, 40, 40, 40] and b.opened_count == 5
    clock.now += 40
    assert b.try_acquire()
    b.record_success()
    for _ in range(3):
        b.record_failure()
    assert b.retry_after_s() == 10  # success resets the cooldown


def test_a_probe_that_proves_nothing_frees_the_probe_slot() -> None:
    b = breaker(clock := Clock())
    for _ in range(3):
        b.record_failure()
    clock.now += 10
    assert b.try_acquire()
    b.release()  # e.g. the caller's request was invalid, or it was cancelled
    assert b.state is BreakerState.HALF_OPEN and b.try_acquire()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError, match="cooldown"):
        CircuitBreaker(cooldown_s=10, max_cooldown_s=5)
