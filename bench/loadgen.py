"""A load generator that costs far less CPU than what it measures: raw HTTP/1.1 keep-alive over asyncio sockets.

httpx spent 4-8 ms of CPU per 2 MB answer in the benchmark's own process, as much as the gateway under test, so
on a shared 2-core machine it slowed what it timed. This client writes one prebuilt request per connection and
reads the answer with an ``asyncio.Protocol``: it parses the status line and headers, then only counts body
bytes (``Content-Length``) or walks chunk sizes (``Transfer-Encoding: chunked``), keeping the first few KiB to
check the answer and, when asked, the whole body. Per request it records the latency, the time to the first
body byte (streaming endpoints) and the status; ``Stats.client_cpu_ms`` is this process's own CPU per request,
so every report shows what the client cost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

HEAD_KEEP = 4096  # body bytes kept for checking an answer


class ProtocolFault(Exception):
    """The server broke HTTP/1.1 framing, or closed the connection mid-answer."""


@dataclass(slots=True)
class Answer:
    status: int
    latency_ms: float
    ttfb_ms: float  # until the first body byte (the first chunk of a stream)
    head: bytes  # the first HEAD_KEEP bytes of the body
    body: bytes | None  # the whole body, when asked for


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Answer] | None = None
        self._closed = False

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ProtocolFault(f"connection closed mid-answer ({exc!r})"))

    def data_received(self, data: bytes) -> None:
        try:
            self._feed(data)
        except ProtocolFault as exc:
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_exception(exc)
            assert self.transport is not None
            self.transport.close()

    # -- one exchange

    async def exchange(self, request: bytes, keep_body: bool) -> Answer:
        if self._closed or self.transport is None:
            raise ProtocolFault("connection is closed")
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._keep_body = keep_body
        self._buffer = bytearray()
        self._headers_done = False
        self._status = 0
        self._remaining = 0  # Content-Length bytes still to come
        self._chunked = False
        self._chunk_left = -1  # bytes of the current chunk still to come; -1: a size line is next
        self._head = bytearray()
        self._body: list[bytes] = []
        self._first_byte: float | None = None
        self._started = time.perf_counter()
        self.transport.write(request)
        return await self._waiter

    def _feed(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            raise ProtocolFault("data with no request outstanding")
        if not self._headers_done:
            self._buffer += data
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self._parse_head(bytes(self._buffer[:end]))
            data = bytes(self._buffer[end + 4 :])
            self._buffer = bytearray()
            self._headers_done = True
            if not self._chunked and self._remaining == 0:
                self._finish()
                return
        if not data:
            return
        if self._first_byte is None:
            self._first_byte = time.perf_counter()
        if self._chunked:
            self._feed_chunked(data)
        else:
            self._take(data)
            self._remaining -= len(data)
            if self._remaining <= 0:
                self._finish()

    def _take(self, data: bytes) -> None:
        if len(self._head) < HEAD_KEEP:
            self._head += data[: HEAD_KEEP - len(self._head)]
        if self._keep_body:
            self._body.append(data)

    def _feed_chunked(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if self._chunk_left < 0:  # a chunk-size line (after the CRLF that ends the previous chunk)
                end = self._buffer.find(b"\r\n")
                if end < 0:
                    return
                line = bytes(self._buffer[:end]).split(b";", 1)[0].strip()
                del self._buffer[: end + 2]
                if not line:  # the CRLF after a chunk's data
                    continue
                try:
                    size = int(line, 16)
                except ValueError as exc:
                    raise ProtocolFault(f"bad chunk size {line[:20]!r}") from exc
                if size == 0:
                    self._finish()  # trailers are not used by the servers measured here
                    return
                self._chunk_left = size
            if not self._buffer:
                return
            take = bytes(self._buffer[: self._chunk_left])
            del self._buffer[: len(take)]
            self._take(take)
            self._chunk_left -= len(take)
            if self._chunk_left == 0:
                self._chunk_left = -1

    def _parse_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ProtocolFault(f"bad status line {lines[0][:80]!r}")
        self._status = int(parts[1])
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                self._remaining = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                self._chunked = True

    def _finish(self) -> None:
        now = time.perf_counter()
        first = self._first_byte or now
        assert self._waiter is not None
        self._waiter.set_result(
            Answer(
                status=self._status,
                latency_ms=(now - self._started) * 1000,
                ttfb_ms=(first - self._started) * 1000,
                head=bytes(self._head),
                body=b"".join(self._body) if self._keep_body else None,
            )
        )


def build_request(method: str, url: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """The bytes of one HTTP/1.1 request (keep-alive) to ``url``."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target or '/'} HTTP/1.1", f"host: {parts.netloc}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def connect(url: str) -> _Connection:
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(_Connection, parts.hostname, parts.port or 80)
    return protocol


@dataclass
class Stats:
    latencies_ms: list[float] = field(default_factory=list)
    ttfb_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    wall_s: float = 0.0
    client_cpu_ms: float = 0.0  # this process's CPU per request over the run
    bodies: list[bytes] = field(default_factory=list)


Check = Callable[[Answer], str | None]  # None when the answer is good, else why not


async def hammer(
    url: str,
    request: bytes | Callable[[int], bytes],
    *,
    concurrency: int,
    requests: int,
    check: Check,
    keep_body: bool = False,
    warm: bytes | None = None,
) -> Stats:
    """``requests`` exchanges over ``concurrency`` keep-alive connections; a failed connection is reopened."""
    stats = Stats()
    numbers = iter(range(requests))
    connections = [await connect(url) for _ in range(concurrency)]
    if warm is not None:  # one exchange per connection first, so set-up is not counted
        await asyncio.gather(*(c.exchange(warm, False) for c in connections), return_exceptions=True)

    async def worker(connection: _Connection) -> None:
        for number in numbers:
            payload = request(number) if callable(request) else request
            try:
                answer = await connection.exchange(payload, keep_body)
            except (ProtocolFault, OSError) as exc:
                stats.errors += 1
                stats.first_error = stats.first_error or repr(exc)
                connection.transport.close() if connection.transport else None
                connection = await connect(url)
                continue
            why = check(answer)
            if why is not None:
                stats.errors += 1
                stats.first_error = stats.first_error or why
                continue
            stats.latencies_ms.append(answer.latency_ms)
            stats.ttfb_ms.append(answer.ttfb_ms)
            if answer.body is not None:
                stats.bodies.append(answer.body)
        if connection.transport is not None:
            connection.transport.close()

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    stats.wall_s = time.perf_counter() - started
    stats.client_cpu_ms = (time.process_time() - cpu) / max(1, requests) * 1000
    return stats
