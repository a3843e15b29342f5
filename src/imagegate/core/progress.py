"""Progress of the job slot being run, told by providers that know it (a local model's denoising steps).

The executor installs a reporter around each provider call; a provider calls ``report_progress`` and needs to
know nothing about jobs. Reporters are called on the event loop's thread, so a provider that learns of progress
elsewhere (a worker process, a thread) hands it to the loop first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: ``(done, total)``: steps finished of the steps this call will take.
ProgressCallback = Callable[[int, int], None]

_reporter: ContextVar[ProgressCallback | None] = ContextVar("imagegate_progress_reporter", default=None)


def report_progress(done: int, total: int) -> None:
    """Tell whoever runs this call that ``done`` of ``total`` steps are finished; a no-op when nobody listens."""
    reporter = _reporter.get()
    if reporter is not None and total > 0:
        reporter(max(0, min(done, total)), total)


@contextmanager
def progress_reporter(callback: ProgressCallback) -> Iterator[None]:
    """Route ``report_progress`` calls made inside this block (and tasks it starts) to ``callback``."""
    token = _reporter.set(callback)
    try:
        yield
    finally:
        _reporter.reset(token)
