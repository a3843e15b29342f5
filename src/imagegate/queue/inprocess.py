"""In-process job delivery and job-change notification, for the one-box default.

The queue carries job ids only; the database stays the source of truth, so a lost id (a restart) is found
again by the sweeper. Events wake the requests waiting on a job; waiters also re-check the database
periodically, so a missed event only costs latency. Ids come out most urgent first (sync, then async, then
batch), in order of arrival within a priority, so a big batch never queues ahead of an interactive request;
a worker that takes no batch work (``dequeue(batch=False)``) is never handed any.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from urllib.parse import urlsplit

from imagegate.core.jobs import JobPriority


class InProcessQueue:
    def __init__(self) -> None:
        self._urgent: list[tuple[int, int, str]] = []  # heaps of (priority, arrival, id)
        self._batch: list[tuple[int, int, str]] = []
        self._pending: set[str] = set()
        self._arrivals = itertools.count()
        # Idle workers, longest idle first: those that take any work, and those kept for interactive and async
        # work. A new id wakes one worker that may run it, not all of them: a process holding thousands of slow
        # jobs has thousands of workers, and waking each per submission made accepting a task O(workers).
        self._idle_any: deque[asyncio.Future[None]] = deque()
        self._idle_urgent_only: deque[asyncio.Future[None]] = deque()

    async def enqueue(self, job_id: str, priority: int = 1) -> None:
        if job_id in self._pending:  # the sweeper may re-deliver what is already waiting
            return
        self._pending.add(job_id)
        is_batch = priority >= JobPriority.BATCH
        heapq.heappush(self._batch if is_batch else self._urgent, (priority, next(self._arrivals), job_id))
        self._wake_one(is_batch)

    async def dequeue(self, *, batch: bool = True) -> str:
        """The most urgent id; with ``batch=False`` only interactive and async ones."""
        while not (self._urgent or (batch and self._batch)):
            woken = asyncio.get_running_loop().create_future()
            (self._idle_any if batch else self._idle_urgent_only).append(woken)
            try:
                await woken
            except asyncio.CancelledError:
                if woken.done() and not woken.cancelled():  # woken for an id, then stopped: pass the id on
                    self._wake_for_queued()
                raise
            # Woken: the id may already be gone to a worker that came back from a job meanwhile; look again.
        _, _, job_id = heapq.heappop(self._urgent if self._urgent else self._batch)
        self._pending.discard(job_id)
        return job_id

    def _wake_one(self, for_batch: bool) -> None:
        """Wake the longest-idle worker that may run such a job; a worker kept from batch work goes first for
        urgent work, so those that take batch work stay free for it."""
        lines = (self._idle_any,) if for_batch else (self._idle_urgent_only, self._idle_any)
        for line in lines:
            while line:
                woken = line.popleft()
                if not woken.done():  # a cancelled wait is left in line and skipped here
                    woken.set_result(None)
                    return

    def _wake_for_queued(self) -> None:
        if self._urgent:
            self._wake_one(for_batch=False)
        elif self._batch:
            self._wake_one(for_batch=True)

    def qsize(self) -> int:
        return len(self._urgent) + len(self._batch)

    async def aclose(self) -> None:
        self._pending.clear()


class Subscription:
    def __init__(self, events: InProcessJobEvents, job_id: str) -> None:
        self._events = events
        self._job_id = job_id
        self.changed = asyncio.Event()

    async def wait(self, within_s: float) -> bool:
        try:
            async with asyncio.timeout(within_s):  # not wait_for: on 3.11 it wraps the wait in a task of its own
                await self.changed.wait()
        except TimeoutError:
            return False
        self.changed.clear()
        return True

    def close(self) -> None:
        self._events._unsubscribe(self._job_id, self)


class InProcessJobEvents:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}

    def publish(self, job_id: str) -> None:
        for sub in self._subscribers.get(job_id, ()):
            sub.changed.set()

    def subscribed(self) -> list[str]:
        """The ids somebody in this process waits on now."""
        return list(self._subscribers)

    def subscribe(self, job_id: str) -> Subscription:
        sub = Subscription(self, job_id)
        self._subscribers.setdefault(job_id, set()).add(sub)
        return sub

    def _unsubscribe(self, job_id: str, sub: Subscription) -> None:
        subs = self._subscribers.get(job_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[job_id]


def open_queue(url: str) -> tuple[InProcessQueue, InProcessJobEvents]:
    """The in-process queue and events (``inprocess://``); ``database`` is opened by ``queue.database``."""
    scheme = urlsplit(url).scheme
    if scheme in ("inprocess", "memory", ""):
        return InProcessQueue(), InProcessJobEvents()
    raise ValueError(f"unsupported in-process queue URL {url!r}")
