"""The garbage collector set for a long-running server: start-up's objects frozen, young objects collected less often.

A started server holds a large, permanent object graph (routes and their schemas, Pydantic models, SQLAlchemy
metadata, the runtime). CPython's cyclic collector walks all of it on every full collection; under load that
was ~10 % of a busy process's CPU (perf on bench/tasks.py). ``gc.freeze`` moves what is alive once the server is
up to a permanent generation that collections skip. Most of a request's objects die by reference counting, so
the youngest generation is collected every 30,000 net allocations instead of CPython's 700, and the older
generations, which follow at the same ratios, as much less often. Garbage in cycles waits longer, bounded by
that count (peak memory in the image benchmark grew by ~14 MiB at 64 requests at once).

Only processes that serve call this (``imagegate serve``, ``imagegate worker``, ``imagegate.asgi``): freezing
inside a test run would keep each test's leftovers alive.
"""

from __future__ import annotations

import gc

#: Net allocations of tracked objects between collections of the youngest generation (CPython's default: 700).
YOUNG_GENERATION_THRESHOLD = 30_000


def settle_for_serving() -> None:
    """Collect start-up's garbage, exempt everything still alive from later collections, space them out."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)
