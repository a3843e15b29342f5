"""A circuit breaker per deployment: stop sending work to an upstream that keeps failing, then probe it.

closed ──(``failure_threshold`` failures in a row)──▶ open ──(cooldown over)──▶ half-open
half-open ──(the one probe succeeds)──▶ closed;  half-open ──(the probe fails)──▶ open, cooldown doubled

Only one probe runs while half-open, so a recovering upstream is not flooded the moment it answers again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
        max_cooldown_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or cooldown_s <= 0 or max_cooldown_s < cooldown_s:
            raise ValueError("breaker needs failure_threshold >= 1 and 0 < cooldown_s <= max_cooldown_s")
        self.failure_threshold = failure_threshold
        self.base_cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self._clock = clock
        self._failures = 0  # in a row
        self._opened_at: float | None = None
        self._cooldown_s = cooldown_s
        self._probing = False
        self.opened_count = 0  # how often it tripped, for the stats page

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at < self._cooldown_s:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def available(self) -> bool:
        """Whether a call could be let through now (without claiming the half-open probe)."""
        state = self.state
        return state is BreakerState.CLOSED or (state is BreakerState.HALF_OPEN and not self._probing)

    def try_acquire(self) -> bool:
        """Claim the right to call: always when closed, once (the probe) when half-open, never when open."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def retry_after_s(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when it would now)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._cooldown_s - (self._clock() - self._opened_at))

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._cooldown_s = self.base_cooldown_s
        self._probing = False

    def record_failure(self) -> None:
        if self._probing:  # the probe failed: back to open, waiting longer this time
            self._probing = False
            self._cooldown_s = min(self.max_cooldown_s, self._cooldown_s * 2)
            self._trip()
            return
        self._failures += 1
        if self._opened_at is None and self._failures >= self.failure_threshold:
            self._trip()

    @property
    def cooldown_s(self) -> float:
        """The pause the breaker takes (or would take) when it opens now."""
        return self._cooldown_s

    def adopt_open(self, remaining_s: float, cooldown_s: float) -> None:
        """Another process opened this deployment's breaker: be open here too, half-opening when it does there."""
        if self._opened_at is not None or remaining_s <= 0:
            return  # already open or probing here: our own timeline stands
        self._cooldown_s = min(self.max_cooldown_s, max(self.base_cooldown_s, cooldown_s))
        self._opened_at = self._clock() - max(0.0, self._cooldown_s - remaining_s)

    def open_for_fleet(self) -> bool:
        """The fleet's failures in a row reached the threshold, though this process saw fewer: open now (when
        closed); True if it opened."""
        if self._opened_at is not None:
            return False
        self._trip()
        return True

    def adopt_closed(self) -> None:
        """Another process's probe succeeded: the upstream answers again, close here too (unless probing)."""
        if self._opened_at is not None and not self._probing:
            self.record_success()

    def release(self) -> None:
        """A call ended saying nothing about the upstream's health (cancelled, or the caller's mistake)."""
        self._probing = False

    def _trip(self) -> None:
        self._opened_at = self._clock()
        self.opened_count += 1
