"""``create_app``: the FastAPI application with every dialect mounted and the runtime in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from imagegate import __version__
from imagegate.bootstrap import open_runtime
from imagegate.dialects.gemini import errors as gemini_errors
from imagegate.dialects.gemini.batch_routes import router as gemini_batches_router
from imagegate.dialects.gemini.file_routes import router as gemini_files_router
from imagegate.dialects.gemini.routes import router as gemini_router
from imagegate.dialects.linkmodel import errors as linkmodel_errors
from imagegate.dialects.linkmodel.routes import router as linkmodel_router
from imagegate.dialects.openai_chat.routes import router as chat_router
from imagegate.dialects.openai_common import errors as openai_errors
from imagegate.dialects.openai_images.routes import router as openai_router
from imagegate.dialects.openai_images.task_routes import router as tasks_router
from imagegate.dialects.openai_images.task_routes import webhook_renderer
from imagegate.heap import settle_for_serving
from imagegate.http.account import router as account_router
from imagegate.http.errors import install_error_handlers
from imagegate.http.files import router as files_router
from imagegate.http.history import router as history_router
from imagegate.http.idempotency import IdempotencyMiddleware
from imagegate.http.middleware import BodyLimitMiddleware, RequestIdMiddleware
from imagegate.http.observability import router as observability_router
from imagegate.http.playground import router as playground_router
from imagegate.http.web import router as web_router
from imagegate.settings import Settings, load_settings


def create_app(settings: Settings | None = None, *, serving: bool = False) -> FastAPI:
    """The app; settings are read when it starts (not at import), unless given. With ``serving`` (a
    serving process, not a test) the garbage collector is set for serving once it is up (``heap``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        effective = settings or load_settings()
        async with open_runtime(effective) as runtime:
            base_url = effective.public_base_url or f"http://{effective.host}:{effective.port}"
            runtime.services.webhook_payload = webhook_renderer(runtime.services, base_url)
            app.state.runtime = runtime
            if serving:
                settle_for_serving()
            yield

    app = FastAPI(title="imagegate", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url=None)
    max_bytes = settings.max_request_bytes if settings else Settings.model_fields["max_request_bytes"].default
    renderers = {
        "gemini": gemini_errors.render_error,
        "openai": openai_errors.render_error,
        "linkmodel": linkmodel_errors.render_error,
    }
    app.add_middleware(IdempotencyMiddleware, renderers=renderers)  # inside the body cap: bodies come capped
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_bytes)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app, renderers)
    # Routes are matched in order, one pattern after another (~3 us each): the Gemini dialect's first, the
    # family's own API. No other router has a path of theirs (/{version}/models, files, batches, upload).
    app.include_router(gemini_files_router)  # before files_router: GET /v1/files/{name} is both
    app.include_router(gemini_batches_router)
    app.include_router(gemini_router)
    app.include_router(openai_router)
    app.include_router(chat_router)
    app.include_router(linkmodel_router)
    app.include_router(tasks_router)
    # Lumenfall's base URL is https://api.lumenfall.ai/openai/v1: the same OpenAI routes under that prefix.
    app.include_router(openai_router, prefix="/openai", include_in_schema=False)
    app.include_router(tasks_router, prefix="/openai", include_in_schema=False)
    app.include_router(files_router)
    app.include_router(account_router)
    app.include_router(observability_router)
    app.include_router(history_router)
    app.include_router(playground_router)
    app.include_router(web_router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    return app
