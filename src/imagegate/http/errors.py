"""One error channel: every domain error is rendered once, in the dialect of the route that raised it.

Routes mark their dialect on ``request.state.dialect``; requests that never reached a route (unknown
path, oversized body) fall back to the dialect their path looks like.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from imagegate.errors import ImagegateError, InternalError, InvalidRequest, NotFound

log = logging.getLogger(__name__)

#: The request id of the request whose error is being rendered, for renderers whose bodies carry it (linkmodel's).
current_request_id: ContextVar[str | None] = ContextVar("imagegate_error_request_id", default=None)

ErrorRenderer = Callable[[ImagegateError], tuple[int, dict[str, object], dict[str, str]]]


_DIALECT_BY_PATH = (
    ("/api/v1/chat/", "openai"),  # OpenRouter's path, before linkmodel's /api/v1/
    ("/v1/chat/", "openai"),
    ("/openai/v1/", "openai"),  # Lumenfall's prefix
    ("/api/v1/", "linkmodel"),
    ("/v1/images/", "openai"),
    ("/v1/async/", "openai"),
    ("/v1/tasks", "openai"),
    ("/v1/files/", "openai"),
    ("/v1/webhooks/", "openai"),
    ("/v1/account", "openai"),
    ("/v1/usage", "openai"),
    ("/v1/admin/", "openai"),
)


def dialect_of(request: Request) -> str:
    """The dialect a route marked, else the one its path belongs to (unknown paths, 405s), else Gemini's."""
    dialect = getattr(request.state, "dialect", None)
    if isinstance(dialect, str):
        return dialect
    path = request.url.path
    return next((name for prefix, name in _DIALECT_BY_PATH if path.startswith(prefix)), "gemini")


def install_error_handlers(app: FastAPI, renderers: Mapping[str, ErrorRenderer]) -> None:
    def render(request: Request, exc: ImagegateError) -> JSONResponse:
        status, body, headers = _rendered(request, exc)
        return JSONResponse(body, status_code=status, headers=headers)

    def _rendered(request: Request, exc: ImagegateError) -> tuple[int, dict[str, object], dict[str, str]]:
        renderer = renderers.get(dialect_of(request)) or renderers["gemini"]
        request_id = getattr(request.state, "request_id", None)
        current_request_id.set(request_id if isinstance(request_id, str) else None)
        return renderer(exc)

    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ImagegateError)
        return render(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return render(request, NotFound(f"{request.method} {request.url.path} is not a known endpoint."))
        if exc.status_code == 405:
            allowed = _allowed_methods(request) or (exc.headers or {}).get("Allow", "")
            exc.headers = {**(exc.headers or {}), "Allow": allowed}
            also = f"; use {allowed}" if allowed else ""
            error = InvalidRequest(f"{request.method} is not allowed on {request.url.path}{also}.")
            status, body, headers = _rendered(request, error)
            if body.get("code") == status:  # bodies that repeat the status (linkmodel's) say 405 as well
                body = {**body, "code": 405}
            return JSONResponse(body, status_code=405, headers={**headers, **(exc.headers or {})})
        return render(request, InvalidRequest(str(exc.detail)))

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        return render(
            request,
            InvalidRequest(f"Invalid value for {field or 'request'}: {first.get('msg')}", field=field),
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        response = render(request, InternalError("An internal error occurred."))
        # The server closes the connection after an unhandled error; saying so lets a keep-alive client open a new
        # one for its next request instead of sending it into a socket that is being reset.
        response.headers["Connection"] = "close"
        return response

    app.add_exception_handler(ImagegateError, on_domain_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves on this path. Starlette names only the first route that matched the path,
    so a path served by two routes (GET and POST ``/v1/admin/keys``) answered a DELETE with ``Allow: POST``;
    asking every route whether it would fully match each method sees them all (included routers too)."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
