"""Many calls held at once spread evenly over small connection pools, and each pool is told when a call ends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.loopback import serve

from imagegate.providers.base import build_client
from imagegate.providers.transport import ShardedTransport, pooled_transport


class _SlowApp:
    """Answers every request after its ``?wait=`` seconds, counting how many it holds at once."""

    def __init__(self) -> None:
        self.holding = 0
        self.peak = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.holding += 1
        self.peak = max(self.peak, self.holding)
        try:
            if scope["query_string"] == b"hold":
                while self.peak < 300:  # sticky: the last to arrive must not leave before the others wake
                    await asyncio.sleep(0.01)
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": scope["path"].encode()})
        finally:
            self.holding -= 1


@pytest.fixture
def slow_app() -> Iterator[tuple[_SlowApp, str]]:
    app = _SlowApp()
    with serve(app) as url:
        yield app, url


def test_small_limits_get_one_plain_pool() -> None:
    assert isinstance(pooled_transport(100), httpx.AsyncHTTPTransport)
    assert isinstance(pooled_transport(129), ShardedTransport)


def test_pool_sizes_add_up_to_the_limit() -> None:
    transport = ShardedTransport(1000, shard_size=128)
    sizes = [pool._pool._max_connections for pool in transport._pools]
    assert len(sizes) == 8
    assert sum(sizes) == 1000
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("bad", [0, -1])
def test_nonsense_limits_are_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ShardedTransport(bad)


async def test_300_calls_held_at_once_over_small_pools(slow_app: tuple[_SlowApp, str]) -> None:
    app, url = slow_app
    transport = ShardedTransport(300, shard_size=64)
    async with build_client(timeout_s=30, connect_timeout_s=5, transport=transport) as client:
        seen_in_flight: list[tuple[int, ...]] = []

        async def call(number: int) -> str:
            response = await client.get(f"{url}/call-{number}?hold")
            return response.text

        calls = [asyncio.create_task(call(n)) for n in range(300)]
        while app.peak < 300:  # every call is upstream at once: the pools together allow exactly 300
            await asyncio.sleep(0.01)
            seen_in_flight.append(transport.in_flight)
        answers = await asyncio.wait_for(asyncio.gather(*calls), 30)

    assert answers == [f"/call-{n}" for n in range(300)]
    assert app.peak == 300
    assert max(max(f) - min(f) for f in seen_in_flight) <= 1  # least-busy placement keeps the pools level
    assert transport.in_flight == (0, 0, 0, 0, 0)  # every call released its pool when its response closed


async def test_a_failed_call_releases_its_pool() -> None:
    transport = ShardedTransport(200, shard_size=100)
    async with build_client(timeout_s=2, connect_timeout_s=0.5, transport=transport) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://127.0.0.1:9/nothing-listens-here")
    assert transport.in_flight == (0, 0)


async def test_a_streamed_response_holds_its_pool_until_closed(slow_app: tuple[_SlowApp, str]) -> None:
    _, url = slow_app
    transport = ShardedTransport(200, shard_size=100)
    async with build_client(timeout_s=5, connect_timeout_s=1, transport=transport) as client:
        async with client.stream("GET", f"{url}/streamed") as response:
            assert sorted(transport.in_flight) == [0, 1]
            assert await response.aread() == b"/streamed"
        assert transport.in_flight == (0, 0)
