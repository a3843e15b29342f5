"""The doorbell between processes: PostgreSQL LISTEN/NOTIFY on one dedicated asyncpg connection.

It says "look again", never what happened: a job was queued (workers claim) or a job changed (waiters read it).
Notifications are sent after the change has committed and are batched, one ``pg_notify`` statement for all
that piled up, from a single sender task, so a request never waits for one. When the connection dies (a
restart, ``pg_terminate_backend``) it reconnects and calls ``on_reconnect``, because whatever was announced
meanwhile is lost: callers then re-check everything they wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

JOB_QUEUED = "imagegate_job_queued"
JOB_CHANGED = "imagegate_job_changed"

APPLICATION_NAME = "imagegate-doorbell"

_NOTIFY_MANY = "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload"


class PgDoorbell:
    def __init__(
        self,
        dsn: str,
        *,
        on_queued: Callable[[], None],
        on_changed: Callable[[str], None],
        on_reconnect: Callable[[], None],
        ping_s: float = 2.0,
        retry_s: float = 0.5,
    ) -> None:
        self._dsn = dsn
        self._on_queued = on_queued
        self._on_changed = on_changed
        self._on_reconnect = on_reconnect
        self._ping_s = ping_s
        self._retry_s = retry_s
        self._pending: dict[str, list[str]] = {JOB_QUEUED: [], JOB_CHANGED: []}
        self._wake = asyncio.Event()
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connections = 0  # how many times it connected (the first time included)

    async def start(self, *, within_s: float = 15.0) -> None:
        """Connect (and keep reconnecting); returns once the first connection listens."""
        self._task = asyncio.create_task(self._run(), name="imagegate-doorbell")
        try:
            await asyncio.wait_for(self._connected.wait(), within_s)
        except TimeoutError:
            await self.aclose()
            raise RuntimeError(f"could not LISTEN on the database within {within_s:g} s") from None

    def ring(self, channel: str, payload: str) -> None:
        self._pending[channel].append(payload)
        self._wake.set()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        import asyncpg  # type: ignore[import-untyped]  # the [postgres] extra; no stubs

        while True:
            conn: Any = None
            try:
                # Named, so an operator (or a test) can find it in pg_stat_activity.
                conn = await asyncpg.connect(self._dsn, server_settings={"application_name": APPLICATION_NAME})
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(JOB_QUEUED, lambda *_: self._on_queued())
                await conn.add_listener(JOB_CHANGED, lambda _c, _pid, _ch, payload: self._on_changed(payload))
                self.connections += 1
                if self.connections > 1:
                    log.warning("doorbell reconnected: re-checking every waiter and the queue")
                    self._on_reconnect()
                self._connected.set()
                await self._serve(conn, lost)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away or refused us: wait, then try again
                log.warning("doorbell connection lost (%s: %s); reconnecting", type(exc).__name__, exc)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            await asyncio.sleep(self._retry_s)

    async def _serve(self, conn: Any, lost: asyncio.Event) -> None:
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._ping_s)
            self._wake.clear()
            sent = False
            for channel, payloads in self._pending.items():
                if payloads:
                    batch, self._pending[channel] = payloads, []
                    await conn.execute(_NOTIFY_MANY, channel, batch)
                    sent = True
            if not sent:
                await conn.fetchval("SELECT 1")  # a dead connection is noticed while idle, not at the next ring
        raise ConnectionError("the LISTEN connection was closed")
