"""Where the router's live state may be shared between processes: concurrency slots and a health observer.

The router keeps its breakers and rolling stats in the process (reads stay synchronous and free); what must hold
across processes goes through these two seams. ``LocalSlots`` is the embedded default: one process, one asyncio
semaphore per deployment. ``imagegate.sharedstate`` implements both over Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from imagegate.routing.breaker import BreakerState, CircuitBreaker
from imagegate.routing.stats import Outcome


class ConcurrencySlots(Protocol):
    def hold(self, name: str, limit: int) -> AbstractAsyncContextManager[None]:
        """Wait for one of deployment ``name``'s ``limit`` slots and hold it for the block."""
        ...

    def in_use(self, name: str) -> int:
        """The best known count of ``name``'s slots taken now (every process's, where they are shared)."""
        ...


class HealthObserver(Protocol):
    def call_recorded(self, name: str, outcome: Outcome, latency_s: float, ttfb_s: float | None) -> None: ...

    def breaker_moved(self, name: str, breaker: CircuitBreaker, was: BreakerState) -> None: ...


class LocalSlots:
    """One process's slots: a semaphore per deployment, made on first use."""

    def __init__(self) -> None:
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._held: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, name: str, limit: int) -> AsyncIterator[None]:
        gate = self._gates.setdefault(name, asyncio.Semaphore(limit))
        async with gate:
            self._held[name] = self._held.get(name, 0) + 1
            try:
                yield
            finally:
                self._held[name] -= 1

    def in_use(self, name: str) -> int:
        return self._held.get(name, 0)
