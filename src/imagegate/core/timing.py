"""Time to first byte of the provider call being run, marked by whatever transport the provider uses.

The router installs a marker around each provider call; an HTTP provider's client calls ``mark_first_byte``
when the upstream's response headers arrive. Providers with no network (the emulator) never mark, and the
call's time to first byte stays unknown rather than made up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_marker: ContextVar[Callable[[], None] | None] = ContextVar("imagegate_first_byte_marker", default=None)


def mark_first_byte() -> None:
    """The upstream has started to answer; only the first mark of a call counts."""
    marker = _marker.get()
    if marker is not None:
        marker()


@contextmanager
def first_byte_marker(callback: Callable[[], None]) -> Iterator[None]:
    token = _marker.set(callback)
    try:
        yield
    finally:
        _marker.reset(token)
