"""Domain errors as OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}`` plus retry headers.

openai-python picks its exception class from the HTTP status alone (400 ``BadRequestError``, 401
``AuthenticationError``, 429 ``RateLimitError``, ≥500 ``InternalServerError``, …) and copies ``code``,
``param`` and ``type`` from the body, so the status and those three fields are the contract. It retries 429
and 5xx by default, honouring ``retry-after-ms``/``retry-after`` and ``x-should-retry``. Errors are matched by
class and ``kind``, never by message text; ``param`` comes from the error's ``field``. Anything unexpected is
a generic 500 that leaks nothing. ``ModerationBlocked`` lives here until ``imagegate.errors`` adopts it.
"""

from __future__ import annotations

import math
from typing import Any

from imagegate.errors import (
    ImagegateError,
    InvalidImage,
    ModelNotFound,
    ModerationBlocked,
    RateLimited,
    UnknownField,
    UpstreamRejected,
)

MISSING_API_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY)."
)
INVALID_API_KEY_MESSAGE = "Incorrect API key provided."
INTERNAL_MESSAGE = "The server had an error while processing your request. Sorry about that!"

INVALID_REQUEST_ERROR = "invalid_request_error"
SERVER_ERROR = "server_error"


#: kind -> (HTTP status, error type, error code); invalid requests refine the code by class below.
_BY_KIND: dict[str, tuple[int, str, str | None]] = {
    "invalid_request": (400, INVALID_REQUEST_ERROR, "invalid_value"),
    "missing_key": (401, INVALID_REQUEST_ERROR, None),
    "invalid_key": (401, INVALID_REQUEST_ERROR, "invalid_api_key"),
    "permission_denied": (403, INVALID_REQUEST_ERROR, "permission_denied"),
    "not_found": (404, INVALID_REQUEST_ERROR, None),
    "conflict": (409, INVALID_REQUEST_ERROR, "conflict"),
    "unprocessable": (422, INVALID_REQUEST_ERROR, "idempotency_key_reused"),  # UnprocessableEntityError
    "rate_limited": (429, "requests", "rate_limit_exceeded"),
    # Not a quota that frees up by waiting: 402, so clients do not retry it as a rate limit.
    "insufficient_credits": (402, "insufficient_quota", "insufficient_quota"),
    "upstream_unavailable": (503, SERVER_ERROR, "upstream_unavailable"),
    "upstream_timeout": (504, SERVER_ERROR, "timeout"),
    "cancelled": (400, INVALID_REQUEST_ERROR, "cancelled"),
}
_INTERNAL = (500, SERVER_ERROR, None)


def render_error(exc: ImagegateError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``(HTTP status, body, extra headers)`` for a domain error on an OpenAI Images route."""
    kind = getattr(exc, "kind", "internal")
    status, error_type, code = _BY_KIND.get(kind, _INTERNAL)
    message = _message(exc, kind)
    param = getattr(exc, "field", None) or None
    headers: dict[str, str] = {}
    if isinstance(exc, ModerationBlocked):
        error_type, code, param = "image_generation_user_error", "moderation_blocked", None
    elif isinstance(exc, InvalidImage):
        code = "invalid_image"
    elif isinstance(exc, UnknownField):
        code = "unknown_parameter"
    elif kind == "not_found" and (isinstance(exc, ModelNotFound) or param == "model"):
        code = "model_not_found"
    elif kind == "rate_limited" and isinstance(exc, RateLimited) and exc.retry_after_s is not None:
        headers.update(_retry_headers(exc.retry_after_s))
    elif kind == "insufficient_credits":
        headers["x-should-retry"] = "false"  # the SDK retries every 429; waiting will not add credits
    elif kind == "upstream_unavailable":
        # A provider that rejected the request will reject it again; an unavailable one may recover.
        headers["x-should-retry"] = "false" if isinstance(exc, UpstreamRejected) else "true"
        if exc.retry_after_s is not None:
            headers.update(_retry_headers(exc.retry_after_s))
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return status, body, headers


def model_not_found_message(name: str) -> str:
    """OpenAI's 404 text for a model this server does not serve."""
    return f"The model `{name}` does not exist or you do not have access to it."


def _message(exc: ImagegateError, kind: str) -> str:
    if kind == "missing_key":
        return MISSING_API_KEY_MESSAGE
    if kind == "invalid_key":
        return INVALID_API_KEY_MESSAGE  # never echo the key, not even masked
    if kind not in _BY_KIND:
        return INTERNAL_MESSAGE  # internals never leak
    return str(getattr(exc, "message", "") or INTERNAL_MESSAGE)


def _retry_headers(seconds: float) -> dict[str, str]:
    if not math.isfinite(seconds) or seconds < 0:
        return {}
    # Both spellings: openai-python prefers retry-after-ms; other clients and proxies read retry-after.
    return {"retry-after": str(math.ceil(seconds)), "retry-after-ms": str(math.ceil(seconds * 1000))}
