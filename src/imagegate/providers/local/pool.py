"""The API process's side of the worker processes: one per device, started on first use, kept warm.

Each ``WorkerHandle`` owns a spawned process and a duplex pipe; a reader thread hands the worker's messages to
the event loop of the request they belong to. A worker holds at most its batch slots plus ``queue_size``
requests; beyond that ``reserve`` raises ``UpstreamRateLimited`` with the time one batch takes, so callers get
a 429 with ``Retry-After`` and are charged nothing. A worker that dies fails its requests with
``UpstreamUnavailable`` and is started again by the next request; a model that fails to load is not tried
again for ``restart_backoff_s``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import logging
import math
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import AsyncGenerator
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection

from imagegate.errors import UpstreamRateLimited, UpstreamUnavailable
from imagegate.providers.local.messages import (
    Cancel,
    Cancelled,
    Done,
    Failed,
    LoadFailed,
    Ready,
    Request,
    Step,
    Stop,
    WorkerConfig,
)

log = logging.getLogger(__name__)

Reply = Step | Done | Failed | Cancelled
_ids = itertools.count(1)


def next_request_id() -> int:
    """An id unique in this process, so a request is never confused with another on any worker."""
    return next(_ids)


@dataclass
class PoolStats:
    """What the workers of one model did, for tests, benchmarks and operators."""

    images: int = 0
    batched: int = 0  # images made in a call together with others
    cancelled: int = 0
    cancelled_steps_run: int = 0  # denoising steps run by requests that were then cancelled
    cancelled_steps_asked: int = 0
    failures: int = 0
    starts: int = 0


@dataclass
class _Waiter:
    loop: asyncio.AbstractEventLoop
    replies: asyncio.Queue[Reply | BaseException]


@dataclass
class _Session:
    """One life of the worker process: its pipe, its start, and the requests sent to it."""

    process: subprocess.Popen[bytes]
    conn: Connection
    ready: Future[Ready]
    waiters: dict[int, _Waiter]
    send_lock: threading.Lock


class WorkerHandle:
    """One worker process (re)started on demand, and the requests it holds."""

    def __init__(self, config: WorkerConfig, *, queue_size: int, start_timeout_s: float, backoff_s: float) -> None:
        self.config = config
        self._queue_size = queue_size
        self._start_timeout_s = start_timeout_s
        self._backoff_s = backoff_s
        self._lock = threading.Lock()  # guards the fields below and every session's waiters
        self._session: _Session | None = None
        self._failed_at: float | None = None
        self._reserved = 0
        self.stats = PoolStats()
        self.batch_seconds: float | None = None

    @property
    def load(self) -> int:
        with self._lock:
            return self._reserved + (len(self._session.waiters) if self._session else 0)

    @property
    def ready_now(self) -> Ready | None:
        """The loaded model's description if the worker is up, without waiting."""
        session = self._session
        if session is None or not session.ready.done() or session.ready.exception() is not None:
            return None
        return session.ready.result()

    @property
    def pid(self) -> int | None:
        session = self._session
        return session.process.pid if session is not None and session.process.poll() is None else None

    def reserve(self, batch_slots: int) -> bool:
        """Hold a place for one request; False when the worker already holds its batch slots plus its queue."""
        with self._lock:
            held = self._reserved + (len(self._session.waiters) if self._session else 0)
            if held >= batch_slots + self._queue_size:
                return False
            self._reserved += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._reserved -= 1

    async def ready(self) -> Ready:
        """The loaded model's description, starting the worker if needed; ``UpstreamUnavailable`` if it fails."""
        session = self._ensure_started()
        try:
            async with asyncio.timeout(self._start_timeout_s):
                # shielded: one caller giving up must not cancel the start others wait for too
                return await asyncio.shield(asyncio.wrap_future(session.ready))
        except TimeoutError:
            await asyncio.to_thread(self.stop, kill=True)
            raise UpstreamUnavailable(
                f"the local model {self.config.source} did not load within {self._start_timeout_s:.0f}s"
            ) from None
        except _StartFailed as exc:
            raise UpstreamUnavailable(str(exc)) from None

    async def run(self, request: Request) -> AsyncGenerator[Reply, None]:
        """Send ``request`` (its place already reserved) and yield the worker's replies until the last one.

        If the caller stops early (cancelled), the worker is told to stop the request's denoising loop; the
        place stays taken until the worker confirms, so the queue bound counts what the GPU really holds.
        """
        waiter = _Waiter(asyncio.get_running_loop(), asyncio.Queue())
        with self._lock:
            self._reserved -= 1
            session = self._session
            if session is not None:
                session.waiters[request.id] = waiter
        if session is None:
            raise UpstreamUnavailable(f"the local model worker for {self.config.source} is not running")
        finished = False
        try:
            _send(session, request, self.config.source)
            while True:
                reply = await waiter.replies.get()
                if isinstance(reply, BaseException):
                    finished = True
                    raise reply
                finished = not isinstance(reply, Step)
                yield reply
                if finished:
                    return
        finally:
            if not finished:
                with self._lock:
                    pending = request.id in session.waiters
                if pending:  # if the worker is gone, its reader thread clears the request
                    with contextlib.suppress(UpstreamUnavailable):
                        _send(session, Cancel(request.id), self.config.source)

    def _ensure_started(self) -> _Session:
        with self._lock:
            session = self._session
            if session is not None and (session.process.poll() is None or not session.ready.done()):
                return session
            recently_failed = self._failed_at is not None and time.monotonic() - self._failed_at < self._backoff_s
            if session is not None and recently_failed:
                return session  # the last start failed recently: `ready` answers with that failure
            process, parent = _spawn(self.config)
            session = _Session(process, parent, Future(), {}, threading.Lock())
            self._session = session
            self._failed_at = None
            self.stats.starts += 1
        threading.Thread(target=self._read, args=(session,), name="imagegate-diffusers-reader", daemon=True).start()
        return session

    def _read(self, session: _Session) -> None:
        while True:
            try:
                message = session.conn.recv()
            except (EOFError, OSError):
                break
            if isinstance(message, Ready):
                log.info("local model %s ready on %s (%.1fs)", self.config.source, message.device, message.load_s)
                session.ready.set_result(message)
            elif isinstance(message, LoadFailed):
                self._fail_start(session, message.message)
            else:
                self._dispatch(session, message)
        code = _wait(session.process, 5)
        why = f"the local model worker for {self.config.source} on {self.config.device} stopped (exit code {code})"
        self._fail_start(session, why)
        with self._lock:
            waiters = list(session.waiters.values())
            session.waiters.clear()
            self.stats.failures += len(waiters)
        for waiter in waiters:
            _deliver(waiter, UpstreamUnavailable(why + "; it is started again for the next request"))
        session.conn.close()

    def _fail_start(self, session: _Session, message: str) -> None:
        if session.ready.done():
            return
        with self._lock:
            self._failed_at = time.monotonic()
        log.error("%s", message)
        session.ready.set_exception(_StartFailed(message))

    def _dispatch(self, session: _Session, message: Reply) -> None:
        if isinstance(message, Step):
            with self._lock:
                waiters = [session.waiters[i] for i in message.ids if i in session.waiters]
            for waiter in waiters:
                _deliver(waiter, message)
            return
        with self._lock:
            finished = session.waiters.pop(message.id) if message.id in session.waiters else None
            self._count(message)
        if finished is not None:
            _deliver(finished, message)

    def _count(self, message: Done | Failed | Cancelled) -> None:
        if isinstance(message, Done):
            self.stats.images += 1
            if message.batch_size > 1:
                self.stats.batched += 1
            # an exponential average of one call's duration: about how long until a place frees
            previous = self.batch_seconds
            self.batch_seconds = message.seconds if previous is None else 0.8 * previous + 0.2 * message.seconds
        elif isinstance(message, Cancelled):
            self.stats.cancelled += 1
            self.stats.cancelled_steps_run += message.steps_run
            self.stats.cancelled_steps_asked += message.steps_total
        else:
            self.stats.failures += 1

    def stop(self, *, kill: bool = False) -> None:
        """Ask the worker to exit (or kill it), and wait for it a little."""
        session = self._session
        if session is None:
            return
        process = session.process
        if not kill and process.poll() is None:
            with contextlib.suppress(UpstreamUnavailable):
                _send(session, Stop(), self.config.source)
            if _wait(process, 10) is not None:
                return
        process.terminate()
        if _wait(process, 5) is None:
            process.kill()
            _wait(process, 5)


