"""The attempt trail of one image call: every deployment the router tried, what came of it, how long it took
and why the router moved on. The executor opens a log around each call; the router records into it and needs to
know nothing about jobs (like ``core.progress``). The trail is stored with the slot's result and shown on tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Attempt:
    deployment: str
    outcome: str  # success | refusal | empty | error | rejected | skipped
    latency_ms: float | None = None
    reason: str | None = None  # the error code and message, the finish reason, or why it was skipped


_log: ContextVar[list[Attempt] | None] = ContextVar("imagegate_attempt_log", default=None)


def record_attempt(attempt: Attempt) -> None:
    """Add ``attempt`` to the trail of the call being run; a no-op when nobody keeps one."""
    trail = _log.get()
    if trail is not None:
        trail.append(attempt)


@contextmanager
def attempt_log() -> Iterator[list[Attempt]]:
    """Collect the attempts recorded inside this block (and tasks it starts) into the list it yields."""
    trail: list[Attempt] = []
    token = _log.set(trail)
    try:
        yield trail
    finally:
        _log.reset(token)
