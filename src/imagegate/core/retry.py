"""One backoff rule and one retry budget per job, shared by the HTTP providers and the router.

Retries used to stack: an HTTP provider retried a 503 twice, the router retried the deployment, and then failed
over, so one job could make (1 + 2) x (1 + retries) calls to one upstream before moving on. Now every retry of a
job, at whatever level, is drawn from one ``RetryBudget`` that the router opens around the job's call; when it is
spent, a failure goes straight to failover (a different upstream, which is not a retry). Code that runs without
a budget (a provider used on its own, a test) keeps only its own ``max_retries``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry: exponential backoff, or the upstream's own delay when it gave one."""

    max_retries: int = 2
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    jitter: float = 0.2  # up to this fraction is added to a backoff, so many workers do not retry in step

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_delay_s < 0 or self.max_delay_s < 0 or self.jitter < 0:
            raise ValueError("retry policy values must not be negative")

    def delay_s(
        self, retry: int, *, server_delay_s: float | None = None, rand: Callable[[], float] = random.random
    ) -> float | None:
        """Seconds to wait before retry number ``retry`` (1-based), or None when no retry should be made.

        A delay the upstream asked for is honoured exactly; if it is longer than ``max_delay_s`` waiting less
        would only be refused again, so the caller gets the error (with the delay) instead. A retry also needs
        the job's budget (``RetryBudget``), when one is open, to have one left: it is taken here.
        """
        if retry > self.max_retries:
            return None
        if server_delay_s is not None:
            delay = max(0.0, server_delay_s) if server_delay_s <= self.max_delay_s else None
        else:
            backoff = min(self.max_delay_s, self.base_delay_s * 2.0 ** (retry - 1))
            delay = min(self.max_delay_s, backoff * (1 + self.jitter * rand()))
        if delay is None or not take_retry():
            return None
        return delay


class RetryBudget:
    """The retries one job may still make, all levels together."""

    def __init__(self, retries: int) -> None:
        if retries < 0:
            raise ValueError("a retry budget must not be negative")
        self.left = retries

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


_budget: ContextVar[RetryBudget | None] = ContextVar("imagegate_retry_budget", default=None)


def take_retry() -> bool:
    """Whether one more retry may be made now (and count it); True when no budget is open."""
    budget = _budget.get()
    return budget is None or budget.take()


@contextmanager
def retry_budget(retries: int) -> Iterator[RetryBudget]:
    """Open a budget of ``retries`` for the code inside (and the tasks it starts, which copy the context)."""
    budget = RetryBudget(retries)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)
