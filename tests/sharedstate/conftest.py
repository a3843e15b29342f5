"""A private Redis per test that stops it; the session's shared private Redis for the rest (flushed per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from backend_servers import RedisServer
from imagegate.sharedstate import RedisLink


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def link(redis_server: RedisServer) -> AsyncIterator[RedisLink]:
    made = RedisLink(redis_server.url)
    await made.client.flushdb()
    await made.start()
    yield made
    await made.aclose()
