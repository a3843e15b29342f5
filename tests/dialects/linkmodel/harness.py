"""A small real app for the linkmodel HTTP tests: the dialect's router, the file links, the request-id middleware
and the one error channel, over a real runtime (SQLite, local files, in-process workers, the built-in emulator).

It stands in for ``create_app`` until the dialect is mounted there, and is wired the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from imagegate.bootstrap import Runtime, open_runtime
from imagegate.core.ports import ApiKey
from imagegate.dialects.gemini.errors import render_error as render_gemini_error
from imagegate.dialects.linkmodel.errors import render_error
from imagegate.dialects.linkmodel.routes import router
from imagegate.http.errors import install_error_handlers
from imagegate.http.files import router as files_router
from imagegate.http.middleware import RequestIdMiddleware
from imagegate.services.accounts import authenticate, create_key
from imagegate.settings import load_settings

BASE_URL = "http://testserver"
CREATE = "/api/v1/image-generation"
MODEL = "gemini-2.5-flash-image"


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient
    runtime: Runtime
    key: str
    key_id: str

    async def principal(self) -> ApiKey:
        return await authenticate(self.runtime.services, self.key)

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    async def create(self, body: Any, *, key: str | None = None) -> httpx.Response:
        return await self.client.post(CREATE, json=body, headers=self.auth(key))

    async def poll(self, task_id: str, *, key: str | None = None) -> httpx.Response:
        return await self.client.get(f"/api/v1/tasks/{task_id}", headers=self.auth(key))

    async def until_done(self, task_id: str, *, validate: Any = None) -> httpx.Response:
        """Poll until the task leaves ``processing``; ``validate`` sees every answer on the way."""
        for _ in range(2000):
            response = await self.poll(task_id)
            assert response.status_code == 200, response.text
            if validate is not None:
                validate(response.json())
            if response.json()["data"]["status"] != "processing":
                return response
            await asyncio.sleep(0.01)  # lets the worker task progress; nothing here waits for time to pass
        raise AssertionError(f"task {task_id} still processing after 2000 polls")


def build_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(app.state.settings) as runtime:
            app.state.runtime = runtime
            yield

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app, {"linkmodel": render_error, "gemini": render_gemini_error})
    app.include_router(router)
    app.include_router(files_router)
    return app


@asynccontextmanager
async def open_harness(home: Path, **settings: Any) -> AsyncIterator[Harness]:
    overrides: dict[str, Any] = {
        "gemini_api_key": None,  # never a real upstream, whatever the environment says
        "deployments": [{"name": "emulator", "provider": "emulator"}],
        "workers": 2,
        **settings,
    }
    app = build_app()
    app.state.settings = load_settings(home=home, **overrides)
    async with app.router.lifespan_context(app):
        created = await create_key(app.state.runtime.services, name="linkmodel-test")
        # A crash comes back as the 500 a client would see, not as an exception in the test.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield Harness(app, client, app.state.runtime, created.key, created.record.id)