def _spawn(config: WorkerConfig) -> tuple[subprocess.Popen[bytes], Connection]:
    """A fresh interpreter running the worker, with one end of a socket pair as its pipe.

    Not ``multiprocessing``'s spawn: that re-imports the parent's ``__main__`` in the child, which for a
    server started as a script or with ``python -m`` would start a second server. A clean interpreter also
    keeps CUDA out of any forked state.
    """
    ours, theirs = socket.socketpair()
    with theirs:
        process = subprocess.Popen(
            [sys.executable, "-m", "imagegate.providers.local.worker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
    conn = Connection(ours.detach())
    with contextlib.suppress(OSError):  # it died at once; the reader thread reports how
        conn.send(config)
    _LIVE.add(process)
    return process, conn


def _wait(process: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None


#: Worker processes still running; killed when this interpreter exits, even if nobody closed the provider.
_LIVE: weakref.WeakSet[subprocess.Popen[bytes]] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_LIVE):
        if process.poll() is None:
            process.kill()


def _send(session: _Session, message: object, source: str) -> None:
    try:
        with session.send_lock:
            session.conn.send(message)
    except (OSError, ValueError) as exc:
        raise UpstreamUnavailable(f"the local model worker for {source} is gone ({exc})") from exc


class _StartFailed(Exception):
    pass


def _deliver(waiter: _Waiter, item: Reply | BaseException) -> None:
    # RuntimeError: that request's event loop is closed, so nobody is waiting any more
    with contextlib.suppress(RuntimeError):
        waiter.loop.call_soon_threadsafe(waiter.replies.put_nowait, item)


class WorkerPool:
    """The workers of one model, one per configured device; requests go to the least loaded."""

    def __init__(
        self,
        configs: list[WorkerConfig],
        *,
        queue_size: int,
        start_timeout_s: float,
        backoff_s: float,
        fallback_seconds: float,
    ) -> None:
        self.workers = [
            WorkerHandle(c, queue_size=queue_size, start_timeout_s=start_timeout_s, backoff_s=backoff_s)
            for c in configs
        ]
        self.fallback_seconds = fallback_seconds

    def reserve(self, batch_slots: int) -> WorkerHandle:
        """A worker with a free place, reserved; ``UpstreamRateLimited`` when every one is full."""
        for handle in sorted(self.workers, key=lambda w: w.load):
            if handle.reserve(batch_slots):
                return handle
        measured = [w.batch_seconds for w in self.workers if w.batch_seconds is not None]
        wait_s = max(1, math.ceil(min(measured) if measured else self.fallback_seconds))
        raise UpstreamRateLimited(
            f"every worker of the local model {self.workers[0].config.source} is busy "
            f"({sum(w.load for w in self.workers)} requests queued or running); try again shortly",
            retry_after_s=float(wait_s),
        )

    @property
    def stats(self) -> PoolStats:
        total = PoolStats()
        for handle in self.workers:
            for name in total.__dataclass_fields__:
                setattr(total, name, getattr(total, name) + getattr(handle.stats, name))
        return total

    async def aclose(self) -> None:
        await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self.workers))
