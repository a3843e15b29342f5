"""JSON answers whose image base64 is sent as it is, beside the serialised rest, instead of through orjson.

A 1024² image answer is ~2 MB of JSON, nearly all of it one base64 string. Encoding the image to a ``str`` and
serialising the document with it costs ~0.45 ms (orjson scans and copies every character); an upstream's own
canonical text can be sent on unencoded (``StoredImageBytes``). So a renderer puts a ``Base64Piece`` where the
string goes, ``dumps_pieces`` serialises the document with a marker in its place and cuts the output there, and
the answer is sent piece by piece (``PiecesResponse``, or one SSE event per chunk): the same bytes on the wire.

The cut is sound: base64 needs no escaping in a JSON string, and the marker starts with a NUL (which orjson
writes as ``\\u0000``) and a nonce drawn per process, so no other string in the document can contain it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

_NONCE = secrets.token_hex(8)


class Base64Piece:
    """Where a base64 string goes in a document for ``dumps_pieces``: ``text`` is its ASCII, sent as it is, after
    ``prefix`` (a short plain-ASCII head such as a data URL's ``data:image/png;base64,``)."""

    __slots__ = ("prefix", "text")

    def __init__(self, text: bytes, prefix: bytes = b"") -> None:
        self.text = text
        self.prefix = prefix


def dumps_pieces(document: Any) -> list[bytes]:
    """The JSON of ``document`` (as ``orjson.dumps``, each ``Base64Piece`` a string) in pieces, each piece's
    text one of its own: joined, they are the JSON text."""
    pieces: list[Base64Piece] = []

    def marker(value: Any) -> str:
        if not isinstance(value, Base64Piece):
            raise TypeError(f"{type(value).__name__} is not JSON serializable")
        pieces.append(value)
        return f"\x00{_NONCE}:{len(pieces) - 1}"

    text = orjson.dumps(document, default=marker)
    out: list[bytes] = []
    at = 0
    for index, piece in enumerate(pieces):
        written = f'\\u0000{_NONCE}:{index}"'.encode()  # with its closing quote: ":1" is not ":10"
        start = text.index(written, at)
        out += (text[at:start] + piece.prefix, piece.text)
        at = start + len(written) - 1  # the quotes stay
    out.append(text[at:])
    return out


def framed(pieces: list[bytes], before: bytes, after: bytes) -> list[bytes]:
    """``pieces`` with ``before`` joined to the first and ``after`` to the last (both JSON text, short): an SSE
    event or an array element around a document, without copying its images."""
    first, *rest = pieces
    if not rest:
        return [before + first + after]
    return [before + first, *rest[:-1], rest[-1] + after]


class PiecesResponse(Response):
    """A JSON answer sent as the pieces of ``dumps_pieces``, with its whole length declared."""

    media_type = "application/json"

    def __init__(
        self,
        pieces: list[bytes],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.pieces = pieces
        super().__init__(None, status_code, headers, self.media_type, background)
        self.headers["content-length"] = str(sum(len(piece) for piece in pieces))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if scope.get("method") != "HEAD":
            last = len(self.pieces) - 1
            for index, piece in enumerate(self.pieces):
                await send({"type": "http.response.body", "body": piece, "more_body": index < last})
        else:
            await send({"type": "http.response.body", "body": b""})
        if self.background is not None:
            await self.background()
