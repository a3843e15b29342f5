"""The heap set for a long-running server: start-up's objects frozen, young objects collected less often, and
the memory of freed megabyte buffers kept for the next request instead of handed back to the kernel.

A started server holds a large, permanent object graph (routes and their schemas, Pydantic models, SQLAlchemy
metadata, the runtime). CPython's cyclic collector walks all of it on every full collection; under load that
was ~10 % of a busy process's CPU (perf on bench/tasks.py). ``gc.freeze`` moves what is alive once the server is
up to a permanent generation that collections skip. Most of a request's objects die by reference counting, so
the youngest generation is collected every 30,000 net allocations instead of CPython's 700, and the older
generations, which follow at the same ratios, as much less often. Garbage in cycles waits longer, bounded by
that count (peak memory in the image benchmark grew by ~14 MiB at 64 requests at once).

An image request allocates and frees several buffers of 1.5-2.1 MB (the answer, its base64, the image, the
reply). glibc hands the top of its heap back to the kernel once more than a threshold is free there, and its
threshold follows what it saw, so depending on the order of those frees it gave the memory back and faulted it
in again on every request: ~1,200 page faults and ~1.6 ms of kernel time per 1024² request (``brk`` four times
per request under strace). With the thresholds pinned (buffers under 32 MiB from the heap, up to 64 MiB of
free heap kept) the process keeps what it uses instead; only glibc has these settings (``mallopt``).

Only processes that serve call this (``imagegate serve``, ``imagegate worker``, ``imagegate.asgi``): freezing
inside a test run would keep each test's leftovers alive.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import platform

log = logging.getLogger(__name__)

#: Net allocations of tracked objects between collections of the youngest generation (CPython's default: 700).
YOUNG_GENERATION_THRESHOLD = 30_000


#: glibc's ``mallopt`` parameters and the values set: blocks smaller than this come from the heap, not ``mmap``
#: (32 MiB is the most glibc takes); free memory at the heap's top up to this stays mapped (one image request's
#: buffers are ~8 MB).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 64 << 20


def settle_for_serving() -> None:
    """Collect start-up's garbage, exempt everything still alive from later collections, space them out; keep
    freed heap memory mapped."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)
    keep_freed_memory()


def keep_freed_memory() -> bool:
    """Pin glibc's mmap and trim thresholds (see above); False where the C library is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    pinned = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1)
    pinned = bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1) and pinned
    if not pinned:
        log.warning("could not set glibc's malloc thresholds; large buffers may be faulted in per request")
    return pinned
