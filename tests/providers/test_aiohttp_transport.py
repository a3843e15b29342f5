"""httpx on aiohttp, over real loopback HTTP: what providers send arrives intact, answers come back as httpx's.

Failures must surface as the httpx exceptions the retry rules know (a refused connection may be retried, a read
timeout may not), and ``stream=True`` callers must still get a body piece by piece. ``HTTPUpstream`` sends on
the transport directly (``send_buffered``): the same answers and failures, except where a proxy is configured.
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
from imagegate.errors import UpstreamTimeout, UpstreamUnavailable
from imagegate.providers.base import USER_AGENT, HTTPUpstream, RetryPolicy, build_client
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


# -- HTTPUpstream's own client: the transport's buffered send -------------------------------------------------


def upstream(**kwargs: Any) -> HTTPUpstream:
    return HTTPUpstream("Test API", timeout_s=kwargs.pop("timeout_s", 10), connect_timeout_s=2, **kwargs)


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_proxy")
async def test_the_upstream_sends_requests_and_reads_answers_whole(app: tuple[_App, str]) -> None:
    fake, url = app
    http = upstream()
    marks: list[int] = []
    try:
        with first_byte_marker(lambda: marks.append(1)):
            response = await http.send("POST", f"{url}/v1/make", json={"prompt": "a banana"}, headers={"x-key": "k"})
        busy = await http.send("POST", f"{url}/busy")
        big = await http.send("GET", f"{url}/big")
        packed = await http.send("GET", f"{url}/gzip")
        chunked = await http.send("GET", f"{url}/chunked")
    finally:
        await http.aclose()
    assert response.status_code == 200 and response.headers["x-upstream"] == "yes"
    assert response.json() == {"echo": '{"prompt":"a banana"}', "n": 21}
    sent = fake.seen[0]
    assert sent["method"] == "POST" and sent["path"] == "/v1/make"
    assert sent["headers"]["user-agent"] == USER_AGENT and sent["headers"]["x-key"] == "k"
    assert busy.status_code == 503  # the default retry rules retry a 503: max_retries=2, so three calls
    assert [seen["path"] for seen in fake.seen[1:4]] == ["/busy"] * 3
    assert big.content == BIG
    assert packed.json() == {"ok": True}  # Content-Encoding decoded, as on httpx's own path
    assert chunked.content == b"one two three"  # no content-length: read to the end
    assert marks


@pytest.mark.usefixtures("no_proxy")
async def test_the_upstream_words_transport_failures_as_domain_errors(app: tuple[_App, str]) -> None:
    _, url = app
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    refused = upstream(policy=RetryPolicy(max_retries=1, jitter=0), sleep=sleep)
    slow = upstream(timeout_s=0.2)
    try:
        with pytest.raises(UpstreamUnavailable, match="could not be reached"):
            await refused.send("GET", f"http://127.0.0.1:{port}/")
        with pytest.raises(UpstreamTimeout, match="did not answer in time"):
            await slow.send("GET", f"{url}/slow")
    finally:
        await refused.aclose()
        await slow.aclose()
    assert slept == [1.0]  # a refused connection never reached the upstream: retried once; a timeout is not


async def test_calls_go_through_the_environments_proxy_unless_no_proxy_says_otherwise(
    app: tuple[_App, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = app
    monkeypatch.setenv("HTTP_PROXY", url)  # the loopback app stands in for the proxy
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    http, streaming = upstream(), client()
    try:
        response = await http.send("POST", "http://upstream.invalid/v1/make", json={"prompt": "p"})
        async with streaming.stream("GET", "http://upstream.invalid/chunked") as streamed:
            await streamed.aread()
        monkeypatch.setenv("NO_PROXY", "upstream.invalid")
        with pytest.raises(httpx.ConnectError):  # now straight to upstream.invalid, which does not resolve
            await streaming.get("http://upstream.invalid/v1/make")
    finally:
        await http.aclose()
        await streaming.aclose()
    assert response.status_code == 200  # upstream.invalid does not resolve: only the proxy could have answered
    assert [seen["headers"]["host"] for seen in fake.seen] == ["upstream.invalid"] * 2
    assert streamed.content == b"one two three"
