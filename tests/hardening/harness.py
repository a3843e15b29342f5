"""The real application (``create_app``) over a real runtime, driven in process through httpx's ASGI transport.

Two callers: ``metered`` (a key with credits, so holds and charges are visible) and ``other`` (an unmetered
key), so a test can check that one caller's bad request leaves the other's good one alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from imagegate.bootstrap import Runtime
from imagegate.core.money import parse_amount
from imagegate.http.app import create_app
from imagegate.services.accounts import create_key
from imagegate.settings import load_settings

BASE_URL = "http://testserver"
MODEL = "gemini-2.5-flash-image"
CREDITS = "100"


@dataclass
class App:
    app: FastAPI
    client: httpx.AsyncClient
    runtime: Runtime
    metered: str
    metered_id: str
    other: str

    def bearer(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.metered}"}

    async def admin_key(self) -> str:
        created = await create_key(self.runtime.services, name="admin", is_admin=True)
        return created.key

    async def balance(self) -> tuple[int, int]:
        """The metered key's (credits, held) in micro-units, straight from the database."""
        async with self.runtime.services.uow() as uow:
            key = await uow.keys.get(self.metered_id)
            held = await uow.ledger.held(self.metered_id)
        assert key is not None
        return key.credits, held


@asynccontextmanager
async def open_app(home: Path, database_url: str, **settings: Any) -> AsyncIterator[App]:
    overrides: dict[str, Any] = {
        "gemini_api_key": None,
        "database_url": database_url,
        "deployments": [{"name": "emulator", "provider": "emulator"}],
        "workers": 2,
        **settings,
    }
    app = create_app(load_settings(home=home, **overrides))
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        metered = await create_key(runtime.services, name="metered", credits=parse_amount(CREDITS))
        other = await create_key(runtime.services, name="other")
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=60) as client:
            yield App(app, client, runtime, metered.key, metered.record.id, other.key)
