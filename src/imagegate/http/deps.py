"""Reaching the running services from a request (the lifespan puts the runtime on the app)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from imagegate.bootstrap import Runtime
from imagegate.services.context import Services


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def services_of(request: Request) -> Services:
    return runtime_of(request).services


def public_url(request: Request, path: str) -> str:
    """``path`` as an absolute URL clients can reach: the configured public base, else this request's own."""
    base = runtime_of(request).settings.public_base_url or str(request.base_url)
    return base.rstrip("/") + path


def mark_dialect(name: str) -> Callable[[Request], Awaitable[None]]:
    """A router dependency recording the dialect that words this request's errors.

    Async on purpose: FastAPI runs a plain ``def`` dependency on a worker thread, a thread hop per request.
    """

    async def mark(request: Request) -> None:
        request.state.dialect = name

    return mark
