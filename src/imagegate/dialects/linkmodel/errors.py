"""Domain errors as the linkmodel seed's error bodies: 400 ``{code, msg, request_id}``, 401 ``{code, data: {}, msg,
request_id}`` and 500 ``{code, msg, request_id}``, ``code`` always equal to the HTTP status.

The seed documents no other status, so every failure lands on one of those three: the caller's mistakes (invalid
or unknown fields, an unknown model or task, a conflict) are 400; a missing, invalid or unprivileged key is 401
(``invalid api key`` as the seed says); everything else is 500 in the seed's ``create task failed: billing: …``
style, internals never leaked, a rate limit keeping its ``Retry-After``. ``render_error(exc)`` is what
``http/errors.py`` calls; it cannot see the request, so the routes bind the request id and the operation to a
context variable first (``bind_error_context``), and every body carries the same id as the ``x-request-id`` header.
"""

from __future__ import annotations

import math
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from imagegate.errors import ImagegateError
from imagegate.http.errors import current_request_id

INVALID_API_KEY_MESSAGE = "invalid api key"
MISSING_API_KEY_MESSAGE = "missing api key"
INSUFFICIENT_BALANCE_MESSAGE = "billing: insufficient balance"
INTERNAL_MESSAGE = "internal error"

#: Kinds that are the caller's to fix: the seed's 400.
#: (The seed has no 409 or 422, so an Idempotency-Key still running or reused is a 400 too; the message says which.)
_BAD_REQUEST_KINDS = frozenset({"invalid_request", "not_found", "conflict", "cancelled", "unprocessable"})
#: Kinds about the key: the seed's 401.
_UNAUTHORIZED_KINDS = frozenset({"missing_key", "invalid_key", "permission_denied"})


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """What a rendered error needs from its request: the id to echo, and the operation that failed."""

    request_id: str
    operation: str


_context: ContextVar[ErrorContext | None] = ContextVar("imagegate_linkmodel_error_context", default=None)


def bind_error_context(request_id: str, operation: str) -> None:
    """Remember, for errors this request raises later, its id and what it was doing (``create task``, …)."""
    _context.set(ErrorContext(request_id, operation))


def render_error(exc: ImagegateError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``(HTTP status, body, extra headers)`` for a domain error on a linkmodel route."""
    context = _context.get()
    if context is None:  # an error before any linkmodel route ran (404, 405): the request's own id all the same
        context = ErrorContext(current_request_id.get() or str(uuid.uuid4()), "request")
    return error_response(exc, request_id=context.request_id, operation=context.operation)


def error_response(
    exc: ImagegateError, *, request_id: str, operation: str = "request"
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The seed's body for ``exc`` with an explicit request id and operation."""
    kind = getattr(exc, "kind", "internal")
    if kind in _UNAUTHORIZED_KINDS:
        body = {"code": 401, "data": {}, "msg": _unauthorized_message(exc, kind), "request_id": request_id}
        return 401, body, {"WWW-Authenticate": "Bearer"}
    if kind in _BAD_REQUEST_KINDS:
        return 400, {"code": 400, "msg": exc.message, "request_id": request_id}, {}
    headers: dict[str, str] = {}
    if exc.retry_after_s is not None and math.isfinite(exc.retry_after_s):
        headers["Retry-After"] = str(max(0, math.ceil(exc.retry_after_s)))
    msg = f"{operation} failed: {_server_detail(exc, kind)}"
    return 500, {"code": 500, "msg": msg, "request_id": request_id}, headers


def _unauthorized_message(exc: ImagegateError, kind: str) -> str:
    if kind == "missing_key":
        return MISSING_API_KEY_MESSAGE
    if kind == "invalid_key":
        return INVALID_API_KEY_MESSAGE  # never echo the key, not even masked
    return f"permission denied: {exc.message}"


def _server_detail(exc: ImagegateError, kind: str) -> str:
    """The part after ``<operation> failed:``: a subsystem and what it said, as in the seed's example."""
    if kind == "insufficient_credits":
        return INSUFFICIENT_BALANCE_MESSAGE
    if kind == "rate_limited":
        return f"rate limit: {exc.message}"
    if kind in ("upstream_unavailable", "upstream_timeout"):
        return f"upstream: {exc.message}"
    return INTERNAL_MESSAGE  # internals never leak
