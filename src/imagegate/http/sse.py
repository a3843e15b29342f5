"""Server-sent events while an image is made: a comment line every few seconds so proxies and clients keep the
stream open (SSE clients skip comment lines; OpenRouter sends ``: OPENROUTER PROCESSING`` the same way)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import orjson

from imagegate.http.json_pieces import dumps_pieces, framed

#: How often the comment is sent while waiting.
KEEPALIVE_S = 10.0
KEEPALIVE = b": imagegate processing\n\n"
DONE = b"data: [DONE]\n\n"


def event(body: dict[str, Any], *, name: str | None = None) -> bytes:
    """One ``data:`` event (with an ``event:`` line when ``name`` is given)."""
    head = b"event: " + name.encode() + b"\n" if name else b""
    # one join, not a chain of +: an event carrying an image is megabytes, and each + copies all of it
    return b"".join((head, b"data: ", orjson.dumps(body), b"\n\n"))


def event_pieces(body: dict[str, Any], *, name: str | None = None) -> list[bytes]:
    """``event`` for a body with ``Base64Piece``s, in pieces (``json_pieces``): its images are not copied."""
    head = b"event: " + name.encode() + b"\n" if name else b""
    return framed(dumps_pieces(body), head + b"data: ", b"\n\n")


async def keepalive_until(task: asyncio.Task[Any], interval_s: float = KEEPALIVE_S) -> AsyncIterator[bytes]:
    """Comment lines until ``task`` is done; if the client goes away first, the wait is cancelled (the job is not:
    it finishes and is billed like a sync request whose caller hung up)."""
    try:
        while not task.done():
            done, _ = await asyncio.wait({task}, timeout=interval_s)
            if not done:
                yield KEEPALIVE
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def start(awaitable: Awaitable[Any]) -> asyncio.Task[Any]:
    return asyncio.ensure_future(awaitable)
