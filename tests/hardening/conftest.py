"""The whole app (``create_app``) in process over each database, with a metered and an unmetered key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .harness import App, open_app


@pytest.fixture
async def app(database_url: str, tmp_path: Path) -> AsyncIterator[App]:
    async with open_app(tmp_path / "home", database_url) as running:
        yield running
