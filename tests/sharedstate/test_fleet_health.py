"""Breakers and provider figures shared by routers in different processes (here: two routers, two links)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from backend_servers import RedisServer
from imagegate.core.capabilities import NANO_BANANA
from imagegate.core.images import ImageOutput
from imagegate.core.jobs import Generation, JobSpec, Role, Turn
from imagegate.errors import UpstreamUnavailable
from imagegate.metrics import Metrics
from imagegate.routing.breaker import BreakerState
from imagegate.routing.router import Deployment, Router, RoutingPolicy
from imagegate.sharedstate import FleetHealth, RedisLink, RedisSlots

SPEC = JobSpec(model=NANO_BANANA.id, turns=(Turn(Role.USER, ("a cat",)),))
IMAGE = Generation(images=(ImageOutput(b"\x89PNG", "image/png", 1, 1),))


class Switchable:
    def __init__(self) -> None:
        self.failing = False

    async def generate(self, spec: JobSpec, model: object, upstream_model: str) -> Generation:
        if self.failing:
            raise UpstreamUnavailable("down")
        return IMAGE

    async def aclose(self) -> None:
        pass


class Process:
    def __init__(self, link: RedisLink, upstream: Switchable) -> None:
        dep = Deployment(name="up", provider_name="fake", provider=upstream, max_concurrency=4)
        self.now = 1000.0  # the breakers' clock, moved by the test
        policy = RoutingPolicy(breaker_failures=2, breaker_cooldown_s=60)
        self.router = Router([dep], policy, clock=lambda: self.now)
        self.slots = RedisSlots(link)
        self.router.slots = self.slots
        self.fleet = FleetHealth(link, self.router, self.slots, snapshot_cache_s=0)
        self.router.observer = self.fleet


@pytest.fixture
async def two(redis_server: RedisServer) -> AsyncIterator[tuple[Process, Process, Switchable]]:
    links = [RedisLink(redis_server.url) for _ in range(2)]
    await links[0].client.flushdb()
    for made in links:
        await made.start()
    upstream = Switchable()
    yield Process(links[0], upstream), Process(links[1], upstream), upstream
    for made in links:
        await made.aclose()


async def test_a_breaker_opened_in_one_process_is_open_in_the_other(two: tuple[Process, Process, Switchable]) -> None:
    a, b, upstream = two
    upstream.failing = True
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await a.router.generate(SPEC, NANO_BANANA)
    assert a.router.health("up").breaker.state is BreakerState.OPEN
    await a.fleet.sync()
    await b.fleet.sync()
    assert b.router.health("up").breaker.state is BreakerState.OPEN  # b never called the failing upstream
    assert 0 < b.router.health("up").breaker.retry_after_s() <= 60


async def test_a_probe_that_succeeds_anywhere_closes_the_breaker_everywhere(
    two: tuple[Process, Process, Switchable],
) -> None:
    a, b, _ = two
    a.router.health("up").breaker.adopt_open(30, 30)
    b_breaker = b.router.health("up").breaker
    b_breaker.adopt_open(30, 30)
    b.now += 31  # b's pause is over: it may probe
    assert b_breaker.state is BreakerState.HALF_OPEN
    await b.router.generate(SPEC, NANO_BANANA)  # the probe succeeds
    assert b_breaker.state is BreakerState.CLOSED
    await b.fleet.sync()
    await a.fleet.sync()
    assert a.router.health("up").breaker.state is BreakerState.CLOSED


async def test_provider_figures_add_up_over_processes(two: tuple[Process, Process, Switchable]) -> None:
    a, b, upstream = two
    for _ in range(3):
        await a.router.generate(SPEC, NANO_BANANA)
    await b.router.generate(SPEC, NANO_BANANA)
    upstream.failing = True
    with pytest.raises(UpstreamUnavailable):
        await b.router.generate(SPEC, NANO_BANANA)
    await a.fleet.sync()  # a flushed; b's calls are still only in b
    rows, scope = await b.fleet.snapshot()
    assert scope == "fleet"
    five = rows[0]["stats"]["5m"]
    assert (five["requests"], five["successes"], five["errors"]) == (5, 4, 1)  # b's unflushed calls included
    assert five["latency_ms"]["p50"] is not None
    assert rows[0]["in_flight"] == 0
    await b.fleet.sync()
    rows_a, _ = await a.fleet.snapshot()
    assert rows_a[0]["stats"]["24h"]["requests"] == 5


async def test_with_redis_down_each_process_shows_its_own_figures(own_redis: RedisServer) -> None:
    link = RedisLink(own_redis.url, retry_s=0.0)
    await link.start()
    process = Process(link, Switchable())
    await process.router.generate(SPEC, NANO_BANANA)
    own_redis.stop()
    await process.fleet.sync()  # fails quietly; the call stays pending
    rows, scope = await process.fleet.snapshot()
    assert scope == "process" and rows[0]["stats"]["5m"]["requests"] == 1
    own_redis.start()
    await link.beat()
    await process.fleet.sync()
    rows, scope = await process.fleet.snapshot()
    assert scope == "fleet" and rows[0]["stats"]["5m"]["requests"] == 1  # flushed after the outage
    await link.aclose()


async def test_metrics_show_the_fleet_figures_at_scrape_time(two: tuple[Process, Process, Switchable]) -> None:
    a, b, _ = two
    metrics = Metrics()
    scraped = FleetHealth(b.fleet._link, b.router, b.slots, metrics=metrics, snapshot_cache_s=0)
    for _ in range(3):
        await a.router.generate(SPEC, NANO_BANANA)
    await a.fleet.sync()
    await scraped.update_metrics()
    text = metrics.render().decode()
    assert 'imagegate_fleet_provider_calls{deployment="up",outcome="success",window="5m"} 3.0' in text
    assert 'imagegate_fleet_provider_in_flight{deployment="up"} 0.0' in text
    assert "imagegate_fleet_processes 2.0" in text


async def test_failures_in_a_row_are_counted_across_processes(two: tuple[Process, Process, Switchable]) -> None:
    """At a threshold of two, one failure in each process opens the breaker, as two in one process would."""
    a, b, upstream = two
    upstream.failing = True
    for process in (a, b):
        with pytest.raises(UpstreamUnavailable):
            await process.router.generate(SPEC, NANO_BANANA)
        assert process.router.health("up").breaker.state is BreakerState.CLOSED  # one is below its threshold
        await process.fleet.sync()
    assert b.router.health("up").breaker.state is BreakerState.OPEN  # the fleet's second failure in a row
    await a.fleet.sync()
    assert a.router.health("up").breaker.state is BreakerState.OPEN  # told by b
    assert (await a.fleet._link.client.get("imagegate:streak:up")) == b"2"


async def test_a_success_anywhere_restarts_the_fleet_count(two: tuple[Process, Process, Switchable]) -> None:
    a, b, upstream = two
    upstream.failing = True
    with pytest.raises(UpstreamUnavailable):
        await a.router.generate(SPEC, NANO_BANANA)
    await a.fleet.sync()
    upstream.failing = False
    await b.router.generate(SPEC, NANO_BANANA)
    await b.fleet.sync()  # b's success: the count starts again
    upstream.failing = True
    with pytest.raises(UpstreamUnavailable):
        await a.router.generate(SPEC, NANO_BANANA)
    await a.fleet.sync()
    assert (await a.fleet._link.client.get("imagegate:streak:up")) == b"1"  # b's success came in between
    # a's own breaker still counts what a saw (two in a row): the fleet count can only open breakers sooner
    assert a.router.health("up").breaker.state is BreakerState.OPEN
