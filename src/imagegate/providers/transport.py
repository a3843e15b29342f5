"""An httpx transport for thousands of calls held open at once: several small connection pools, not one big one.

httpcore's pool looks at every connection and every waiting request whenever a request starts or a response
ends, so one pool holding n slow image calls spends O(n) per call and O(n²) in all: with 10,000 calls in flight
that scan took ~90 % of the gateway's CPU (docs/benchmarks.md). Splitting the connections over pools of at most
``SHARD_SIZE`` keeps every scan short; a request goes to the pool with the fewest calls in flight, and counts
there until its response is closed, so the pools fill evenly.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from types import TracebackType

import httpx

#: Connections per pool: large enough that a normal deployment has one pool, small enough for a cheap scan.
SHARD_SIZE = 128


def pooled_transport(max_connections: int, *, shard_size: int = SHARD_SIZE) -> httpx.AsyncBaseTransport:
    """One plain transport up to ``shard_size`` connections; a ``ShardedTransport`` beyond."""
    if max_connections <= shard_size:
        return httpx.AsyncHTTPTransport(limits=_limits(max_connections))
    return ShardedTransport(max_connections, shard_size=shard_size)


#: Idle connections are closed after this. Servers commonly close theirs after 5 s (uvicorn, Node); at httpx's
#: default of 5 s too, a request now and then went out on a connection the upstream was closing, and failed.
KEEPALIVE_EXPIRY_S = 4.0


def _limits(max_connections: int) -> httpx.Limits:
    return httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )


class ShardedTransport(httpx.AsyncBaseTransport):
    """``max_connections`` spread over pools of ``shard_size``; each request to the least busy pool."""

    def __init__(self, max_connections: int, *, shard_size: int = SHARD_SIZE) -> None:
        if max_connections < 1 or shard_size < 1:
            raise ValueError("max_connections and shard_size must be at least 1")
        count = math.ceil(max_connections / shard_size)
        base, extra = divmod(max_connections, count)  # sizes differ by at most one, and add up exactly
        self._pools = [httpx.AsyncHTTPTransport(limits=_limits(base + (i < extra))) for i in range(count)]
        self._in_flight = [0] * count

    @property
    def in_flight(self) -> tuple[int, ...]:
        """Calls each pool holds now (a response counts until it is closed)."""
        return tuple(self._in_flight)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._pools)), key=self._in_flight.__getitem__)
        self._in_flight[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            self._in_flight[index] -= 1
            raise
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)  # an async transport's response streams asynchronously
        response.stream = _CountedStream(stream, lambda: self._release(index))
        return response

    def _release(self, index: int) -> None:
        self._in_flight[index] -= 1

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()


class _CountedStream(httpx.AsyncByteStream):
    """A response body that tells its pool, once, that the call is over when it is closed."""

    def __init__(self, inner: httpx.AsyncByteStream, on_close: Callable[[], None]) -> None:
        self._inner = inner
        self._on_close = on_close
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if not self._closed:
                self._closed = True
                self._on_close()
