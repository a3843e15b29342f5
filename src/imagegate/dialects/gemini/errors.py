"""Domain errors as Google's ``google.rpc.Status`` bodies: ``{"error": {code, message, status, details}}``.

The HTTP status always equals ``error.code``; google-genai reads ``code``, ``status`` and ``message`` and
raises ``ClientError`` or ``ServerError`` from them. Errors are matched by ``kind`` (the category the domain
tree assigns), never by message text. Google's own wording is used where clients or people search for it
(invalid and missing keys, unknown models); anything unexpected becomes a generic 500 that leaks nothing.
"""

from __future__ import annotations

import math
from typing import Any

from imagegate.errors import ImagegateError, RateLimited

INVALID_API_KEY_MESSAGE = "API key not valid. Please pass a valid API key."
MISSING_API_KEY_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
INTERNAL_MESSAGE = "An internal error has occurred. Please retry or report it to the server operator."

_RPC = "type.googleapis.com/google.rpc."

#: kind -> (HTTP status == error.code, canonical status, message used when the error carries none)
_BY_KIND: dict[str, tuple[int, str, str]] = {
    "invalid_request": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "invalid_key": (400, "INVALID_ARGUMENT", INVALID_API_KEY_MESSAGE),
    "missing_key": (403, "PERMISSION_DENIED", MISSING_API_KEY_MESSAGE),
    "permission_denied": (403, "PERMISSION_DENIED", "The caller does not have permission."),
    "not_found": (404, "NOT_FOUND", "Requested entity was not found."),
    "conflict": (409, "ABORTED", "The operation was aborted."),
    # google.rpc has no 422: a reused Idempotency-Key is an invalid argument (a ClientError, never retried).
    "unprocessable": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "rate_limited": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    "insufficient_credits": (429, "RESOURCE_EXHAUSTED", "Your prepayment credits are depleted."),
    "upstream_unavailable": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "upstream_timeout": (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
    "cancelled": (499, "CANCELLED", "The operation was cancelled."),
}
_INTERNAL = (500, "INTERNAL", INTERNAL_MESSAGE)


def render_error(exc: ImagegateError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``(HTTP status, body, extra headers)`` for a domain error on a Gemini route."""
    kind = getattr(exc, "kind", "internal")
    code, status, default_message = _BY_KIND.get(kind, _INTERNAL)
    if kind in ("invalid_key", "missing_key") or kind not in _BY_KIND:
        message = default_message  # fixed texts: Google's for keys, a generic one so internals never leak
    else:
        message = str(getattr(exc, "message", "") or default_message)
    details: list[dict[str, Any]] = []
    headers: dict[str, str] = {}
    if kind == "invalid_key":
        details = [
            {
                "@type": _RPC + "ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {"@type": _RPC + "LocalizedMessage", "locale": "en-US", "message": message},
        ]
    elif kind == "invalid_request" and getattr(exc, "field", None):
        details = [{"@type": _RPC + "BadRequest", "fieldViolations": [{"field": exc.field, "description": message}]}]
    elif kind == "rate_limited" and isinstance(exc, RateLimited):
        delay = _whole_seconds(exc.retry_after_s)
        if delay is not None:
            # Retryable quota: RetryInfo is what tells a client when; credits (no RetryInfo) are not retryable.
            details = [{"@type": _RPC + "RetryInfo", "retryDelay": f"{delay}s"}]
            headers["Retry-After"] = str(delay)
    elif (delay := _whole_seconds(exc.retry_after_s)) is not None:  # e.g. every deployment paused: 503
        headers["Retry-After"] = str(delay)
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return code, {"error": error}, headers


def model_not_found_message(name: str, api_version: str, *, method: str = "generateContent") -> str:
    """Google's 404 text for a model it does not serve (``name`` with or without ``models/``)."""
    resource = name if name.startswith("models/") else f"models/{name}"
    return (
        f"{resource} is not found for API version {api_version}, or is not supported for {method}. "
        "Call ListModels to see the list of available models and their supported methods."
    )


def _whole_seconds(seconds: float | None) -> int | None:
    """A delay rounded up to whole seconds (``"34s"``, as Google writes it), or None when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(0, math.ceil(seconds))
