"""Request ids and the body-size cap, on a bare ASGI app over httpx's ASGI transport."""

from __future__ import annotations

import uuid

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from imagegate.http.middleware import BodyLimitMiddleware, RequestIdMiddleware


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"size": len(body), "request_id": request.state.request_id})


def client(max_bytes: int = 100) -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/", echo, methods=["POST"])])
    wrapped = RequestIdMiddleware(BodyLimitMiddleware(app, max_bytes=max_bytes))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://test")


async def test_every_response_has_a_request_id() -> None:
    async with client() as http:
        response = await http.post("/", content=b"hi")
    assert uuid.UUID(response.headers["x-request-id"]).version == 7
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_a_sane_incoming_request_id_is_kept_and_junk_is_replaced() -> None:
    async with client() as http:
        kept = await http.post("/", content=b"", headers={"x-request-id": "trace-42.a_b"})
        replaced = await http.post("/", content=b"", headers={"x-request-id": "bad id\nwith newline"[:10] + " x"})
    assert kept.headers["x-request-id"] == "trace-42.a_b"
    assert uuid.UUID(replaced.headers["x-request-id"])


async def test_declared_oversized_body_is_refused_with_413() -> None:
    async with client(max_bytes=10) as http:
        response = await http.post("/", content=b"x" * 11)
    assert response.status_code == 413
    assert "larger than this server accepts (10 bytes)" in response.json()["error"]["message"]


async def test_streamed_oversized_body_is_refused_too() -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(5):
            yield b"x" * 5

    async with client(max_bytes=10) as http:
        response = await http.post("/", content=chunks())
    assert response.status_code == 413


async def test_a_body_at_the_limit_passes() -> None:
    async with client(max_bytes=10) as http:
        response = await http.post("/", content=b"x" * 10)
    assert response.status_code == 200 and response.json()["size"] == 10
