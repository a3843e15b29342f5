"""An answer's base64 sent beside its JSON: the same bytes as serialising it whole, whatever the text around."""

from __future__ import annotations

import base64
import os
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from imagegate.http import json_pieces
from imagegate.http.json_pieces import Base64Piece, PiecesResponse, dumps_pieces

IMAGE = base64.b64encode(os.urandom(3000))


def as_strings(document: Any) -> Any:
    if isinstance(document, Base64Piece):
        return (document.prefix + document.text).decode()
    if isinstance(document, dict):
        return {k: as_strings(v) for k, v in document.items()}
    if isinstance(document, list):
        return [as_strings(v) for v in document]
    return document


@given(
    before=st.text(),
    after=st.text(),
    count=st.integers(0, 12),  # past ten: a marker ":1" must not be taken for ":10"
)
def test_joined_pieces_are_the_documents_json(before: str, after: str, count: int) -> None:
    marker_like = f"\x00{json_pieces._NONCE[:8]}:0"  # what a caller's text could hold (never the whole nonce)
    parts: list[Any] = [{"text": before + marker_like}]
    parts += [{"inlineData": {"mimeType": "image/png", "data": Base64Piece(IMAGE[i:])}} for i in range(count)]
    parts.append({"image_url": {"url": Base64Piece(IMAGE, prefix=b"data:image/png;base64,")}})  # Chat's data URL
    document = {"candidates": [{"content": {"parts": parts}}], "note": after, "n": [1, 2.5, None, True]}
    pieces = dumps_pieces(document)
    assert b"".join(pieces) == orjson.dumps(as_strings(document))
    assert len(pieces) == 2 * (count + 1) + 1
    assert all(pieces[1 + 2 * i] == IMAGE[i:] for i in range(count))  # each text its own piece, as given
    assert pieces[-3].endswith(b'"url":"data:image/png;base64,') and pieces[-2] == IMAGE


def test_anything_else_orjson_cannot_write_is_still_an_error() -> None:
    with pytest.raises(TypeError, match="object"):
        dumps_pieces({"x": object()})


async def test_a_pieces_response_declares_its_whole_length() -> None:
    document = {"a": Base64Piece(IMAGE), "b": "tail"}

    async def answer(request: Request) -> PiecesResponse:
        return PiecesResponse(dumps_pieces(document), headers={"x-extra": "1"})

    app = Starlette(routes=[Route("/", answer, methods=["GET", "HEAD"])])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        got = await client.get("/")
        head = await client.head("/")
    assert got.status_code == 200 and got.headers["content-type"] == "application/json"
    assert got.content == orjson.dumps(as_strings(document))
    assert int(got.headers["content-length"]) == len(got.content) and got.headers["x-extra"] == "1"
    assert head.headers["content-length"] == got.headers["content-length"] and head.content == b""
