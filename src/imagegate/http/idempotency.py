"""``Idempotency-Key`` on POST: an ASGI middleware that replays a request's first answer to its retries.

Only POSTs that carry the header and an API key take part (a request without a key passes through and auth
refuses it). Entries are scoped by a SHA-256 of the presented API key, so callers never share them and no key
lookup is needed here; a request is identified by a SHA-256 of its method, path, query and body. The body is
buffered first (``BodyLimitMiddleware``, outside this one, has capped it). A new request runs while its answer
is captured on the way out, streamed ones included, and the answer is kept (``services.idempotency`` decides
which are) before its last chunk reaches the client, so a retry can never arrive in between. A retry gets the
kept answer with ``Idempotent-Replayed: true`` and never reaches the app. Refusals are rendered in the dialect
of the path, by the same renderers the app's error handlers use.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagegate.core.ports import IdempotencyRecord
from imagegate.errors import ImagegateError, InvalidRequest
from imagegate.http.auth import presented_key
from imagegate.http.errors import ErrorRenderer, dialect_of
from imagegate.services.context import Services
from imagegate.services.idempotency import IdempotencyPolicy, Replay, abandon, begin, complete, holding

log = logging.getLogger(__name__)

HEADER = b"idempotency-key"
REPLAYED_HEADER = b"idempotent-replayed"
_VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")

#: Not part of an answer: hop-by-hop headers belong to one connection, the request id to one request, and the
#: length is recomputed from the kept body (a streamed answer had none).
_NOT_KEPT = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "x-request-id",
        "content-length",
    }
)


class IdempotencyMiddleware:
    """Replays the first answer to POSTs that repeat an ``Idempotency-Key``; see the module docstring."""

    def __init__(
        self, app: ASGIApp, renderers: Mapping[str, ErrorRenderer], policy: IdempotencyPolicy | None = None
    ) -> None:
        self.app = app
        self.renderers = renderers
        self.policy = policy or IdempotencyPolicy()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        raw_key = next((value for name, value in scope["headers"] if name == HEADER), None)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not _VALID_KEY.fullmatch(key):
            error = InvalidRequest("Idempotency-Key must be 1 to 255 printable ASCII characters.")
            await self._refuse(scope, receive, send, error)
            return
        api_key = presented_key(Request(scope))
        services = _services(scope)
        if api_key is None or services is None:
            await self.app(scope, receive, send)  # auth refuses it; nothing is done twice without a caller
            return
        messages, body = await _read_body(receive)
        replay_receive = _replaying(messages, receive)
        if body is None:  # the client left, or the body grew past the cap: the app answers as it would anyway
            await self.app(scope, replay_receive, send)
            return
        scope_hash = hashlib.sha256(api_key.encode()).hexdigest()
        try:
            outcome = await begin(services, scope_hash, key, _fingerprint(scope, body), policy=self.policy)
        except ImagegateError as exc:
            await self._refuse(scope, receive, send, exc)
            return
        if isinstance(outcome, Replay):
            await _send_kept(send, outcome.record)
            return
        with holding(outcome):  # submit_job links the job it creates to this claim (or adopts a dead one's)
            await self._run(services, outcome.claim, scope, replay_receive, send)

    async def _run(
        self, services: Services, claim: IdempotencyRecord, scope: Scope, receive: Receive, send: Send
    ) -> None:
        status = 0
        headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []
        settled = False

        async def capturing_send(message: Message) -> None:
            nonlocal status, headers, settled
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in message.get("headers", [])]
            elif message["type"] == "http.response.body" and not settled:
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    settled = True
                    kept = tuple((n, v) for n, v in headers if n.lower() not in _NOT_KEPT)
                    await self._settle(services, claim, status, kept, b"".join(chunks))
            await send(message)

        try:
            await self.app(scope, receive, capturing_send)
        finally:
            if not settled:  # a crash, or an answer cut short: a retry must run again
                await self._release(services, claim)

    async def _settle(
        self,
        services: Services,
        claim: IdempotencyRecord,
        status: int,
        headers: tuple[tuple[str, str], ...],
        body: bytes,
    ) -> None:
        # The client still gets its answer when keeping it fails; the claim then goes stale and is taken over.
        try:
            await complete(services, claim, status, headers, body, policy=self.policy)
        except Exception:
            log.exception("could not keep the answer for idempotency key %r", claim.key)
            await self._release(services, claim)

    async def _release(self, services: Services, claim: IdempotencyRecord) -> None:
        try:
            await abandon(services, claim)
        except Exception:
            log.exception("could not release idempotency key %r", claim.key)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: ImagegateError) -> None:
        renderer = self.renderers.get(dialect_of(Request(scope))) or self.renderers["gemini"]
        status, body, headers = renderer(exc)
        # Dialects whose error bodies carry a request id (linkmodel) must show this request's, as routes do.
        request_id = scope.get("state", {}).get("request_id")
        if isinstance(request_id, str) and "request_id" in body:
            body = {**body, "request_id": request_id}
        await JSONResponse(body, status_code=status, headers=headers)(scope, receive, send)


def _services(scope: Scope) -> Services | None:
    """The running services (the lifespan puts them on the app); None before it has."""
    runtime = getattr(scope["app"].state, "runtime", None)
    services: Services | None = getattr(runtime, "services", None)
    return services


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """Every message up to the end of the body, and the body; None when it never ended (a disconnect)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(bytes(message.get("body", b"")))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives the app the buffered body again, then the real channel (to see a disconnect)."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _fingerprint(scope: Scope, body: bytes) -> str:
    """SHA-256 over method, path, query, media type and body, each length-prefixed so no two requests collide."""
    content_type = next((v for n, v in scope["headers"] if n == b"content-type"), b"").decode("latin-1")
    media_type, _, params = content_type.partition(";")
    boundary = _boundary(params) if media_type.strip().lower().startswith("multipart/") else None
    if boundary:
        # Clients draw a new random boundary for every attempt, so the same form would never match itself.
        body = body.replace(b"--" + boundary, b"--imagegate-boundary")
    digest = hashlib.sha256()
    for part in (
        scope["method"].encode(),
        scope["path"].encode("utf-8", "surrogateescape"),
        bytes(scope.get("query_string", b"")),
        media_type.strip().lower().encode("latin-1"),
        body,
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _boundary(params: str) -> bytes | None:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary" and value.strip().strip('"'):
            return value.strip().strip('"').encode("latin-1")
    return None


async def _send_kept(send: Send, record: IdempotencyRecord) -> None:
    headers: list[tuple[bytes, bytes]] = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in record.headers]
    headers += [(b"content-length", str(len(record.body)).encode()), (REPLAYED_HEADER, b"true")]
    start: dict[str, Any] = {"type": "http.response.start", "status": record.status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": record.body})
