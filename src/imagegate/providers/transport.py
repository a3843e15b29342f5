"""httpx transports for the providers' upstream calls: aiohttp underneath (the default), or httpcore's pools.

``AiohttpTransport`` (below) is what providers use: the same ``httpx`` interface, a receive path that costs a
fraction of httpcore's for megabyte answers, and ``send_buffered`` for ``HTTPUpstream``, which skips the client's
send path as well. Without aiohttp, httpcore's pools are used, sharded:

httpcore's pool looks at every connection and every waiting request whenever a request starts or a response
ends, so one pool holding n slow image calls spends O(n) per call and O(n²) in all: with 10,000 calls in flight
that scan took ~90 % of the gateway's CPU (docs/benchmarks.md). Splitting the connections over pools of at most
``SHARD_SIZE`` keeps every scan short; a request goes to the pool with the fewest calls in flight, and counts
there until its response is closed, so the pools fill evenly.
"""

from __future__ import annotations

import math
import urllib.request
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any

import httpx

from imagegate.core.timing import mark_first_byte

#: Connections per pool: large enough that a normal deployment has one pool, small enough for a cheap scan.
SHARD_SIZE = 128


def upstream_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    """The transport providers call their upstreams with: aiohttp's when it is installed (it is a dependency)."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:  # pragma: no cover - only when installed without it
        return pooled_transport(max_connections)
    return AiohttpTransport(max_connections)


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


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx's interface on aiohttp's client: the same ``httpx.Response`` for providers, a cheaper receive path.

    Receiving a 2.1 MB answer costs httpcore 33 reads of 64 KiB, each with its own cancel scope and state machine
    step (~4-5 ms of CPU per image call on the benchmark machine); aiohttp's C parser fills one buffer and hands
    it over in a few reads (docs/benchmarks.md has the side-by-side figures). Timeouts come from each request's
    httpx timeout extension; aiohttp's failures are raised as the httpx exceptions callers already handle, and
    the body is streamed, so ``stream=True`` callers (downloads with a byte limit) still read it piece by piece.
    """

    def __init__(self, max_connections: int) -> None:
        self._max_connections = max_connections
        self._session: Any = None  # an aiohttp.ClientSession, made in the loop that first uses it
        self._proxies = urllib.request.getproxies()  # HTTP_PROXY, HTTPS_PROXY, ALL_PROXY as the process began

    def _proxy_for(self, url: httpx.URL) -> str | None:
        proxy = self._proxies.get(url.scheme) or self._proxies.get("all")
        if proxy is None or urllib.request.proxy_bypass(url.host):  # NO_PROXY
            return None
        return proxy

    def _open(self) -> Any:
        import aiohttp

        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, limit_per_host=0, keepalive_timeout=KEEPALIVE_EXPIRY_S
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # httpx decodes Content-Encoding itself, as with its own transport
                # no netrc or proxy lookups per request (two thread hops each): the environment's proxies are
                # read once, in __init__ (httpx reads none for a client given its own transport)
                trust_env=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
                cookie_jar=aiohttp.DummyCookieJar(),  # an API client keeps no cookies
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._request(request)
        return httpx.Response(
            response.status,
            headers=_headers(response),
            stream=_AiohttpStream(response, request),
            request=request,
            extensions=_EXTENSIONS,
        )

    async def send_buffered(self, request: httpx.Request) -> httpx.Response:
        """``request`` sent and its whole answer read, without httpx's client around it (``HTTPUpstream.send``).

        For callers that read every body anyway: the client's hooks, redirect and cookie handling and its
        stream wrappers cost ~1.3 ms per 2 MB answer on the benchmark machine, more than aiohttp's whole
        receive (``bench/upstream_clients.py``). What the client adds that matters (headers, timeouts) is
        already in a request it built.
        """
        response = await self._request(request)
        try:
            body = await response.read()
        except Exception as exc:
            raise _httpx_error(exc, request) from exc
        finally:
            response.release()
        return httpx.Response(
            response.status, headers=_headers(response), content=body, request=request, extensions=_EXTENSIONS
        )

    async def _request(self, request: httpx.Request) -> Any:
        """The aiohttp response to ``request``, its head read (the body not yet)."""
        import aiohttp

        session = self._open()
        timeout = request.extensions.get("timeout", {})
        limits = aiohttp.ClientTimeout(
            total=None,
            connect=timeout.get("pool"),  # aiohttp's connect covers waiting for a pooled connection too
            sock_connect=timeout.get("connect"),
            sock_read=timeout.get("read"),
        )
        body = request.content if not isinstance(request.stream, httpx.AsyncByteStream) else await request.aread()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw if k.lower() != b"host"]
        try:
            response = await session.request(
                request.method,
                str(request.url),
                data=body or None,
                headers=headers,
                timeout=limits,
                allow_redirects=False,
                proxy=self._proxy_for(request.url) if self._proxies else None,
            )
        except Exception as exc:
            raise _httpx_error(exc, request) from exc
        mark_first_byte()
        return response

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


_EXTENSIONS = {"http_version": b"HTTP/1.1"}


def _headers(response: Any) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]


#: A body of declared length up to this is read in one piece (callers that cap sizes check the declared length
#: before they read, so this bounds memory the same way); longer or unsized bodies stream as they arrive.
WHOLE_BODY_BYTES = 64 << 20


class _AiohttpStream(httpx.AsyncByteStream):
    def __init__(self, response: Any, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            length = self._response.content_length
            if length is not None and length <= WHOLE_BODY_BYTES:
                # one piece: aiohttp joins what it buffered once, and httpx takes the single piece as it is
                yield await self._response.read()
                return
            while chunk := await self._response.content.readany():
                yield chunk
        except Exception as exc:
            raise _httpx_error(exc, self._request) from exc

    async def aclose(self) -> None:
        self._response.release()


def _httpx_error(exc: Exception, request: httpx.Request) -> Exception:
    """The httpx exception for an aiohttp failure, so callers keep one set of rules (which ones may be retried)."""
    import aiohttp

    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, aiohttp.ClientError):
        return httpx.ReadError(message, request=request)
    return exc
