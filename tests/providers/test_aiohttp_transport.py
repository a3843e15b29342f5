"""httpx on aiohttp, over real loopback HTTP: what providers send arrives intact, answers come back as httpx's.

Failures must surface as the httpx exceptions the retry rules know (a refused connection may be retried, a read
timeout may not), and ``stream=True`` callers must still get a body piece by piece.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from fakes.loopback import serve

from imagegate.core.timing import first_byte_marker
from imagegate.providers.base import USER_AGENT, build_client
from imagegate.providers.transport import AiohttpTransport, upstream_transport

BIG = b"x" * (3 << 20)


class _App:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.seen.append({"method": scope["method"], "path": scope["path"], "headers": headers, "body": body})
        path = scope["path"]
        if path == "/slow":
            await asyncio.sleep(2)
        if path == "/gzip":
            packed = gzip.compress(b'{"ok": true}')
            start = [(b"content-encoding", b"gzip"), (b"content-length", str(len(packed)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": start})
            await send({"type": "http.response.body", "body": packed})
            return
        if path == "/chunked":  # no content-length: three pieces
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for piece in (b"one ", b"two ", b"three"):
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        answer = BIG if path == "/big" else orjson.dumps({"echo": body.decode(), "n": len(body)})
        start = [(b"content-type", b"application/json"), (b"x-upstream", b"yes")]
        await send({"type": "http.response.start", "status": 503 if path == "/busy" else 200, "headers": start})
        await send({"type": "http.response.body", "body": answer})


@pytest.fixture
def app() -> Iterator[tuple[_App, str]]:
    app = _App()
    with serve(app) as url:
        yield app, url


def client(**kwargs: Any) -> httpx.AsyncClient:
    return build_client(timeout_s=kwargs.pop("timeout_s", 10), connect_timeout_s=2, **kwargs)


def test_providers_get_the_aiohttp_transport() -> None:
    assert isinstance(upstream_transport(100), AiohttpTransport)
    assert isinstance(client()._transport, AiohttpTransport)


async def test_a_request_and_its_answer_cross_intact(app: tuple[_App, str]) -> None:
    fake, url = app
    marks: list[int] = []
    async with client() as http:
        with first_byte_marker(lambda: marks.append(1)):
            response = await http.post(f"{url}/v1/make?x=1", json={"prompt": "a banana"}, headers={"x-key": "k"})
        busy = await http.post(f"{url}/busy", content=b"")
        big = await http.get(f"{url}/big")
    assert response.status_code == 200 and response.headers["x-upstream"] == "yes"
    assert response.json() == {"echo": '{"prompt":"a banana"}', "n": 21}
    sent = fake.seen[0]
    assert sent["method"] == "POST" and sent["path"] == "/v1/make"
    assert sent["headers"]["user-agent"] == USER_AGENT and sent["headers"]["x-key"] == "k"
    assert sent["headers"]["content-type"] == "application/json"
    assert busy.status_code == 503  # a status is an answer, not an exception: the retry rules decide
    assert big.content == BIG
    assert marks  # the first byte was marked for the router's timing


async def test_content_encoding_is_decoded_by_httpx(app: tuple[_App, str]) -> None:
    _, url = app
    async with client() as http:
        response = await http.get(f"{url}/gzip")
    assert response.json() == {"ok": True}


async def test_a_streamed_body_arrives_piece_by_piece(app: tuple[_App, str]) -> None:
    _, url = app
    async with client() as http, http.stream("GET", f"{url}/chunked") as response:
        pieces = [piece async for piece in response.aiter_bytes()]
    assert b"".join(pieces) == b"one two three"


async def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")


async def test_an_answer_slower_than_the_read_timeout_is_a_read_timeout(app: tuple[_App, str]) -> None:
    _, url = app
    async with client(timeout_s=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"{url}/slow")
